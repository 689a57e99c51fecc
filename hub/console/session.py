"""Console sessions: a signed, expiring cookie (HttpOnly, SameSite=Strict) naming the user and carrying
the session's CSRF token; every form posts that token back. A session is bound to the user's password as
it was at login (a stamp: a MAC of its hash), so a password changed anywhere ends every session opened
with the old one, a stolen cookie included. The signing key is derived from the hub's
contact key (``session_key``), so every hub process and host that can open contacts signs and accepts
the same sessions, and a copy of the database alone cannot forge one. Failed logins are throttled per
user name and per client address (``hub/console/throttle.py``, in the database). No I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

COOKIE = "kiosk_console"
LOGIN_CSRF_COOKIE = "kiosk_login_csrf"
SESSION_S = 8 * 3600


@dataclass(frozen=True)
class Session:
    user: str
    csrf: str
    must_change: bool
    expires: int
    stamp: str  # the MAC of the user's password hash at login (``Signer.stamp``)


SESSION_KEY_LABEL = b"kiosk console session key v1"


def session_key(contact_key: bytes) -> bytes:
    """The console's signing key: HMAC-SHA256 of a fixed label under the contact key's 32 bytes (one
    HKDF-Expand block). Knowing it tells nothing of the contact key; it changes only with that key."""
    return hmac.new(contact_key, SESSION_KEY_LABEL, hashlib.sha256).digest()


class Signer:
    """Issues and reads session cookies under ``key`` (or the key ``key()`` gives on first use)."""

    def __init__(self, key: bytes | Callable[[], bytes], clock=time.time):
        self._key_source, self._clock = key, clock
        self._key: bytes | None = key if isinstance(key, bytes) else None

    @property
    def key(self) -> bytes:
        if self._key is None:
            assert callable(self._key_source)
            self._key = self._key_source()
        return self._key

    def _mac(self, data: bytes) -> str:
        return hmac.new(self.key, data, hashlib.sha256).hexdigest()

    def stamp(self, credential: str) -> str:
        """What a session carries of the user's password hash: a MAC, so the cookie reveals nothing of it."""
        return self._mac(b"credential\n" + credential.encode())[:32]

    def issue(self, user: str, must_change: bool, credential: str) -> tuple[str, Session]:
        """A session of ``user``, bound to ``credential`` (their password hash now)."""
        session = Session(
            user,
            secrets.token_urlsafe(24),
            must_change,
            int(self._clock()) + SESSION_S,
            self.stamp(credential),
        )
        body = json.dumps(
            {
                "u": session.user,
                "c": session.csrf,
                "m": session.must_change,
                "e": session.expires,
                "s": session.stamp,
            },
            separators=(",", ":"),
        ).encode()
        data = base64.urlsafe_b64encode(body).rstrip(b"=")
        return f"{data.decode()}.{self._mac(data)}", session

    def read(self, cookie: str | None) -> Session | None:
        """The session of a cookie this hub signed and that has not expired; None otherwise."""
        if not cookie or "." not in cookie or len(cookie) > 2048:
            return None
        data, _, mac = cookie.rpartition(".")
        if not hmac.compare_digest(self._mac(data.encode()), mac):
            return None
        try:
            fields = json.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
            session = Session(
                str(fields["u"]), str(fields["c"]), bool(fields["m"]), int(fields["e"]), str(fields["s"])
            )
        except (ValueError, KeyError, TypeError):
            return None  # a cookie from before sessions had a stamp among them: log in again
        return session if session.expires > self._clock() else None

    def still_valid(self, session: Session, credential: str) -> bool:
        """Whether the user's password is still the one the session was opened with."""
        return hmac.compare_digest(session.stamp, self.stamp(credential))


def same_token(given: str | None, expected: str) -> bool:
    if not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())

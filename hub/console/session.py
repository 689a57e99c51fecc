"""Console sessions: a signed, expiring cookie (HttpOnly, SameSite=Strict) naming the user and carrying
the session's CSRF token; every form posts that token back. Failed logins are throttled per user name
and per client address. No I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass

COOKIE = "kiosk_console"
LOGIN_CSRF_COOKIE = "kiosk_login_csrf"
SESSION_S = 8 * 3600
MAX_FAILURES = 5  # per user name within the window
MAX_ADDRESS_FAILURES = 20  # per client address (an office behind one NAT has several users)
FAILURE_WINDOW_S = 15 * 60


@dataclass(frozen=True)
class Session:
    user: str
    csrf: str
    must_change: bool
    expires: int


class Signer:
    def __init__(self, key: bytes, clock=time.time):
        self._key, self._clock = key, clock

    def _mac(self, data: bytes) -> str:
        return hmac.new(self._key, data, hashlib.sha256).hexdigest()

    def issue(self, user: str, must_change: bool) -> tuple[str, Session]:
        session = Session(user, secrets.token_urlsafe(24), must_change, int(self._clock()) + SESSION_S)
        body = json.dumps(
            {"u": session.user, "c": session.csrf, "m": session.must_change, "e": session.expires},
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
            session = Session(str(fields["u"]), str(fields["c"]), bool(fields["m"]), int(fields["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires > self._clock() else None


class LoginThrottle:
    """At most MAX_FAILURES failed logins per user name (MAX_ADDRESS_FAILURES per address) in
    FAILURE_WINDOW_S; kept in memory (one hub process serves the console)."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str) -> deque[float]:
        times = self._failures[key]
        while times and times[0] < self._clock() - FAILURE_WINDOW_S:
            times.popleft()
        return times

    def blocked(self, name: str, address: str) -> bool:
        with self._lock:
            return (
                len(self._recent(f"u:{name}")) >= MAX_FAILURES
                or len(self._recent(f"a:{address}")) >= MAX_ADDRESS_FAILURES
            )

    def failed(self, name: str, address: str) -> None:
        with self._lock:
            for k in (f"u:{name}", f"a:{address}"):
                self._recent(k).append(self._clock())

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(f"u:{name}", None)


def same_token(given: str | None, expected: str) -> bool:
    if not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())

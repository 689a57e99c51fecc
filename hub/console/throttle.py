"""The console's login throttle, kept in the database: every hub process and host counts the same
failures, so spreading guesses over the processes behind a proxy gains nothing.

At most ``MAX_FAILURES`` failed logins per user name and ``MAX_ADDRESS_FAILURES`` per client address
(an IPv6 address counted by its /64) within ``FAILURE_WINDOW_S``. A row is one failure of one subject; the subject is an HMAC of the user name
or address under a key derived from the session key, so the table holds neither names nor addresses.
Rows older than the window are deleted (this is a throttle's state, not a record); a right password
deletes its name's failures. Times are Unix seconds: the hosts' clocks must agree (time-sync.target).

An attempt is counted before its password is checked (``attempt``), and taken back when the password
was right (``succeeded``) or the attempt refused: guesses sent at the same moment, to one process or
several, each see the ones committed before them, so no more than the limit get a password checked
(asking "blocked?" first and counting the failure after the check let every guess in flight through).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from collections.abc import Callable

from sqlalchemy import Column, Float, Index, Integer, String, Table, delete, func, insert, select
from sqlalchemy.engine import Engine

from ..schema import metadata

MAX_FAILURES = 5  # per user name within the window
MAX_ADDRESS_FAILURES = 20  # per client address (an office behind one NAT has several users)
FAILURE_WINDOW_S = 15 * 60
SUBJECT_LABEL = b"kiosk console login throttle v1"

login_failures = Table(
    "console_login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subject", String(64), nullable=False),  # HMAC-SHA256 hex of "u:NAME" or "a:ADDRESS"
    Column("at", Float, nullable=False),  # Unix time of the failure
    Index("console_login_failures_subject_at", "subject", "at"),
    Index("console_login_failures_at", "at"),
)


def address_subject(address: str) -> str:
    """The unit an address is counted in: an IPv6 address by its /64 (one subscriber's network: a
    guesser there has 2^64 addresses to move between), an IPv4-mapped one as its IPv4, IPv4 as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an address (a test client, a Unix socket): counted as given
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class LoginThrottle:
    def __init__(self, engine: Engine, key: Callable[[], bytes], clock: Callable[[], float] = time.time):
        self._engine, self._key_source, self._clock = engine, key, clock
        self._key: bytes | None = None

    def _subject(self, kind: str, value: str) -> str:
        if self._key is None:
            self._key = hmac.new(self._key_source(), SUBJECT_LABEL, hashlib.sha256).digest()
        return hmac.new(self._key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()

    def blocked(self, name: str, address: str) -> bool:
        user, place = self._subject("u", name), self._subject("a", address_subject(address))
        since = self._clock() - FAILURE_WINDOW_S
        with self._engine.connect() as conn:
            counts: dict[str, int] = dict(
                conn.execute(
                    select(login_failures.c.subject, func.count())
                    .where(login_failures.c.subject.in_((user, place)) & (login_failures.c.at >= since))
                    .group_by(login_failures.c.subject)
                ).all()
            )
        return counts.get(user, 0) >= MAX_FAILURES or counts.get(place, 0) >= MAX_ADDRESS_FAILURES

    def failed(self, name: str, address: str) -> None:
        now = self._clock()
        rows = [
            {"subject": self._subject("u", name), "at": now},
            {"subject": self._subject("a", address_subject(address)), "at": now},
        ]
        with self._engine.begin() as conn:
            conn.execute(insert(login_failures), rows)
            conn.execute(delete(login_failures).where(login_failures.c.at < now - FAILURE_WINDOW_S))

    def attempt(self, name: str, address: str) -> list[int] | None:
        """Count one login attempt as a failure before its password is checked: its rows' ids (for
        ``succeeded``), or None when the name or the address is over its limit (then nothing is kept, so a
        refused flood adds no rows). Counted after the rows are committed: of attempts at the same moment,
        the one committed k-th sees at least k, so at most the limit pass."""
        user, place = self._subject("u", name), self._subject("a", address_subject(address))
        now = self._clock()
        with self._engine.begin() as conn:
            ids: list[int] = []
            for subject in (user, place):
                key = conn.execute(
                    insert(login_failures).values(subject=subject, at=now)
                ).inserted_primary_key
                assert key is not None
                ids.append(int(key[0]))
            conn.execute(delete(login_failures).where(login_failures.c.at < now - FAILURE_WINDOW_S))
        with self._engine.begin() as conn:
            counts: dict[str, int] = dict(
                conn.execute(
                    select(login_failures.c.subject, func.count())
                    .where(
                        login_failures.c.subject.in_((user, place))
                        & (login_failures.c.at >= now - FAILURE_WINDOW_S)
                    )
                    .group_by(login_failures.c.subject)
                ).all()
            )
            if counts.get(user, 0) > MAX_FAILURES or counts.get(place, 0) > MAX_ADDRESS_FAILURES:
                conn.execute(delete(login_failures).where(login_failures.c.id.in_(ids)))
                return None
        return ids

    def succeeded(self, name: str, attempt: list[int] | None = None) -> None:
        """A right password: its name's failures go, and the attempt's own rows (``attempt``'s ids)."""
        gone = login_failures.c.subject == self._subject("u", name)
        if attempt:
            gone = gone | login_failures.c.id.in_(attempt)
        with self._engine.begin() as conn:
            conn.execute(delete(login_failures).where(gone))

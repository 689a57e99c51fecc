"""The console's login throttle, kept in the database: every hub process and host counts the same
failures, so spreading guesses over the processes behind a proxy gains nothing.

At most ``MAX_FAILURES`` failed logins per user name and ``MAX_ADDRESS_FAILURES`` per client address
within ``FAILURE_WINDOW_S``. A row is one failure of one subject; the subject is an HMAC of the user name
or address under a key derived from the session key, so the table holds neither names nor addresses.
Rows older than the window are deleted (this is a throttle's state, not a record); a right password
deletes its name's failures. Times are Unix seconds: the hosts' clocks must agree (time-sync.target).

Two processes checking at the same instant may both let one more guess through than the limit: at most
one per request in flight, against the five per name the limit allows.
"""

from __future__ import annotations

import hashlib
import hmac
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


class LoginThrottle:
    def __init__(self, engine: Engine, key: Callable[[], bytes], clock: Callable[[], float] = time.time):
        self._engine, self._key_source, self._clock = engine, key, clock
        self._key: bytes | None = None

    def _subject(self, kind: str, value: str) -> str:
        if self._key is None:
            self._key = hmac.new(self._key_source(), SUBJECT_LABEL, hashlib.sha256).digest()
        return hmac.new(self._key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()

    def blocked(self, name: str, address: str) -> bool:
        user, place = self._subject("u", name), self._subject("a", address)
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
            {"subject": self._subject("a", address), "at": now},
        ]
        with self._engine.begin() as conn:
            conn.execute(insert(login_failures), rows)
            conn.execute(delete(login_failures).where(login_failures.c.at < now - FAILURE_WINDOW_S))

    def succeeded(self, name: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(login_failures).where(login_failures.c.subject == self._subject("u", name)))

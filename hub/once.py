"""Work that must happen once however many hub processes share one database: the desk's alert rounds
(each alert delivered once). A round takes a PostgreSQL advisory lock, held by a transaction of its
own that ends only after the round's own transactions committed, so the next holder sees them. (The
fleet's alarm judgement locks each device on the judgement's own transaction instead: hub/fleet.py.)

SQLite is one hub process (its writers are serialised by the file anyway), where the callers' own
thread locks suffice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def exclusive(engine: Engine, name: str, *, wait: bool) -> Iterator[bool]:
    """Hold the cluster-wide lock ``name`` for the block; yields whether it is held. With ``wait``
    False, another process holding it yields False at once (it is doing the round)."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    with engine.connect() as conn, conn.begin():
        if wait:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(name)})
            held = True
        else:
            held = bool(
                conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": lock_key(name)}).scalar()
            )
        yield bool(held)

"""Which devices may still sign with version 1 (docs/protocol.md §2).

A device registered before signature version 2 existed has no row here and may sign v1 until an
operator turns it off (``kiosk hub device v1-off``); a device registered since gets a row refusing v1 at
once. A new table rather than a column of ``devices``: a database made before needs no data change.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Engine, String, Table, insert, select, update

from .schema import metadata

signature_policy = Table(
    "device_signature_policy",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("v1_allowed", Boolean, nullable=False),
    Column("changed_at", String(40), nullable=False),
)


def v1_allowed(engine: Engine, device_id: str) -> bool:
    with engine.connect() as conn:
        allowed = conn.execute(
            select(signature_policy.c.v1_allowed).where(signature_policy.c.device_id == device_id)
        ).scalar()
    return True if allowed is None else bool(allowed)


def set_v1(conn, device_id: str, allowed: bool, now: str) -> None:
    """Inside the caller's transaction: record whether ``device_id`` may sign v1."""
    row = {"v1_allowed": allowed, "changed_at": now}
    held = conn.execute(
        select(signature_policy.c.device_id).where(signature_policy.c.device_id == device_id)
    ).first()
    if held:
        conn.execute(update(signature_policy).where(signature_policy.c.device_id == device_id).values(**row))
    else:
        conn.execute(insert(signature_policy).values(device_id=device_id, **row))

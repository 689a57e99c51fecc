"""Issue 10 (security hardening): an indexed table of opened cases for the phone page, and the phone
ratings' own hash chain (hub/derived.py).

Revision ID: 0007
Revises: 0006
- ``opened_cases``: filled from the case_opened events already held.
- ``phone_ratings.chain_seq, prev_hash, hash``: the rows already held are chained in the order they
  were stored (``at``, then device and nonce).
"""

import hashlib
import json

from alembic import op
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    select,
    update,
)

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ZERO_HASH = "0" * 64
frozen = MetaData()

opened_cases = Table(
    "opened_cases",
    frozen,
    Column("device_id", String(64), primary_key=True),
    Column("log_id", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("case_no", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("received_at", String(40), nullable=False),
    Index("opened_cases_device_case", "device_id", "case_no"),
)


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def upgrade() -> None:
    bind = op.get_bind()
    frozen.create_all(bind, checkfirst=True)
    already_filled = bind.execute(select(opened_cases.c.seq).limit(1)).first() is not None
    held = MetaData()
    events = Table("events", held, autoload_with=bind)
    query = select(events.c.device_id, events.c.log_id, events.c.seq, events.c.payload, events.c.received_at)
    for device_id, log_id, seq, text, received_at in bind.execute(
        query.where(events.c.type == "case_opened")
    ):
        payload = json.loads(str(text))
        case_no = payload.get("case_no") if isinstance(payload, dict) else None
        if isinstance(case_no, str) and 0 < len(case_no) <= 64 and not already_filled:
            row = {"device_id": device_id, "log_id": log_id, "seq": seq, "case_no": case_no}
            bind.execute(opened_cases.insert().values(**row, payload=text, received_at=received_at))

    columns = {c["name"] for c in inspect(bind).get_columns("phone_ratings")}
    for name, kind in (("chain_seq", BigInteger()), ("prev_hash", String(64)), ("hash", String(64))):
        if name not in columns:
            op.add_column("phone_ratings", Column(name, kind))
    if "phone_ratings_chain_seq" not in {i["name"] for i in inspect(bind).get_indexes("phone_ratings")}:
        op.create_index("phone_ratings_chain_seq", "phone_ratings", ["chain_seq"], unique=True)
    phone = Table("phone_ratings", MetaData(), autoload_with=bind)
    prev = ZERO_HASH
    rows = bind.execute(select(phone).order_by(phone.c.at, phone.c.device_id, phone.c.nonce)).mappings()
    for seq, held_row in enumerate(rows, 1):
        row = dict(held_row)
        linked = {**row, "chain_seq": seq, "prev_hash": prev}
        linked.pop("hash", None)
        prev = hashlib.sha256(_canonical(linked)).hexdigest()
        key = (phone.c.device_id == row["device_id"]) & (phone.c.nonce == row["nonce"])
        bind.execute(update(phone).where(key).values(chain_seq=seq, prev_hash=linked["prev_hash"], hash=prev))

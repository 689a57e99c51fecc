"""The 差评 desk, completed: an index for "finished items", and an item for every 差评 the hub held
before the desk's tables existed.

Revision ID: 0006
Revises: 0005
Items are added only for bad ratings that have none (so running it on a database whose items were
already derived adds nothing); they are received when the hub stored the rating, with no section yet
(a supervisor sees them as 未分配).
"""

from datetime import datetime

from alembic import op
from sqlalchemy import text

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    bind.execute(text("CREATE INDEX IF NOT EXISTS desk_actions_status ON desk_actions (status, item_id)"))
    _items_for_ratings_held(bind)


def downgrade() -> None:
    op.get_bind().execute(text("DROP INDEX IF EXISTS desk_actions_status"))


def _local_date(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone().date().isoformat()


def _items_for_ratings_held(bind) -> None:
    window = bind.execute(
        text(
            "SELECT r.device_id, r.log_id, r.seq, r.satisfaction, r.assess_time, e.received_at "
            "FROM ratings r JOIN events e ON e.device_id = r.device_id AND e.log_id = r.log_id "
            "AND e.seq = r.seq WHERE r.satisfaction <= 2 AND NOT EXISTS (SELECT 1 FROM desk_items i "
            "WHERE i.device_id = r.device_id AND i.log_id = r.log_id AND i.seq = r.seq) "
            "ORDER BY e.received_at, r.device_id, r.log_id, r.seq"
        )
    ).all()
    phone = bind.execute(
        text(
            "SELECT p.device_id, p.nonce, p.satisfaction, p.assess_time, p.at FROM phone_ratings p "
            "WHERE p.satisfaction <= 2 AND NOT EXISTS (SELECT 1 FROM desk_items i "
            "WHERE i.device_id = p.device_id AND i.nonce = p.nonce) ORDER BY p.at, p.device_id, p.nonce"
        )
    ).all()
    held = [
        {
            "device_id": d,
            "log_id": log,
            "seq": seq,
            "nonce": None,
            "satisfaction": sat,
            "assess_time": at,
            "received_at": received,
        }
        for d, log, seq, sat, at, received in window
    ] + [
        {
            "device_id": d,
            "log_id": None,
            "seq": None,
            "nonce": nonce,
            "satisfaction": sat,
            "assess_time": at,
            "received_at": stored,
        }
        for d, nonce, sat, at, stored in phone
    ]
    held.sort(key=lambda r: r["received_at"])
    if held:
        bind.execute(
            text(
                "INSERT INTO desk_items (device_id, log_id, seq, nonce, dept, satisfaction, assess_time, "
                "received, received_at) VALUES (:device_id, :log_id, :seq, :nonce, NULL, :satisfaction, "
                ":assess_time, :received, :received_at)"
            ),
            [{**r, "received": _local_date(r["received_at"])} for r in held],
        )

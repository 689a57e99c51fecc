"""The upstream outbox: one record per rating held, and the appended actions of people on them.

Revision ID: 0005
Revises: 0004
Ratings the hub already holds get their records here (pending, or needs_linkage without a case number;
a window 差评 without its reasons yet waits for them), numbered per case number in the order of their
assess time, so every rating held before this revision is reported upward too. Frozen copies of the
tables as of this revision; later changes are later revisions.
"""

from datetime import UTC, datetime

from alembic import op
from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    insert,
    select,
)

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

frozen = MetaData()

outbox = Table(
    "upstream_outbox",
    frozen,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel", String(8), nullable=False),
    Column("device_id", String(64), nullable=False),
    Column("log_id", String(64)),
    Column("seq", BigInteger),
    Column("nonce", String(16)),
    Column("project_no", Text),
    Column("assess_number", Integer),
    Column("task_code", Text),
    Column("task_name", Text),
    Column("assess_day", String(10), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False, default=0.0),
    Column("lease_owner", String(32)),
    Column("lease_until", Float),
    Column("last_error", Text),
    Column("message", Text),
    Column("created_at", String(40), nullable=False),
    Column("sent_at", String(40)),
    UniqueConstraint("project_no", "assess_number", name="upstream_outbox_key"),
    UniqueConstraint("device_id", "log_id", "seq", name="upstream_outbox_window"),
    UniqueConstraint("device_id", "nonce", name="upstream_outbox_phone"),
    Index("upstream_outbox_due", "status", "next_attempt_at"),
    Index("upstream_outbox_day", "assess_day"),
)

actions = Table(
    "upstream_actions",
    frozen,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("outbox_id", Integer, nullable=False, index=True),
    Column("at", String(40), nullable=False),
    Column("who", Text, nullable=False),
    Column("action", String(32), nullable=False),
    Column("detail", Text, nullable=False),
)

# The two rating tables of revision 0001, only the columns read here.
ratings = Table(
    "ratings",
    MetaData(),
    Column("device_id", String(64)),
    Column("log_id", String(64)),
    Column("seq", BigInteger),
    Column("case_no", Text),
    Column("satisfaction", Integer),
    Column("assess_time", String(19)),
    Column("reasons", Text),
)
phone_ratings = Table(
    "phone_ratings",
    MetaData(),
    Column("device_id", String(64)),
    Column("nonce", String(16)),
    Column("case_no", String(64)),
    Column("assess_time", String(19)),
)


def upgrade() -> None:
    bind = op.get_bind()
    frozen.create_all(bind, checkfirst=True)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    held = [
        {"channel": "window", **r._mapping}
        for r in bind.execute(select(ratings).order_by(ratings.c.assess_time, ratings.c.seq))
    ]
    held += [
        {"channel": "phone", **r._mapping}
        for r in bind.execute(select(phone_ratings).order_by(phone_ratings.c.assess_time))
    ]
    held.sort(key=lambda r: r["assess_time"])
    # Records that exist already (a table made before this revision was recorded) are kept as they are.
    numbers: dict[str, int] = {}
    present = set()
    for o in bind.execute(
        select(
            outbox.c.device_id,
            outbox.c.log_id,
            outbox.c.seq,
            outbox.c.nonce,
            outbox.c.project_no,
            outbox.c.assess_number,
        )
    ):
        present.add((o.device_id, o.log_id, o.seq, o.nonce))
        if o.project_no and o.assess_number:
            numbers[o.project_no] = max(numbers.get(o.project_no, 0), o.assess_number)
    records = []
    for r in held:
        if (r["device_id"], r.get("log_id"), r.get("seq"), r.get("nonce")) in present:
            continue
        case_no = r["case_no"] or None
        if case_no:
            numbers[case_no] = numbers.get(case_no, 0) + 1
            waits = r["channel"] == "window" and r["satisfaction"] <= 2 and r["reasons"] is None
            status, why = ("awaiting_detail" if waits else "pending"), None
        else:
            status, why = "needs_linkage", "projectNo: missing (no case number at the window)"
        records.append(
            {
                "channel": r["channel"],
                "device_id": r["device_id"],
                "log_id": r.get("log_id"),
                "seq": r.get("seq"),
                "nonce": r.get("nonce"),
                "project_no": case_no,
                "assess_number": numbers[case_no] if case_no else None,
                "assess_day": r["assess_time"][:10],
                "status": status,
                "attempts": 0,
                "next_attempt_at": 0.0,
                "last_error": why,
                "created_at": now,
            }
        )
    for start in range(0, len(records), 1000):
        bind.execute(insert(outbox), records[start : start + 1000])


def downgrade() -> None:
    op.drop_table("upstream_actions")
    op.drop_table("upstream_outbox")

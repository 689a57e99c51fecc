"""The figures at city scale, folded further (benchmarks/scale.py, docs/performance.md, docs/figures.md):

- ``desk_item_facts``: each 差评 as the figures count it (its rating's cell, the day it was received,
  whether its rater left a phone number, its newest status, whether a 回访 reached the rater, its first
  办结), a cache of the item, its rating and its action record, kept by the desk in each transaction
  that changes one of them; filled here from the record. The figures' desk counts read a period's rows
  here instead of joining each 差评 to its rating among millions and probing its actions;
- the cells summed coarser, filled here from ``fig_cells`` (itself re-derivable from the events):
  per day, device and staff member (``fig_staff_days``), per day and 事项 (``fig_item_days``), and the
  same three per month (``fig_device_months`` from ``fig_device_days``, ``fig_staff_months``,
  ``fig_item_months``);
- ``fig_phone_count``: how many phone ratings are folded (the rows of ``fig_phone``), so the record head
  is read without counting them.

``kiosk hub stats --verify`` checks all of them.

Revision ID: 0014
Revises: 0013
A frozen copy of the tables as this revision made them (later changes are later revisions).
"""

from alembic import op
from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text, inspect, text

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

FIELDS = (
    "services",
    "walkin",
    "skipped",
    "rated",
    "phone",
    "good",
    "bad",
    "s1",
    "s2",
    "s3",
    "s4",
    "s5",
    "duplicates",
    "unreadable",
)

frozen = MetaData()
item_facts = Table(
    "desk_item_facts",
    frozen,
    Column("item_id", Integer, primary_key=True, autoincrement=False),
    Column("day", String(10), nullable=False),
    Column("device_id", String(64), nullable=False),
    Column("staff_no", Text, nullable=False),
    Column("item_code", Text, nullable=False),
    Column("received", String(10), nullable=False),
    Column("status", String(16), nullable=False),
    Column("real_name", Integer, nullable=False),
    Column("called_back", Integer, nullable=False),
    Column("closed_at", String(25)),
    Index("desk_item_facts_day", "day"),
    Index("desk_item_facts_status_day", "status", "day"),
)


phone_count = Table(
    "fig_phone_count",
    frozen,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("folded", BigInteger, nullable=False),
)


def _sums(name: str, *keys: tuple[str, int]) -> Table:
    return Table(
        name,
        frozen,
        *[Column(key, String(size), primary_key=True) for key, size in keys],
        *[Column(f, BigInteger, nullable=False) for f in FIELDS],
    )


# (table, its key columns, filled from, the source's expression of each key column)
SUMS = (
    (
        _sums("fig_staff_days", ("day", 10), ("device_id", 64), ("staff_no", 64)),
        "fig_cells",
        ("day", "device_id", "staff_no"),
    ),
    (_sums("fig_item_days", ("day", 10), ("item_code", 64)), "fig_cells", ("day", "item_code")),
    (
        _sums("fig_device_months", ("month", 7), ("device_id", 64)),
        "fig_device_days",
        ("substr(day, 1, 7)", "device_id"),
    ),
    (
        _sums("fig_staff_months", ("month", 7), ("device_id", 64), ("staff_no", 64)),
        "fig_staff_days",
        ("substr(day, 1, 7)", "device_id", "staff_no"),
    ),
    (
        _sums("fig_item_months", ("month", 7), ("item_code", 64)),
        "fig_item_days",
        ("substr(day, 1, 7)", "item_code"),
    ),
)

_CLOSED_AT = {  # the instant as UTC text of one format (whole seconds)
    "postgresql": """to_char(timezone('UTC', CAST(a.at AS timestamptz)), 'YYYY-MM-DD"T"HH24:MI:SS') || '+00:00'""",
    "sqlite": "strftime('%Y-%m-%dT%H:%M:%S+00:00', a.at)",
}
_REACHED = {
    "postgresql": "CAST(a.payload AS JSONB) -> 'reached' = CAST('true' AS JSONB)",
    "sqlite": "json_type(a.payload, '$.reached') = 'true'",
}

# Each item's facts from the record, as hub.desk.store.item_facts_query computes them.
FACTS = """
INSERT INTO desk_item_facts (item_id, day, device_id, staff_no, item_code, received, status, real_name,
                             called_back, closed_at)
SELECT i.id, substr(i.assess_time, 1, 10), i.device_id,
       coalesce(r.staff_no, p.staff_no, ''), coalesce(r.item_code, p.item_code, ''), i.received,
       coalesce(s.status, 'open'),
       CASE WHEN coalesce(r.contact_sealed, p.contact_sealed) IS NOT NULL THEN 1 ELSE 0 END,
       CASE WHEN EXISTS (SELECT 1 FROM desk_actions a WHERE a.item_id = i.id AND a.action = 'callback'
                         AND {reached}) THEN 1 ELSE 0 END,
       (SELECT {closed_at} FROM desk_actions a WHERE a.item_id = i.id AND a.action = 'close'
        ORDER BY a.seq LIMIT 1)
FROM desk_items i
LEFT JOIN ratings r ON r.device_id = i.device_id AND r.log_id = i.log_id AND r.seq = i.seq
LEFT JOIN phone_ratings p ON p.device_id = i.device_id AND p.nonce = i.nonce
LEFT JOIN desk_item_status s ON s.item_id = i.id
"""


def upgrade() -> None:
    bind = op.get_bind()
    inspector = inspect(bind)
    postgres = bind.dialect.name == "postgresql"
    if postgres:
        bind.execute(text("SET LOCAL jit = off"))
    if not inspector.has_table("desk_item_facts"):
        item_facts.create(bind)
        dialect = bind.dialect.name if bind.dialect.name in _REACHED else "sqlite"
        bind.execute(text(FACTS.format(reached=_REACHED[dialect], closed_at=_CLOSED_AT[dialect])))
    for table, source, keys in SUMS:
        if inspector.has_table(table.name):  # a re-run after a rewind
            continue
        table.create(bind)
        columns = ", ".join([c.name for c in table.primary_key.columns] + list(FIELDS))
        sums = ", ".join(f"sum({f})" for f in FIELDS)
        by = ", ".join(keys)
        bind.execute(
            text(
                f"INSERT INTO {table.name} ({columns}) "  # noqa: S608 (names above)
                f"SELECT {by}, {sums} FROM {source} GROUP BY {by}"
            )
        )
    if not inspector.has_table("fig_phone_count"):
        phone_count.create(bind)
        bind.execute(text("INSERT INTO fig_phone_count (id, folded) SELECT 1, count(*) FROM fig_phone"))
    if postgres:
        for name in ["desk_item_facts"] + [t.name for t, _, _ in SUMS]:
            bind.execute(text(f"ANALYZE {name}"))


def downgrade() -> None:
    op.execute(text("DROP TABLE IF EXISTS fig_phone_count"))
    for table, _, _ in reversed(SUMS):
        op.drop_table(table.name)
    op.drop_table("desk_item_facts")

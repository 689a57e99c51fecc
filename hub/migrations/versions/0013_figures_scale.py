"""The figures at city scale (benchmarks/scale.py, docs/performance.md):

- ``fig_device_days``: the cells summed per day and device, filled here from ``fig_cells`` (itself
  re-derivable from the events; ``kiosk hub stats --verify`` checks both); a figure by section, window,
  day or month reads these (a month at 10,000,000 ratings: 45,000 rows instead of 800,000 cells);
- ``desk_items`` by ``assess_time``: the figures' desk counts find a period's 差评 by their rating's
  time (without it, a scan of all 400,000 items for one month's 40,000).

Revision ID: 0013
Revises: 0012
A frozen copy of the table as this revision made it (later changes are later revisions).
"""

from alembic import op
from sqlalchemy import BigInteger, Column, MetaData, String, Table, inspect, text

revision = "0013"
down_revision = "0012"
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
device_days = Table(
    "fig_device_days",
    frozen,
    Column("day", String(10), primary_key=True),
    Column("device_id", String(64), primary_key=True),
    *[Column(name, BigInteger, nullable=False) for name in FIELDS],
)

NEW = (("desk_items_assess_time", "desk_items", ["assess_time"]),)


def upgrade() -> None:
    bind = op.get_bind()
    inspector = inspect(bind)
    if not inspector.has_table("fig_device_days"):
        device_days.create(bind)
        columns = ", ".join(FIELDS)
        sums = ", ".join(f"sum({f})" for f in FIELDS)
        bind.execute(
            text(
                f"INSERT INTO fig_device_days (day, device_id, {columns}) "  # noqa: S608 (names above)
                f"SELECT day, device_id, {sums} FROM fig_cells GROUP BY day, device_id"
            )
        )
    for name, table, columns_of in NEW:
        if name not in {i["name"] for i in inspector.get_indexes(table)}:  # a re-run after a rewind
            op.create_index(name, table, columns_of)
    if bind.dialect.name == "postgresql":
        bind.execute(text("ANALYZE fig_device_days"))


def downgrade() -> None:
    for name, table, _ in NEW:
        op.drop_index(name, table)
    op.drop_table("fig_device_days")

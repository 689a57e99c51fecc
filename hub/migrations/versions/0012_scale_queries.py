"""The queries at city and province scale (benchmarks/scale.py, docs/performance.md):

- ``desk_item_status``: each 差评 item's newest status, a cache of the desk's action record (the 台账
  filtered by status read the newest action of every item: a second at 400,000 items), filled here
  from the record;
- indexes of window and phone ratings in the ratings export's own order, so a month of a million
  ratings streams from the first row without a sort, and its totals (count, unlinked, duplicates) are
  counted from the index alone. PostgreSQL only: its default collation orders text ignoring
  punctuation, the export orders by code point (COLLATE "C"); SQLite's default order is the code point
  already and its assess_time index serves there. Building them on a hub holding 10,000,000 ratings
  takes about a minute.

Revision ID: 0012
Revises: 0011
A frozen copy of the table as this revision made it (later changes are later revisions).
"""

from alembic import op
from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, inspect, text

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


NEW = (
    (
        "ratings_export_order",
        "ratings",
        'assess_time COLLATE "C", device_id COLLATE "C", log_id COLLATE "C", seq',
    ),
    (
        "phone_ratings_export_order",
        "phone_ratings",
        'assess_time COLLATE "C", device_id COLLATE "C", nonce COLLATE "C"',
    ),
)


frozen = MetaData()
item_status = Table(
    "desk_item_status",
    frozen,
    Column("item_id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Index("desk_item_status_status", "status", "item_id"),
)


def upgrade() -> None:
    bind = op.get_bind()
    inspector = inspect(bind)
    if not inspector.has_table("desk_item_status"):
        item_status.create(bind)
        bind.execute(
            text(
                "INSERT INTO desk_item_status (item_id, seq, status) "
                "SELECT a.item_id, a.seq, a.status FROM desk_actions a "
                "WHERE a.seq = (SELECT max(b.seq) FROM desk_actions b WHERE b.item_id = a.item_id)"
            )
        )
    if bind.dialect.name != "postgresql":
        return
    # Statistics of the filled table at once: planned without them, the 台账's status filter took 1.3 s.
    bind.execute(text("ANALYZE desk_item_status"))
    for name, table, columns in NEW:
        if name not in {i["name"] for i in inspector.get_indexes(table)}:  # a re-run after a rewind
            op.execute(f"CREATE INDEX {name} ON {table} ({columns}) INCLUDE (case_no)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, _, _ in NEW:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    op.drop_table("desk_item_status")

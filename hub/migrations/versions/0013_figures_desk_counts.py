"""The figures' desk counts (不属实, 回访, on time) summed in SQL per period (hub.figures.desk): the 差评
items of a period are found by their rating's time. Without this index a month's figures read the whole
of ``desk_items`` (400,000 items at city scale, 0.7 s from a cold cache) to find one month's 40,000.

Revision ID: 0013
Revises: 0012
An index only: nothing derived, nothing to re-derive.
"""

from alembic import op
from sqlalchemy import inspect

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


NEW = (("desk_items_assess_time", "desk_items", ["assess_time"]),)


def upgrade() -> None:
    inspector = inspect(op.get_bind())
    for name, table, columns in NEW:
        if name not in {i["name"] for i in inspector.get_indexes(table)}:  # a re-run after a rewind
            op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in NEW:
        op.drop_index(name, table)

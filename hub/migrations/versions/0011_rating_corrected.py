"""The level a ratings row had before the citizen corrected it on the kiosk (``rating_corrected``,
docs/flow.md): ``corrected_from``, NULL for a rating never corrected. Derived like the rest of the row;
``kiosk hub verify`` re-derives it.

Revision ID: 0011
Revises: 0010
A hub holds no rating_corrected event before this revision (the kiosks did not write them), so the new
column is NULL for every row it already has, which is what deriving them again gives.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import inspect

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "corrected_from" not in {c["name"] for c in inspect(op.get_bind()).get_columns("ratings")}:
        op.add_column("ratings", sa.Column("corrected_from", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ratings") as batch:
        batch.drop_column("corrected_from")

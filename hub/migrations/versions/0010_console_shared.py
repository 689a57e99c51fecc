"""The console across hub processes: failed logins in the database, so every process throttles alike
(hub/console/throttle.py).

Revision ID: 0010
Revises: 0009
The table holds no names or addresses (HMACs of them) and only the last 15 minutes of failures.
"""

from alembic import op
from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

frozen = MetaData()

login_failures = Table(
    "console_login_failures",
    frozen,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subject", String(64), nullable=False),
    Column("at", Float, nullable=False),
    Index("console_login_failures_subject_at", "subject", "at"),
    Index("console_login_failures_at", "at"),
)


def upgrade() -> None:
    frozen.create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    op.drop_table("console_login_failures")

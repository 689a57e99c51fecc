"""Issue 10 (security hardening): which devices may still sign v1.

Revision ID: 0002
Revises: 0001
A device registered before this revision has no row in ``device_signature_policy`` and may sign v1 until
an operator turns it off (``kiosk hub device v1-off``); a device registered since gets a row refusing v1.
"""

from alembic import op
from sqlalchemy import Boolean, Column, MetaData, String, Table

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

frozen = MetaData()

device_signature_policy = Table(
    "device_signature_policy",
    frozen,
    Column("device_id", String(64), primary_key=True),
    Column("v1_allowed", Boolean, nullable=False),
    Column("changed_at", String(40), nullable=False),
)


def upgrade() -> None:
    frozen.create_all(op.get_bind(), checkfirst=True)

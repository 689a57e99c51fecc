"""Which devices may still sign requests with version 1 (hub/signature_policy.py).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_signature_policy",
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("v1_allowed", sa.Boolean, nullable=False),
        sa.Column("changed_at", sa.String(40), nullable=False),
    )

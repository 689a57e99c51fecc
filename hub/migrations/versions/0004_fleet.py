"""The fleet: each device's latest heartbeat and a bounded history, remote settings per scope (every
version kept), and device alarms (every raise and clear appended). See docs/fleet.md.

Revision ID: 0004
Revises: 0003
"""

from alembic import op
from sqlalchemy import Column, Float, Integer, String, Text

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_health",
        Column("device_id", String(64), primary_key=True),
        Column("received_at", Float, nullable=False),
        Column("report", Text, nullable=False),
    )
    op.create_table(
        "heartbeats",
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("device_id", String(64), nullable=False),
        Column("received_at", Float, nullable=False),
        Column("report", Text, nullable=False),
    )
    op.create_index("heartbeats_device", "heartbeats", ["device_id", "id"])
    op.create_table(
        "settings_versions",
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("scope", String(100), nullable=False),
        Column("settings", Text, nullable=False),
        Column("created_at", String(40), nullable=False),
        Column("created_by", String(64), nullable=False),
    )
    op.create_index("settings_versions_scope", "settings_versions", ["scope", "id"])
    op.create_table(
        "device_alarms",
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("device_id", String(64), nullable=False),
        Column("kind", String(32), nullable=False),
        Column("state", String(8), nullable=False),
        Column("at", String(40), nullable=False),
        Column("detail", Text, nullable=False),
    )
    op.create_index("device_alarms_device", "device_alarms", ["device_id", "kind", "id"])


def downgrade() -> None:
    for table in ("device_alarms", "settings_versions", "heartbeats", "device_health"):
        op.drop_table(table)

"""The fleet: each device's latest heartbeat and a bounded history, remote settings per scope (every
version kept), and device alarms (every raise and clear appended). See docs/fleet.md.

Revision ID: 0004
Revises: 0003
A frozen copy of the fleet's tables as this revision made them (hub/fleet_schema.py holds the live ones).
Each is created only where it is missing: a database an earlier build of this branch made has them.
"""

from alembic import op
from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table, Text

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

fleet = MetaData()

Table(
    "device_health",
    fleet,
    Column("device_id", String(64), primary_key=True),
    Column("received_at", Float, nullable=False),
    Column("report", Text, nullable=False),
)
Table(
    "heartbeats",
    fleet,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("device_id", String(64), nullable=False),
    Column("received_at", Float, nullable=False),
    Column("report", Text, nullable=False),
    Index("heartbeats_device", "device_id", "id"),
)
Table(
    "settings_versions",
    fleet,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(100), nullable=False),
    Column("settings", Text, nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("created_by", String(64), nullable=False),
    Index("settings_versions_scope", "scope", "id"),
)
Table(
    "device_alarms",
    fleet,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("device_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("state", String(8), nullable=False),
    Column("at", String(40), nullable=False),
    Column("detail", Text, nullable=False),
    Index("device_alarms_device", "device_id", "kind", "id"),
)


def upgrade() -> None:
    fleet.create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    fleet.drop_all(op.get_bind())

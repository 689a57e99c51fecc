"""The fleet's tables (docs/fleet.md), in the hub's one ``MetaData``: each device's latest heartbeat and a
bounded history of them, the remote settings of each scope (every version kept), and device alarms (every
raise and clear appended).
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, String, Table, Text

from .schema import metadata

device_health = Table(
    "device_health",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("received_at", Float, nullable=False),  # hub's unix time of the latest heartbeat
    Column("report", Text, nullable=False),  # the heartbeat body as received (JSON)
)

heartbeats = Table(
    "heartbeats",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("device_id", String(64), nullable=False),
    Column("received_at", Float, nullable=False),
    Column("report", Text, nullable=False),
    Index("heartbeats_device", "device_id", "id"),
)

settings_versions = Table(
    "settings_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(100), nullable=False),  # "*" every device, "dept:CODE", "device:ID"
    Column("settings", Text, nullable=False),  # the whole set of that scope (JSON object)
    Column("created_at", String(40), nullable=False),
    Column("created_by", String(64), nullable=False),
    Index("settings_versions_scope", "scope", "id"),
)

device_alarms = Table(
    "device_alarms",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("device_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),  # device_offline, backlog, clock, serial_error, disk_full
    Column("state", String(8), nullable=False),  # "raised" or "cleared"
    Column("at", String(40), nullable=False),
    Column("detail", Text, nullable=False),
    Index("device_alarms_device", "device_id", "kind", "id"),
)

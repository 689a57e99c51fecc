"""Indexes for the queries that grow with the fleet: the phone page's look-up of a case's case_opened
event (every phone rating reads the device's events by type), and the outbox listed by status.

Revision ID: 0009
Revises: 0008
The other console and API queries were covered already: the export and the desk by assess_time and
received day, the 台账 by (dept, id), the fleet by (device, id), the sender by (status, next attempt).
"""

from alembic import op
from sqlalchemy import inspect

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


NEW = (
    ("events_device_type", "events", ["device_id", "type", "received_at"]),
    ("upstream_outbox_status_id", "upstream_outbox", ["status", "id"]),
)


def upgrade() -> None:
    inspector = inspect(op.get_bind())
    for name, table, columns in NEW:
        if name not in {i["name"] for i in inspector.get_indexes(table)}:  # a re-run after a rewind
            op.create_index(name, table, columns)


def downgrade() -> None:
    op.drop_index("upstream_outbox_status_id", "upstream_outbox")
    op.drop_index("events_device_type", "events")

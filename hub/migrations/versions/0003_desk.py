"""The 差评 desk: users, sections, devices' sections, 差评 items, the hash-chained action record, alerts.

Revision ID: 0003
Revises: 0002
A frozen copy of the desk's tables as this revision made them (hub/desk/tables.py holds the live ones).
"""

from alembic import op
from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text, UniqueConstraint

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

desk = MetaData()

sections = Table(
    "desk_sections",
    desk,
    Column("code", String(32), primary_key=True),
    Column("name", Text, nullable=False),
    Column("created_at", String(40), nullable=False),
)

users = Table(
    "desk_users",
    desk,
    Column("name", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("dept", String(32)),  # a section code, for role dept only
    Column("password_hash", Text),  # Argon2id; NULL until a password is set
    Column("must_change", Integer, nullable=False),  # 1: the next login must set a new password
    Column("token_hash", String(64), unique=True),  # SHA-256 of the API token (random, 256 bits)
    Column("disabled", Integer, nullable=False),
    Column("created_at", String(40), nullable=False),
)

# Which section each device belongs to, appended on every change; the latest row counts.
device_sections = Table(
    "desk_device_sections",
    desk,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("device_id", String(64), nullable=False, index=True),
    Column("dept", String(32), nullable=False),
    Column("at", String(40), nullable=False),
)

# One row per 差评, added in the transaction that stores the rating (window or phone page).
items = Table(
    "desk_items",
    desk,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("device_id", String(64), nullable=False),
    Column("log_id", String(64)),  # window ratings: (device_id, log_id, seq)
    Column("seq", BigInteger),
    Column("nonce", String(16)),  # phone ratings: (device_id, nonce)
    Column("dept", String(32)),  # the device's section when the rating arrived; NULL: none yet
    Column("satisfaction", Integer, nullable=False),
    Column("assess_time", String(19), nullable=False),
    Column("received", String(10), nullable=False),  # hub-local date of receipt (day 0 of the deadline)
    Column("received_at", String(40), nullable=False),
    UniqueConstraint("device_id", "log_id", "seq"),
    UniqueConstraint("device_id", "nonce"),
    Index("desk_items_dept_id", "dept", "id"),
    Index("desk_items_received", "received"),
)

# The action record: one chain for the whole desk, seq 1, 2, … each linking to the previous hash.
actions = Table(
    "desk_actions",
    desk,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("item_id", Integer, nullable=False),
    Column("at", String(40), nullable=False),
    Column("by_user", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("action", String(32), nullable=False),  # a workflow action, or "contact" (a reveal)
    Column("payload", Text, nullable=False),  # canonical JSON
    Column("status", String(16), nullable=False),  # the item's status after it
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("desk_actions_item", "item_id", "seq"),
    Index("desk_actions_action", "action", "seq"),
)

# Alerts to send: one per (target, event, subject), so each is sent once; attempts appended.
alerts = Table(
    "desk_alerts",
    desk,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("target", String(64), nullable=False),  # SHA-256 prefix of the target's kind and URL
    Column("event", String(32), nullable=False),
    Column("subject", String(128), nullable=False),  # "item:ID" or "device:ID:since"
    Column("text", Text, nullable=False),  # canonical JSON of the alert's fields
    Column("created_at", String(40), nullable=False),
    UniqueConstraint("target", "event", "subject"),
)

alert_attempts = Table(
    "desk_alert_attempts",
    desk,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer, nullable=False, index=True),
    Column("at", String(40), nullable=False),
    Column("ok", Integer, nullable=False),
    Column("error", Text),
)


def upgrade() -> None:
    desk.create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    desk.drop_all(op.get_bind())

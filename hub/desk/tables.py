"""The desk's tables, in the hub's one ``MetaData``: users, sections, devices' sections (appended),
the 差评 items derived from the ratings the hub holds, the hash-chained record of every action on them
(contact reveals included), and the alert outbox with its delivery attempts.

Only ``users`` is changed in place (a password, a token, disabling an account), ``desk_item_status``, a
cache of the newest status in the action record, and ``desk_item_facts``, a cache of what the figures
count of each item; everything else is appended and never updated or deleted.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text, UniqueConstraint

from ..schema import metadata

sections = Table(
    "desk_sections",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("name", Text, nullable=False),
    Column("created_at", String(40), nullable=False),
)

users = Table(
    "desk_users",
    metadata,
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
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("device_id", String(64), nullable=False, index=True),
    Column("dept", String(32), nullable=False),
    Column("at", String(40), nullable=False),
)

# One row per 差评, added in the transaction that stores the rating (window or phone page).
items = Table(
    "desk_items",
    metadata,
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
    Index("desk_items_assess_time", "assess_time"),  # the figures' desk counts by period (revision 0013)
)

# The action record: one chain for the whole desk, seq 1, 2, … each linking to the previous hash.
actions = Table(
    "desk_actions",
    metadata,
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
    Index("desk_actions_status", "status", "item_id"),
)

# Each item's status now: the status of its newest action (the newest seq of the item in the record). A
# cache of the record, written in the transaction that appends the action and checked against the record
# by `kiosk hub verify` ("desk action chain"); the 台账 filters and counts by it (benchmarks/scale.py:
# reading the newest action of each of 400,000 items took a second). An item without a row is open.
item_status = Table(
    "desk_item_status",
    metadata,
    Column("item_id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Index("desk_item_status_status", "status", "item_id"),
)

# Each 差评 as the figures count it (hub.figures.desk): its rating's cell (local day, device, staff member,
# 事项; "" for none), the day it was received (day 0 of its deadline, which the figures compute from the
# calendar when asked), whether its rater left a phone number, its newest status, whether a 回访 reached
# the rater and when it was first closed (办结). A cache of the item, its rating and its action record,
# rewritten from them (``fold_item_facts``) in every transaction that adds an item, completes its rating
# (the detail with the phone number) or appends an action; `kiosk hub stats --verify` recomputes it.
# The figures' desk counts read a period's rows here (40,000 a month at city scale) instead of joining
# each 差评 to its rating among millions and probing its actions (benchmarks/scale.py).
item_facts = Table(
    "desk_item_facts",
    metadata,
    Column("item_id", Integer, primary_key=True, autoincrement=False),
    Column("day", String(10), nullable=False),
    Column("device_id", String(64), nullable=False),
    Column("staff_no", Text, nullable=False),
    Column("item_code", Text, nullable=False),
    Column("received", String(10), nullable=False),
    Column("status", String(16), nullable=False),
    Column("real_name", Integer, nullable=False),
    Column("called_back", Integer, nullable=False),
    Column("closed_at", String(25)),  # the first close's instant: UTC, YYYY-MM-DDTHH:MM:SS+00:00; NULL: never
    Index("desk_item_facts_day", "day"),
    Index("desk_item_facts_status_day", "status", "day"),  # 不属实 alone: a year's rates
)

# Alerts to send: one per (target, event, subject), so each is sent once; attempts appended.
alerts = Table(
    "desk_alerts",
    metadata,
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
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer, nullable=False, index=True),
    Column("at", String(40), nullable=False),
    Column("ok", Integer, nullable=False),
    Column("error", Text),
)

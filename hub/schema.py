"""The hub's tables, in one SQLAlchemy ``MetaData``: devices, the kiosks' event logs, the ratings derived
from them, phone ratings, rosters and photos. Every change to them is an Alembic migration in
``hub/migrations/versions/`` (a database is upgraded when a hub opens it).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

devices = Table(
    "devices",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("secret", String(128), nullable=False),  # hex; the hub needs the secret itself to check HMACs
    Column("area_code", String(16), nullable=False),
    Column("dept_code", String(32), nullable=False),
    Column("created_at", String(40), nullable=False),
)


def _log_key(*, with_seq: bool) -> list[Column]:
    """The primary key of anything belonging to one log of one device (and one event of it)."""
    key = [Column("device_id", String(64), primary_key=True), Column("log_id", String(64), primary_key=True)]
    return [*key, Column("seq", BigInteger, primary_key=True)] if with_seq else key


logs = Table(
    "logs",
    metadata,
    *_log_key(with_seq=False),
    Column("acked_seq", BigInteger, nullable=False),
    Column("head_hash", String(64), nullable=False),
    Column("first_seen_at", String(40), nullable=False),
    Column("last_seen_at", String(40), nullable=False),
)

events = Table(
    "events",
    metadata,
    *_log_key(with_seq=True),
    Column("id", String(64), nullable=False),
    Column("type", String(64), nullable=False),
    Column("at", String(64), nullable=False),
    Column("payload", Text, nullable=False),  # canonical JSON
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("received_at", String(40), nullable=False),
    Index("events_device_type", "device_id", "type", "received_at"),  # the phone page's case_opened
)

# Derived from rating and rating_detail events in the same transaction that stores them.
ratings = Table(
    "ratings",
    metadata,
    *_log_key(with_seq=True),
    Column("window", Text),
    Column("staff_no", Text),
    Column("staff_name", Text),
    Column("ticket_no", Text),
    Column("case_no", Text),
    Column("item_code", Text),
    Column("item_name", Text),
    Column("satisfaction", Integer, nullable=False),
    Column("input", Text),
    Column("at", String(64), nullable=False),
    Column("assess_time", String(19), nullable=False, index=True),  # kiosk-local yyyy-MM-dd HH:mm:ss
    Column("reasons", Text),  # comma-separated reason codes, from the rating_detail event
    Column("contact_sealed", Text),
    # The level before the citizen corrected it on the kiosk (rating_corrected); NULL: never corrected.
    Column("corrected_from", Integer),
    Index("ratings_device_case", "device_id", "case_no"),  # 一次一评: is this case rated already?
)

# Ratings made on a phone through the QR code page, one per token and one per (device, case number).
phone_ratings = Table(
    "phone_ratings",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("nonce", String(16), primary_key=True),  # the token's nonce, hex
    Column("window", Text, nullable=False),
    Column("staff_no", Text),
    Column("staff_name", Text),  # from the roster, when the token's staff number is in it
    Column("ticket_no", Text),  # from the case_opened event, when it is at the hub
    Column("case_no", String(64)),
    Column("item_code", Text),
    Column("item_name", Text),
    Column("satisfaction", Integer, nullable=False),
    Column("reasons", Text),  # comma-separated reason codes
    Column("contact_sealed", Text),
    Column("issued_at", BigInteger, nullable=False),  # the token's, unix seconds
    Column("at", String(40), nullable=False),  # when the hub stored it, UTC
    Column("assess_time", String(19), nullable=False, index=True),  # hub-local yyyy-MM-dd HH:mm:ss
    # Their own hash chain (hub/derived.py), over every column but hash; unique: one row a link.
    Column("chain_seq", BigInteger),
    Column("prev_hash", String(64)),
    Column("hash", String(64)),
    UniqueConstraint("device_id", "case_no"),  # several NULL case numbers are allowed
    Index("phone_ratings_chain_seq", "chain_seq", unique=True),
)

rosters = Table(
    "rosters",
    metadata,
    Column("scope", String(64), primary_key=True),  # a device id, or ALL_DEVICES
    Column("version", String(64), nullable=False),
    Column("imported_at", String(40), nullable=False),
)

roster_staff = Table(
    "roster_staff",
    metadata,
    Column("scope", String(64), primary_key=True),
    Column("card", String(64), primary_key=True),
    Column("staff_no", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("photo_sha256", String(64)),
)

photos = Table(
    "photos",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("data", LargeBinary, nullable=False),
    Column("media_type", String(64), nullable=False),
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

ALL_DEVICES = "*"  # the roster scope of every device without its own roster

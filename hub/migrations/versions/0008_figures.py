"""Figures: materialised cells with their fold cursors, labels, and the quarterly 回访 samples.

Revision ID: 0008
Revises: 0007
A frozen copy of the tables as this revision made them (later changes are later revisions).
"""

from alembic import op
from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text, UniqueConstraint

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

frozen = MetaData()
COUNTS = (
    *("services", "walkin", "skipped", "rated", "phone", "good", "bad"),
    *("s1", "s2", "s3", "s4", "s5", "duplicates", "unreadable"),
)

Table(
    "fig_cells",
    frozen,
    Column("day", String(10), primary_key=True),
    Column("device_id", String(64), primary_key=True),
    Column("staff_no", String(64), primary_key=True),
    Column("item_code", String(64), primary_key=True),
    *[Column(name, BigInteger, nullable=False) for name in COUNTS],
)
Table(
    "fig_logs",
    frozen,
    Column("device_id", String(64), primary_key=True),
    Column("log_id", String(64), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("state", Text, nullable=False),
)
Table(
    "fig_phone",
    frozen,
    Column("device_id", String(64), primary_key=True),
    Column("nonce", String(16), primary_key=True),
    Column("assess_time", String(19), nullable=False, index=True),
)
Table(
    "fig_labels",
    frozen,
    Column("kind", String(8), primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("at", String(40), nullable=False),
    Column("value", Text, nullable=False),
)
Table(
    "fig_samples",
    frozen,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("quarter", String(6), nullable=False),
    Column("scope", String(32), nullable=False),
    Column("seed", String(20), nullable=False),
    Column("share", Text, nullable=False),
    Column("size", Integer, nullable=False),
    Column("population", Integer, nullable=False),
    Column("population_digest", String(64), nullable=False),
    Column("drawn_at", String(40), nullable=False),
    Column("drawn_by", String(64), nullable=False),
    UniqueConstraint("quarter", "scope"),
)
Table(
    "fig_sample_cases",
    frozen,
    Column("sample_id", Integer, primary_key=True),
    Column("case_no", String(64), primary_key=True),
    Column("device_id", String(64), nullable=False),
    Column("day", String(10), nullable=False),
    Column("window", Text),
    Column("dept", Text),
    Column("staff_no", Text),
    Column("item_code", Text),
    Column("item_name", Text),
    Column("satisfaction", Integer),
)
Table(
    "fig_sample_calls",
    frozen,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sample_id", Integer, nullable=False),
    Column("case_no", String(64), nullable=False),
    Column("at", String(40), nullable=False),
    Column("by_user", String(64), nullable=False),
    Column("reached", Integer, nullable=False),
    Column("satisfied", Integer),
    Column("comment", Text, nullable=False),
    Index("fig_sample_calls_case", "sample_id", "case_no", "id"),
)


def upgrade() -> None:
    frozen.create_all(op.get_bind())


def downgrade() -> None:
    frozen.drop_all(op.get_bind())

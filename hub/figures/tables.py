"""The figures' tables, in the hub's one ``MetaData``: the materialised cells (sums of the record per day,
device, staff member and 事项), the fold cursors that say which part of the record they hold, the labels
(names of staff, 事项 and windows), and the quarterly 回访 samples with their appended call outcomes.

Cells are a cache of the record, never a source: ``kiosk hub stats --verify`` recomputes them from the
events and fails on any difference. Samples and their outcomes are appended, never updated or deleted.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text, UniqueConstraint

from ..schema import metadata
from .model import ROLLUP_FIELDS

cells = Table(
    "fig_cells",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("device_id", String(64), primary_key=True),
    Column("staff_no", String(64), primary_key=True),  # "" when nobody was signed in
    Column("item_code", String(64), primary_key=True),  # "" when the case named no 事项
    *[Column(name, BigInteger, nullable=False) for name in ROLLUP_FIELDS],
)

# The cells summed per day and device (every staff member and 事项 together), folded with them and
# checked against them by ``stats --verify``: what a figure by section, window, day or month reads (at
# city scale a window's day is 18 cells of 200 事项, a month 800,000 cells against 45,000 of these).
device_days = Table(
    "fig_device_days",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("device_id", String(64), primary_key=True),
    *[Column(name, BigInteger, nullable=False) for name in ROLLUP_FIELDS],
)


def _sums(name: str, *keys: tuple[str, int]) -> Table:
    return Table(
        name,
        metadata,
        *[Column(key, String(size), primary_key=True) for key, size in keys],
        *[Column(f, BigInteger, nullable=False) for f in ROLLUP_FIELDS],
    )


# The cells summed coarser, each folded with the cells in the same transaction and checked against the
# cells recomputed from the record by ``stats --verify`` (revision 0014). A query reads the coarsest that
# still holds what it groups or filters by (``FigureStore._read_part``), whole months of a period from
# the monthly ones. At city scale (benchmarks/scale.py) a month is 928,000 cells, 45,000 rows per day and
# device, 90,000 per day, device and staff member, 6,000 per day and 事项; a quarter by month 4,500 rows
# per device, 9,000 per device and staff member, 600 per 事项.
staff_days = _sums("fig_staff_days", ("day", 10), ("device_id", 64), ("staff_no", 64))
item_days = _sums("fig_item_days", ("day", 10), ("item_code", 64))
device_months = _sums("fig_device_months", ("month", 7), ("device_id", 64))
staff_months = _sums("fig_staff_months", ("month", 7), ("device_id", 64), ("staff_no", 64))
item_months = _sums("fig_item_months", ("month", 7), ("item_code", 64))

# Each table of sums (fig_device_days included) and the key of a cell in it, column by column.
GRAINS: dict[Table, tuple[str, ...]] = {
    device_days: ("day", "device_id"),
    staff_days: ("day", "device_id", "staff_no"),
    item_days: ("day", "item_code"),
    device_months: ("month", "device_id"),
    staff_months: ("month", "device_id", "staff_no"),
    item_months: ("month", "item_code"),
}

# How far each log is folded into the cells, and the replay state to go on from there.
folded_logs = Table(
    "fig_logs",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("log_id", String(64), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),  # the hash of the event at seq: the head folded
    Column("state", Text, nullable=False),  # JSON of model.LogState
)

# Phone ratings folded into the cells.
folded_phone = Table(
    "fig_phone",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("nonce", String(16), primary_key=True),
    Column("assess_time", String(19), nullable=False, index=True),
)

# How many phone ratings are folded (the rows of fig_phone): one row (id 1), written with each fold that
# folds some (revision 0014). The record head reads it instead of counting them: 301,000 at city scale,
# 30 ms a count, one per snapshot (the console's overview takes six). Checked by ``stats --verify``.
folded_phone_count = Table(
    "fig_phone_count",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("folded", BigInteger, nullable=False),
)

labels = Table(
    "fig_labels",
    metadata,
    Column("kind", String(8), primary_key=True),  # staff, items, windows
    Column("key", String(64), primary_key=True),
    Column("at", String(40), nullable=False),  # when the name was said; the latest wins
    Column("value", Text, nullable=False),
)

samples = Table(
    "fig_samples",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("quarter", String(6), nullable=False),  # 2026Q4
    Column("scope", String(32), nullable=False),  # "" for the bureau, else a section code
    Column("seed", String(20), nullable=False),  # decimal, 64 bits
    Column("share", Text, nullable=False),
    Column("size", Integer, nullable=False),
    Column("population", Integer, nullable=False),
    Column("population_digest", String(64), nullable=False),
    Column("drawn_at", String(40), nullable=False),
    Column("drawn_by", String(64), nullable=False),
    UniqueConstraint("quarter", "scope"),
)

# The call sheet: the sampled cases as they were when drawn.
sample_cases = Table(
    "fig_sample_cases",
    metadata,
    Column("sample_id", Integer, primary_key=True),
    Column("case_no", String(64), primary_key=True),
    Column("device_id", String(64), nullable=False),
    Column("day", String(10), nullable=False),
    Column("window", Text),
    Column("dept", Text),
    Column("staff_no", Text),
    Column("item_code", Text),
    Column("item_name", Text),
    Column("satisfaction", Integer),  # the rating the case got, if any
)

sample_calls = Table(
    "fig_sample_calls",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sample_id", Integer, nullable=False),
    Column("case_no", String(64), nullable=False),
    Column("at", String(40), nullable=False),
    Column("by_user", String(64), nullable=False),
    Column("reached", Integer, nullable=False),
    Column("satisfied", Integer),  # NULL: not asked (not reached)
    Column("comment", Text, nullable=False),
    Index("fig_sample_calls_case", "sample_id", "case_no", "id"),
)

"""The figures as pure functions of the record (docs/figures.md): no I/O, no clock, no database.

The record is the kiosks' event logs, the phone ratings and the 差评 desk's decisions. A log is replayed
in seq order (who is signed in decides whose service a case is); every fact lands in a **cell**: one
day, one device (a window's evaluator), one member of staff, one 事项. Cells are what the hub keeps
materialised; every figure by section, window, staff, 事项, day or month is a sum of cells, so the same
functions compute what is served and what ``kiosk hub stats --verify`` recomputes from the raw record.
"""

from __future__ import annotations

import hashlib
import math
import operator
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from typing import Any

from core.domain import is_bad, is_satisfied

from ..ratings import correction_values, detail_values, rating_row

NONE_KEY = ""  # the key of "no staff signed in" / "no 事项" / "no section"
DIMENSIONS = ("dept", "window", "staff", "item", "day", "month")
MAX_OPEN_CASES = 16  # cases a log may hold open at once in the replay state (the kiosk has one or two)


@dataclass(frozen=True, order=True)
class Cell:
    """The grain of the figures: one local day at one device, for one staff member and one 事项."""

    day: str  # yyyy-MM-dd, local to where the fact happened
    device_id: str
    staff_no: str = NONE_KEY
    item_code: str = NONE_KEY


@dataclass(slots=True)
class Counts:
    """What the record says about a cell, or a sum of cells. ``good + bad == rated`` always."""

    services: int = 0  # cases opened (case_opened)
    walkin: int = 0  # of which walk-ins (source walkin)
    skipped: int = 0  # cases closed unrated at the terminal (rating_skipped)
    rated: int = 0  # ratings counted: terminal and phone, one per case where the case is known
    phone: int = 0  # of which by phone through the window's QR code
    good: int = 0  # 基本满意 or better
    bad: int = 0  # 不满意 or 非常不满意 (差评), 不属实 ones included
    s1: int = 0
    s2: int = 0
    s3: int = 0
    s4: int = 0
    s5: int = 0
    duplicates: int = 0  # terminal ratings of a case already rated by phone: not counted in rated
    unreadable: int = 0  # rating events whose payload the hub cannot read: not counted
    # From the desk's record (counted when asked, from each item's facts in desk_item_facts):
    not_adopted: int = 0  # 差评 marked 不属实 by the supervisor's 复核 decision
    real_name_bad: int = 0  # adopted 差评 with the rater's phone number
    called_back: int = 0  # of which 回访 reached the rater
    response_due: int = 0  # adopted 差评 closed, or past their deadline
    on_time: int = 0  # of which closed on or before the deadline

    def add(self, other: Counts) -> Counts:
        for name in COUNT_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNT_FIELDS}

    @classmethod
    def of(cls, **values: int) -> Counts:
        return cls(**values)


COUNT_FIELDS = tuple(f.name for f in fields(Counts))
_values = operator.attrgetter(*COUNT_FIELDS)
ROLLUP_FIELDS = tuple(
    f.name
    for f in fields(Counts)
    if f.name not in ("not_adopted", "real_name_bad", "called_back", "response_due", "on_time")
)
DESK_FIELDS = ("not_adopted", "real_name_bad", "called_back", "response_due", "on_time")


def ratio(numerator: int, denominator: int) -> float | None:
    return None if denominator <= 0 else numerator / denominator


def rates(c: Counts) -> dict[str, float | None]:
    """The rates of docs/figures.md; None where the denominator is zero (never a made-up 0 or 100%)."""
    counted = c.rated - c.not_adopted
    return {
        "satisfactionRate": ratio(c.good, counted),
        "participationRate": ratio(c.rated, c.services),
        "badRate": ratio(c.bad - c.not_adopted, counted),
        "callbackRate": ratio(c.called_back, c.real_name_bad),
        "onTimeRate": ratio(c.on_time, c.response_due),
    }


# --- replaying one log -------------------------------------------------------------------------------


@dataclass
class LogState:
    """What the replay of one log carries from one stretch of events to the next."""

    seq: int = 0  # the last seq replayed
    staff_no: str = NONE_KEY  # who is signed in
    open_cases: dict[int, list[str]] = field(default_factory=dict)  # case seq -> [day, staff_no, item]
    # The 差评 that may still be corrected (the log's newest rating, no rating_detail yet): rating seq ->
    # [day, staff_no, item, level, counted], counted 1 unless the rating was a duplicate of a phone
    # rating (then nothing moves). At most one entry.
    correctable: dict[int, list[Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "staff_no": self.staff_no,
            "open_cases": {str(k): v for k, v in self.open_cases.items()},
            "correctable": {str(k): v for k, v in self.correctable.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LogState:
        return cls(
            seq=int(data["seq"]),
            staff_no=str(data["staff_no"]),
            open_cases={int(k): list(v) for k, v in data["open_cases"].items()},
            # A fold state saved before corrections existed has none waiting.
            correctable={int(k): list(v) for k, v in data.get("correctable", {}).items()},
        )


@dataclass
class Labels:
    """What a key is called, the latest naming winning (by the time it was said): staff names, 事项
    names, and the window number each device reports in its ratings."""

    staff: dict[str, tuple[str, str]] = field(default_factory=dict)  # staff_no -> (at, name)
    items: dict[str, tuple[str, str]] = field(default_factory=dict)  # item_code -> (at, name)
    windows: dict[str, tuple[str, str]] = field(default_factory=dict)  # device_id -> (at, window)

    def note(self, kind: str, key: str | None, at: str, value: Any) -> None:
        if not key or not isinstance(value, str) or not value or "\x00" in value:
            return  # a name with a NUL cannot be stored (PostgreSQL text)
        table = getattr(self, kind)
        if key not in table or table[key] < (at, value):
            table[key] = (at, value)

    def merge(self, other: Labels) -> Labels:
        for kind in ("staff", "items", "windows"):
            for key, (at, value) in getattr(other, kind).items():
                self.note(kind, key, at, value)
        return self

    def name(self, kind: str, key: str) -> str | None:
        found = getattr(self, kind).get(key)
        return found[1] if found else None


Deltas = dict[Cell, Counts]


def _bump(deltas: Deltas, cell: Cell, **values: int) -> None:
    counts = deltas.setdefault(cell, Counts())
    for name, value in values.items():
        setattr(counts, name, getattr(counts, name) + value)


MAX_KEY_CHARS = 64  # the width of the cells' key columns (hub.figures.tables)


def _text(value: Any) -> str:
    """A code as a cell's key: NONE_KEY when there is none, or one the cells cannot hold (longer than their
    key columns, or with a NUL, which PostgreSQL text refuses: one kiosk's such code stopped every fold)."""
    if isinstance(value, str) and value and len(value) <= MAX_KEY_CHARS and "\x00" not in value:
        return value
    return NONE_KEY


def _seq(value: Any) -> int:
    return value if type(value) is int else -1


def rating_counts(satisfaction: int, *, phone: bool) -> dict[str, int]:
    good = is_satisfied(satisfaction)
    return {
        "rated": 1,
        "phone": int(phone),
        "good": int(good),
        "bad": int(not good),
        f"s{satisfaction}": 1,
    }


def replay_log(
    device_id: str,
    events: Iterable[Mapping[str, Any]],
    state: LogState | None = None,
    rated_by_phone: Callable[[str], bool] = lambda case_no: False,
    deltas: Deltas | None = None,
    labels: Labels | None = None,
) -> tuple[Deltas, LogState, Labels]:
    """Fold the events of one log (in seq order, after ``state.seq``) into cell deltas.

    - ``case_opened``: a service of whoever is signed in, on the day it was opened, for its 事项.
    - ``rating``: rated, on its own day, for the staff member and 事项 it names (the kiosk writes who
      served); not counted when the same case was rated by phone first (``rated_by_phone``; 一次一评).
    - ``rating_skipped``: skipped, in the cell of the case it closes.
    - ``rating_corrected``: the 差评 it names, before its ``rating_detail``, counts as the corrected level
      instead, in the rating's own cell (a correction in a later upload than its rating moves the counts
      then: the fold state keeps each 差评 until its detail).
    """
    state = state or LogState()
    deltas = {} if deltas is None else deltas
    labels = labels or Labels()
    for e in events:
        seq = e["seq"]
        if seq <= state.seq:
            continue
        state.seq = seq
        kind, payload, at = e["type"], e["payload"], e["at"]
        if not isinstance(payload, Mapping) or not isinstance(at, str):
            continue
        day = at[:10]
        if kind == "staff_signin":
            state.staff_no = _text(payload.get("staff_no"))
            labels.note("staff", state.staff_no, at, payload.get("staff_name"))
        elif kind == "staff_signout":
            state.staff_no = NONE_KEY
        elif kind == "case_opened":
            item = _text(payload.get("item_code"))
            labels.note("items", item, at, payload.get("item_name"))
            _bump(
                deltas,
                Cell(day, device_id, state.staff_no, item),
                services=1,
                walkin=int(payload.get("source") == "walkin"),
            )
            state.open_cases[seq] = [day, state.staff_no, item]
            while len(state.open_cases) > MAX_OPEN_CASES:
                del state.open_cases[min(state.open_cases)]
        elif kind == "rating":
            row = rating_row(dict(e))
            if row is None:
                _bump(deltas, Cell(day, device_id), unreadable=1)
                continue
            state.open_cases.pop(_seq(payload.get("case_seq")), None)
            cell = Cell(day, device_id, _text(row["staff_no"]), _text(row["item_code"]))
            labels.note("staff", cell.staff_no, at, row["staff_name"])
            labels.note("items", cell.item_code, at, row["item_name"])
            labels.note("windows", device_id, at, row["window"])
            counted = not (row["case_no"] is not None and rated_by_phone(row["case_no"]))
            if not counted:
                _bump(deltas, cell, duplicates=1)
            else:
                _bump(deltas, cell, **rating_counts(row["satisfaction"], phone=False))
            state.correctable.clear()  # a correction names the log's newest rating only
            if is_bad(row["satisfaction"]):
                state.correctable[seq] = [
                    day,
                    cell.staff_no,
                    cell.item_code,
                    row["satisfaction"],
                    int(counted),
                ]
        elif kind == "rating_corrected":
            correction = correction_values(dict(e))
            waiting = state.correctable.get(correction[0]) if correction is not None else None
            if correction is not None and waiting is not None:
                level = correction[1]
                if waiting[4]:
                    cell = Cell(waiting[0], device_id, waiting[1], waiting[2])
                    before = rating_counts(waiting[3], phone=False)
                    after = rating_counts(level, phone=False)
                    _bump(deltas, cell, **{k: after.get(k, 0) - before.get(k, 0) for k in before | after})
                waiting[3] = level
        elif kind == "rating_detail":
            detail = detail_values(dict(e))
            if detail is not None:
                state.correctable.pop(detail[0], None)
        elif kind == "rating_skipped":
            case = state.open_cases.pop(_seq(payload.get("case_seq")), None)
            if case is not None:
                _bump(deltas, Cell(case[0], device_id, case[1], case[2]), skipped=1)
    return deltas, state, labels


def phone_rating_deltas(
    rows: Iterable[Mapping[str, Any]], deltas: Deltas | None = None, labels: Labels | None = None
) -> tuple[Deltas, Labels]:
    """Phone ratings (the QR code page) in the cell of the window's device, on the day they were given."""
    deltas = {} if deltas is None else deltas
    labels = labels or Labels()
    for r in rows:
        cell = Cell(r["assess_time"][:10], r["device_id"], _text(r["staff_no"]), _text(r["item_code"]))
        at = r["assess_time"]
        labels.note("staff", cell.staff_no, at, r["staff_name"])
        labels.note("items", cell.item_code, at, r["item_name"])
        labels.note("windows", r["device_id"], at, r["window"])
        _bump(deltas, cell, **rating_counts(r["satisfaction"], phone=True))
    return deltas, labels


# --- the desk's decisions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeskItem:
    """One 差评 of the desk, in the cell of its rating, with what its record says."""

    cell: Cell
    not_adopted: bool  # 不属实 by the supervisor's decision
    real_name: bool  # the rater left a phone number
    called_back: bool  # a 回访 reached the rater
    deadline: date | None  # None: the calendar does not reach it (not counted)
    closed_on: date | None  # the local day of its 办结 (close), if any


def desk_deltas(items: Iterable[DeskItem], today: date, deltas: Deltas | None = None) -> Deltas:
    """not_adopted, 回访 and response-on-time counts of the 差评, each in its rating's cell.

    A 差评 is due a response once closed or once its deadline has passed (``today`` after it); on time
    when closed on or before its deadline. 不属实 ones count only as not_adopted.
    """
    deltas = {} if deltas is None else deltas
    for item in items:
        if item.not_adopted:
            _bump(deltas, item.cell, not_adopted=1)
            continue
        due = item.deadline is not None and (item.closed_on is not None or today > item.deadline)
        _bump(
            deltas,
            item.cell,
            real_name_bad=int(item.real_name),
            called_back=int(item.real_name and item.called_back),
            response_due=int(due),
            on_time=int(
                due
                and item.closed_on is not None
                and item.deadline is not None
                and item.closed_on <= item.deadline
            ),
        )
    return deltas


# --- grouping ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sections:
    """Which section each device belongs to on a day: the latest assignment made on or before that day;
    before its first assignment a device counts with its first section (its setting-up days)."""

    history: Mapping[str, Sequence[tuple[str, str]]] = field(default_factory=dict)  # device -> [(day, dept)]

    def of(self, device_id: str, day: str) -> str:
        assigned = self.history.get(device_id)
        if not assigned:
            return NONE_KEY
        current = assigned[0][1]
        for since, dept in assigned:
            if since > day:
                break
            current = dept
        return current


@dataclass(frozen=True)
class Filters:
    dept: str | None = None
    window: str | None = None
    staff: str | None = None
    item: str | None = None
    depts: frozenset[str] | None = None  # a scope: only these sections (a dept user's own)


def window_of(labels: Labels, device_id: str) -> str:
    """A window is named by the number its evaluator reports; a device that never reported one, by its id."""
    return labels.name("windows", device_id) or device_id


def key_of(by: str, cell: Cell, sections: Sections, labels: Labels) -> str:
    if by == "dept":
        return sections.of(cell.device_id, cell.day)
    if by == "window":
        return window_of(labels, cell.device_id)
    if by == "staff":
        return cell.staff_no
    if by == "item":
        return cell.item_code
    if by == "day":
        return cell.day
    if by == "month":
        return cell.day[:7]
    raise ValueError(f"by must be one of {', '.join(DIMENSIONS)}")


def selected(cell: Cell, f: Filters, sections: Sections, labels: Labels) -> bool:
    if f.dept is not None or f.depts is not None:
        dept = sections.of(cell.device_id, cell.day)
        if f.dept is not None and dept != f.dept:
            return False
        if f.depts is not None and dept not in f.depts:
            return False
    if f.window is not None and window_of(labels, cell.device_id) != f.window:
        return False
    if f.staff is not None and cell.staff_no != f.staff:
        return False
    return f.item is None or cell.item_code == f.item


def group(
    cells: Iterable[tuple[Cell, Counts]],
    by: str,
    sections: Sections,
    labels: Labels,
    f: Filters = Filters(),
    first: str | None = None,
    last: str | None = None,
) -> tuple[dict[str, Counts], Counts]:
    """Sum cells (days ``first``…``last`` inclusive) by ``by``; returns the groups and their total."""
    sums: dict[str, list[int]] = {}
    for cell, counts in cells:
        if (first is not None and cell.day < first) or (last is not None and cell.day > last):
            continue
        if not selected(cell, f, sections, labels):
            continue
        key = key_of(by, cell, sections, labels)
        values = _values(counts)
        found = sums.get(key)
        sums[key] = list(values) if found is None else [a + b for a, b in zip(found, values, strict=True)]
    groups = {key: Counts(*values) for key, values in sums.items()}
    total = Counts(*[sum(column) for column in zip(*sums.values(), strict=True)]) if sums else Counts()
    return groups, total


def merge_deltas(*parts: Mapping[Cell, Counts]) -> Deltas:
    merged: Deltas = {}
    for part in parts:
        for cell, counts in part.items():
            merged.setdefault(cell, Counts()).add(counts)
    return merged


# --- periods -------------------------------------------------------------------------------------------


def month_range(month: str) -> tuple[str, str]:
    year, m = int(month[:4]), int(month[5:7])
    start = date(year, m, 1)
    end = date(year + (m == 12), m % 12 + 1, 1) - timedelta(days=1)
    return start.isoformat(), end.isoformat()


def quarter_of(day: str) -> str:
    return f"{day[:4]}Q{(int(day[5:7]) - 1) // 3 + 1}"


def quarter_range(quarter: str) -> tuple[str, str]:
    year, q = int(quarter[:4]), int(quarter[5])
    first = month_range(f"{year}-{3 * q - 2:02d}")[0]
    last = month_range(f"{year}-{3 * q:02d}")[1]
    return first, last


def period_range(period: str) -> tuple[str, str]:
    """``2026-11`` (a month), ``2026Q4`` (a quarter) or ``2026-11-28`` (a day) as (first, last) days."""
    if len(period) == 6 and period[4] == "Q" and period[5] in "1234":
        return quarter_range(period)
    if len(period) == 7:
        return month_range(period)
    date.fromisoformat(period)
    return period, period


def previous_periods(period: str, count: int) -> list[str]:
    """``count`` periods ending with ``period`` (months or quarters), oldest first."""
    out = [period]
    for _ in range(count - 1):
        p = out[0]
        if "Q" in p:
            year, q = int(p[:4]), int(p[5])
            out.insert(0, f"{year - (q == 1)}Q{(q - 2) % 4 + 1}")
        else:
            year, m = int(p[:4]), int(p[5:7])
            out.insert(0, f"{year - (m == 1)}-{(m - 2) % 12 + 1:02d}")
    return out


# --- rankings ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ranked:
    key: str
    rank: int | None  # 1 = best; None: too few ratings to rank
    satisfaction_rate: float | None
    counted: int  # rated − not_adopted
    bottom: bool  # among the bottom N of this period
    run: int  # periods running (ending with this one) in the bottom N
    flagged: bool  # run >= K: 连续排名靠后 (第十五条)


def rank_period(groups: Mapping[str, Counts], min_rated: int) -> list[tuple[str, int | None]]:
    """Keys best first with their rank; a key with fewer than ``min_rated`` counted ratings is unranked.

    Order: satisfaction rate (higher first), then fewer adopted 差评, then more ratings, then the key.
    Equal rates and 差评 counts share a rank.
    """

    def sort_key(item: tuple[str, Counts]):
        key, c = item
        counted = c.rated - c.not_adopted
        return (-(c.good / counted), c.bad - c.not_adopted, -counted, key)

    rankable = [(k, c) for k, c in groups.items() if c.rated - c.not_adopted >= max(1, min_rated)]
    rankable.sort(key=sort_key)
    out: list[tuple[str, int | None]] = []
    rank, previous = 0, None
    for i, (key, c) in enumerate(rankable, start=1):
        counted, adopted_bad = c.rated - c.not_adopted, c.bad - c.not_adopted
        same = (
            previous is not None
            and c.good * previous[1] == previous[0] * counted
            and previous[2] == adopted_bad
        )
        rank = rank if same else i
        out.append((key, rank))
        previous = (c.good, counted, adopted_bad)
    out += sorted((k, None) for k in groups if k not in {k for k, _ in rankable})
    return out


def bottom_keys(ranking: Sequence[tuple[str, int | None]], n: int) -> set[str]:
    """The keys ranked in the bottom ``n`` (everyone sharing the n-th worst rank included)."""
    ranked = [(k, r) for k, r in ranking if r is not None]
    if n <= 0 or not ranked:
        return set()
    worst = sorted({r for _, r in ranked if r is not None}, reverse=True)
    cut_rank = worst[0]
    counted = 0
    for r in worst:
        counted += sum(1 for _, rr in ranked if rr == r)
        cut_rank = r
        if counted >= n:
            break
    return {k for k, r in ranked if r is not None and r >= cut_rank}


def rankings(
    periods: Sequence[tuple[str, Mapping[str, Counts]]], n: int, k: int, min_rated: int
) -> list[Ranked]:
    """The ranking of the last period in ``periods`` (oldest first), each key with how many periods
    running it was in the bottom ``n`` and whether that reaches ``k``."""
    if not periods:
        return []
    bottoms = [bottom_keys(rank_period(groups, min_rated), n) for _, groups in periods]
    latest = periods[-1][1]
    out = []
    for key, rank in rank_period(latest, min_rated):
        run = 0
        for bottom in reversed(bottoms):
            if key not in bottom:
                break
            run += 1
        c = latest[key]
        out.append(
            Ranked(
                key=key,
                rank=rank,
                satisfaction_rate=rates(c)["satisfactionRate"],
                counted=c.rated - c.not_adopted,
                bottom=key in bottoms[-1],
                run=run,
                flagged=run >= k,
            )
        )
    return out


# --- the quarterly 回访 sample (第十七条) ---------------------------------------------------------------


def sample_size(population: int, share: float, minimum: int, maximum: int) -> int:
    """ceil(share × population), at least ``minimum`` and at most ``maximum``, never more than there are."""
    wanted = math.ceil(share * population - 1e-9)
    return min(population, max(minimum, min(maximum, wanted)))


def draw_sample(population: Iterable[str], seed: int, size: int) -> list[str]:
    """A uniform random sample of ``size`` keys, the same for the same population and seed (whatever the
    order the population came in), sorted."""
    keys = sorted(set(population))
    return sorted(random.Random(seed).sample(keys, min(size, len(keys))))


def population_digest(population: Iterable[str]) -> str:
    """SHA-256 of the sorted distinct keys, one a line: says whether a redraw had the same population."""
    return hashlib.sha256("\n".join(sorted(set(population))).encode("utf-8")).hexdigest()

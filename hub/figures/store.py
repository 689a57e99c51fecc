"""The figures over the hub's database: folding the record into cells (and their coarser sums, ``GRAINS``),
answering the stats queries, and ``verify``, which recomputes the cells from the raw record and compares
them, the coarser sums and the desk's facts.

Folding is lazy: every query first folds what arrived since the last fold (each log from its cursor,
with the replay state kept there; each phone rating not yet folded), in one transaction with the new
cursors, so the cells always hold exactly the record up to the cursors, and the head of the record the
figures were computed from is read from those cursors. The desk's decisions (不属实, 回访, 办结) change
after the rating: they are counted at the moment of asking by one SQL aggregate per period part over
``desk_item_facts`` (each item's facts, kept by the desk with every change; deadlines computed when
asked), summed per device and key like the cells.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, func, select, text
from sqlalchemy.dialects import postgresql, sqlite

from core.events import ZERO_HASH, canonical_json
from core.progress import advance, set_total

from ..desk.store import check_item_facts
from ..desk.tables import actions, device_sections
from ..desk.tables import sections as desk_sections
from ..schema import events, logs, phone_ratings
from . import model as m
from .tables import (
    GRAINS,
    cells,
    device_days,
    device_months,
    folded_logs,
    folded_phone,
    folded_phone_count,
    item_days,
    item_months,
    labels,
    staff_days,
    staff_months,
)

_PG_FOLD_LOCK = 0x66696773  # "figs"
_EVENT_CHUNK = 5000
_PHONE_OVERLAP = "01:00:00"  # phone ratings are re-checked this far behind the newest folded one


@dataclass(frozen=True)
class Head:
    """The head of the record a set of figures was computed from."""

    logs: int
    events: int
    events_digest: str  # SHA-256 over every folded log's (device, log, seq, hash), sorted
    phone_ratings: int
    desk_seq: int
    desk_hash: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(canonical_json(self.parts())).hexdigest()

    def parts(self) -> dict[str, Any]:
        return {
            "logs": self.logs,
            "events": self.events,
            "eventsDigest": self.events_digest,
            "phoneRatings": self.phone_ratings,
            "deskSeq": self.desk_seq,
            "deskHash": self.desk_hash,
        }

    def as_json(self) -> dict[str, Any]:
        return {**self.parts(), "head": self.digest}


@dataclass
class Snapshot:
    """Cells of a period with everything needed to group them."""

    cells: m.Deltas
    labels: m.Labels
    sections: m.Sections
    section_names: dict[str, str]
    head: Head
    today: date
    notes: list[str] = field(default_factory=list)


def _dialect_insert(engine: Engine):
    return postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert


@functools.lru_cache(maxsize=1 << 16)
def local_day(iso: str) -> str:
    """The local day of an instant. Remembered: every snapshot reads each device's section changes (1,500
    at city scale, 28 ms a snapshot converted afresh, six snapshots a console overview)."""
    return datetime.fromisoformat(iso).astimezone().date().isoformat()


class FigureStore:
    """The figures of one hub database (``engine`` is the HubStore's)."""

    def __init__(self, engine: Engine, today=lambda: datetime.now().astimezone().date(), deadline_of=None):
        self.engine = engine
        self.today = today
        self.deadline_of = deadline_of  # received day -> the 差评's deadline (the desk's working-day rule)
        self._lock = threading.Lock()
        self._labels: tuple[str, m.Labels] | None = None  # the labels as of a head (``_labels_of``)
        self._insert = _dialect_insert(engine)

    # --- folding -----------------------------------------------------------------------------------

    def refresh(self) -> int:
        """Fold what arrived since the last fold; returns how many events and phone ratings it folded."""
        with self._lock, self.engine.begin() as conn:
            # One fold at a time, also across processes (the hub and `kiosk hub stats --verify`): the
            # cursors are read only once the lock is held, so no delta is folded twice.
            if self.engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_FOLD_LOCK})
            else:  # a write statement takes SQLite's write lock for the transaction, even matching nothing
                conn.execute(folded_logs.update().where(text("1 = 0")).values(seq=folded_logs.c.seq))
            deltas: m.Deltas = {}
            names = m.Labels()
            folded = self._fold_logs(conn, deltas, names) + self._fold_phone(conn, deltas, names)
            self._write(conn, deltas, names)
        return folded

    def _fold_logs(self, conn, deltas: m.Deltas, names: m.Labels) -> int:
        behind = conn.execute(
            select(logs.c.device_id, logs.c.log_id, logs.c.acked_seq, folded_logs.c.seq, folded_logs.c.state)
            .select_from(logs)
            .outerjoin(
                folded_logs,
                and_(folded_logs.c.device_id == logs.c.device_id, folded_logs.c.log_id == logs.c.log_id),
            )
            .where(logs.c.acked_seq > func.coalesce(folded_logs.c.seq, 0))
        ).all()
        done = 0
        set_total(sum(acked - (cursor or 0) for _d, _l, acked, cursor, _s in behind))  # a terminal's bar
        for device_id, log_id, acked, cursor, state_json in behind:
            state = m.LogState.from_json(json.loads(state_json)) if state_json else m.LogState()
            by_phone = self._phone_cases(conn, device_id)
            last_hash = None
            while state.seq < acked:
                chunk = self._events(conn, device_id, log_id, state.seq, min(acked, state.seq + _EVENT_CHUNK))
                if not chunk:
                    break
                m.replay_log(device_id, chunk, state, by_phone.__contains__, deltas, names)
                last_hash = chunk[-1]["hash"]
                done += len(chunk)
                advance(len(chunk))
            row = {"seq": state.seq, "hash": last_hash or ZERO_HASH, "state": json.dumps(state.to_json())}
            if cursor is None:
                conn.execute(folded_logs.insert().values(device_id=device_id, log_id=log_id, **row))
            else:
                conn.execute(
                    folded_logs.update()
                    .where((folded_logs.c.device_id == device_id) & (folded_logs.c.log_id == log_id))
                    .values(**row)
                )
        return done

    @staticmethod
    def _events(conn, device_id: str, log_id: str, after: int, upto: int) -> list[dict[str, Any]]:
        rows = conn.execute(
            select(events.c.seq, events.c.type, events.c.at, events.c.payload, events.c.hash)
            .where(
                (events.c.device_id == device_id)
                & (events.c.log_id == log_id)
                & (events.c.seq > after)
                & (events.c.seq <= upto)
            )
            .order_by(events.c.seq)
        )
        return [
            {"seq": r.seq, "type": r.type, "at": r.at, "payload": json.loads(r.payload), "hash": r.hash}
            for r in rows
        ]

    @staticmethod
    def _phone_cases(conn, device_id: str) -> set[str]:
        """Case numbers of the device rated by phone (a terminal rating of one of them is a duplicate)."""
        return set(
            conn.execute(
                select(phone_ratings.c.case_no).where(
                    (phone_ratings.c.device_id == device_id) & phone_ratings.c.case_no.is_not(None)
                )
            ).scalars()
        )

    def _fold_phone(self, conn, deltas: m.Deltas, names: m.Labels) -> int:
        total = conn.execute(select(func.count()).select_from(phone_ratings)).scalar()
        done, stored = _phone_folded(conn)
        if not stored:  # a database whose count was never written: write it now
            conn.execute(folded_phone_count.insert().values(id=1, folded=done))
        if total == done:
            return 0
        newest = conn.execute(select(func.max(folded_phone.c.assess_time))).scalar()
        query = (
            select(phone_ratings)
            .outerjoin(
                folded_phone,
                and_(
                    folded_phone.c.device_id == phone_ratings.c.device_id,
                    folded_phone.c.nonce == phone_ratings.c.nonce,
                ),
            )
            .where(folded_phone.c.nonce.is_(None))
        )
        rows = []
        if newest is not None:  # the usual case: only the newest ones are new
            since = _minus(newest, _PHONE_OVERLAP)
            rows = conn.execute(query.where(phone_ratings.c.assess_time >= since)).mappings().all()
        if newest is None or len(rows) + done < total:
            rows = conn.execute(query).mappings().all()
        m.phone_rating_deltas(rows, deltas, names)
        if rows:
            conn.execute(
                folded_phone_count.update()
                .where(folded_phone_count.c.id == 1)
                .values(folded=done + len(rows))
            )
            conn.execute(
                folded_phone.insert(),
                [
                    {"device_id": r["device_id"], "nonce": r["nonce"], "assess_time": r["assess_time"]}
                    for r in rows
                ],
            )
        return len(rows)

    def _write(self, conn, deltas: m.Deltas, names: m.Labels) -> None:
        if deltas:
            stmt = self._insert(cells)
            stmt = stmt.on_conflict_do_update(
                index_elements=["day", "device_id", "staff_no", "item_code"],
                set_={f: cells.c[f] + stmt.excluded[f] for f in m.ROLLUP_FIELDS},
            )
            conn.execute(
                stmt,
                [
                    {
                        "day": c.day,
                        "device_id": c.device_id,
                        "staff_no": c.staff_no,
                        "item_code": c.item_code,
                        **{f: getattr(v, f) for f in m.ROLLUP_FIELDS},
                    }
                    for c, v in sorted(deltas.items(), key=_cell_order)
                ],
            )
        for table, columns in GRAINS.items() if deltas else ():  # the same sums, coarser
            stmt = self._insert(table)
            stmt = stmt.on_conflict_do_update(
                index_elements=list(columns),
                set_={f: table.c[f] + stmt.excluded[f] for f in m.ROLLUP_FIELDS},
            )
            conn.execute(
                stmt,
                [
                    {**dict(zip(columns, key, strict=True)), **{f: getattr(v, f) for f in m.ROLLUP_FIELDS}}
                    for key, v in sorted(_by_grain(deltas, columns).items())
                ],
            )
        rows = [
            {"kind": kind, "key": key, "at": at, "value": value}
            for kind in ("staff", "items", "windows")
            for key, (at, value) in getattr(names, kind).items()
            if len(key) <= 64
        ]
        if rows:
            stmt = self._insert(labels)
            stmt = stmt.on_conflict_do_update(
                index_elements=["kind", "key"],
                set_={"at": stmt.excluded.at, "value": stmt.excluded.value},
                where=(labels.c.at < stmt.excluded.at)
                | ((labels.c.at == stmt.excluded.at) & (labels.c.value < stmt.excluded.value)),
            )
            conn.execute(stmt, rows)

    # --- reading -----------------------------------------------------------------------------------

    def head(self, conn) -> Head:
        folded = conn.execute(
            select(
                folded_logs.c.device_id, folded_logs.c.log_id, folded_logs.c.seq, folded_logs.c.hash
            ).order_by(folded_logs.c.device_id, folded_logs.c.log_id)
        ).all()
        digest = hashlib.sha256(canonical_json([list(r) for r in folded])).hexdigest()
        phone, _ = _phone_folded(conn)
        desk_seq, desk_hash = desk_head(conn)
        return Head(len(folded), sum(r.seq for r in folded), digest, phone, desk_seq, desk_hash)

    def current_head(self) -> Head:
        with self.engine.connect() as conn:
            return self.head(conn)

    def snapshot(
        self,
        first: str | None,
        last: str | None,
        *,
        staff: str | None = None,
        item: str | None = None,
        keep: tuple[str, ...] = (),
        refresh: bool = True,
        by_device: bool = True,
        desk_fields: tuple[str, ...] = m.DESK_FIELDS,
    ) -> Snapshot:
        """The cells of days ``first``…``last`` (inclusive; None: open) with the desk's counts merged in,
        and the head they were computed from.

        Summed in SQL per device and per the columns in ``keep`` (``staff_no``, ``item_code``, ``day``,
        ``month``), so a query reads one row per device and key, not one per cell. Where a device changed
        section within the period, the period is cut at that day (a device is in one section per part),
        and each row's ``day`` is a day of its part, so grouping by section stays exact.

        ``by_device=False`` (with something in ``keep``): summed per key only, every row's device the
        empty key, for a caller that neither groups nor filters by section or window (a month by 事项:
        200 rows instead of 300,000 at city scale). ``desk_fields=("not_adopted",)``: of the desk's
        counts only 不属实 (the others 0), enough for the satisfaction and participation rates.
        """
        if refresh:
            self.refresh()
        today = self.today()
        with self.engine.connect() as conn:
            if self.engine.dialect.name == "postgresql":
                # Sums over a period are costed high enough for PostgreSQL's JIT, whose compiling took
                # longer than the queries themselves (1.2 s for a month's desk counts, 10,000,000 ratings).
                conn.exec_driver_sql("SET LOCAL jit = off")
            head = self.head(conn)
            history, section_names = read_sections(conn)
            sections = m.Sections(history)
            found: m.Deltas = {}
            for part_first, part_last in _parts(first, last, sections):
                self._read_part(conn, found, part_first, part_last, keep, staff, item, by_device)
                for cell, counts in desk_counts(
                    conn,
                    part_first,
                    part_last,
                    self.deadline_of,
                    today,
                    keep,
                    staff,
                    item,
                    by_device,
                    desk_fields,
                ):
                    found.setdefault(cell, m.Counts()).add(counts)
            names = self._labels_of(conn, head)
        return Snapshot(found, names, sections, section_names, head, today)

    def _labels_of(self, conn, head: Head) -> m.Labels:
        """The labels, read again only when the record's head moved (they change only with a fold): the
        console's overview asks six times a page, 20 ms each at city scale."""
        cached = self._labels
        if cached is None or cached[0] != head.digest:
            cached = self._labels = (head.digest, read_labels(conn))
        names = cached[1]
        return m.Labels(dict(names.staff), dict(names.items), dict(names.windows))

    @staticmethod
    def _read_part(conn, found: m.Deltas, first, last, keep, staff, item, by_device=True) -> None:
        """The sums of days ``first``…``last`` from the coarsest table that holds what is kept or
        filtered: per day and device without a staff member or 事项, per day, device and staff member
        without a 事项, per day and 事项 for a 事项 without a device; the cells otherwise. Whole months
        within the period come from the monthly sums unless the rows are kept per day."""
        with_staff = "staff_no" in keep or staff is not None
        with_item = "item_code" in keep or item is not None
        with_device = by_device or not keep
        daily, monthly = (
            (cells, None)
            if with_staff and with_item or with_item and with_device
            else (staff_days, staff_months)
            if with_staff
            else (item_days, item_months)
            if with_item
            else (device_days, device_months)
        )
        if monthly is None or "day" in keep or first is None or last is None:
            spans = [(first, last, daily)]
        else:
            spans = [(a, b, monthly if whole else daily) for a, b, whole in _month_spans(first, last)]
        for a, b, table in spans:
            _read_sums(conn, found, table, a, b, keep, staff, item, with_device)

    # --- verification ------------------------------------------------------------------------------

    def recompute(self) -> tuple[m.Deltas, m.Deltas]:
        """The cells from the raw record up to the fold cursors: every folded log replayed from seq 1,
        every folded phone rating; and the cells as stored, read in the same view."""
        fresh, stored, _ = self.recompute_all()
        return fresh, stored

    def recompute_all(self) -> tuple[m.Deltas, m.Deltas, dict[Any, dict[tuple[str, ...], m.Counts]]]:
        """``recompute``, and every table of coarser sums (``GRAINS``: per day and device, …) as stored,
        read in the same view."""
        deltas: m.Deltas = {}
        names = m.Labels()
        with self.engine.connect() as conn:
            _snapshot_begin(conn)
            folded: Any = conn.execute(
                select(folded_logs.c.device_id, folded_logs.c.log_id, folded_logs.c.seq)
            ).all()
            set_total(sum(upto for _d, _l, upto in folded))
            for device_id, log_id, upto in folded:
                state = m.LogState()
                by_phone = self._phone_cases(conn, device_id)
                while state.seq < upto:
                    chunk = self._events(
                        conn, device_id, log_id, state.seq, min(upto, state.seq + _EVENT_CHUNK)
                    )
                    if not chunk:
                        break
                    m.replay_log(device_id, chunk, state, by_phone.__contains__, deltas, names)
                    advance(len(chunk))
            rows: Any = conn.execute(
                select(phone_ratings).join(
                    folded_phone,
                    and_(
                        folded_phone.c.device_id == phone_ratings.c.device_id,
                        folded_phone.c.nonce == phone_ratings.c.nonce,
                    ),
                )
            ).mappings()
            m.phone_rating_deltas(rows, deltas, names)
            stored = {
                m.Cell(r.day, r.device_id, r.staff_no, r.item_code): m.Counts(
                    **{f: int(getattr(r, f)) for f in m.ROLLUP_FIELDS}
                )
                for r in conn.execute(select(cells))
            }
            grains = {
                table: {
                    tuple(getattr(r, c) for c in columns): m.Counts(
                        **{f: int(getattr(r, f)) for f in m.ROLLUP_FIELDS}
                    )
                    for r in conn.execute(select(table))
                }
                for table, columns in GRAINS.items()
            }
            conn.rollback()
        return deltas, stored, grains

    def verify(self, first: str | None = None, last: str | None = None) -> list[str]:
        """Differences between the materialised cells (days ``first``…``last``), the coarser sums
        (``GRAINS``) and the desk's facts (``desk_item_facts``, every item) and what the raw record
        says; empty when they agree."""
        self.refresh()
        fresh, stored, grains = self.recompute_all()
        with self.engine.connect() as conn:
            _snapshot_begin(conn)
            problems = check_item_facts(conn)
            counted = conn.execute(select(func.count()).select_from(folded_phone)).scalar()
            said, _ = _phone_folded(conn)
            if said != counted:
                problems.append(
                    f"fig_phone_count says {said} phone ratings are folded but fig_phone holds {counted}"
                )
            conn.rollback()
        for table, columns in GRAINS.items():
            want_rows = _by_grain(fresh, columns)
            have_rows = grains[table]
            monthly = columns[0] == "month"
            for key in sorted(set(want_rows) | set(have_rows)):
                when = key[0]
                if (first is not None and when < (first[:7] if monthly else first)) or (
                    last is not None and when > (last[:7] if monthly else last)
                ):
                    continue
                want = want_rows.get(key, m.Counts()).as_dict()
                have = have_rows.get(key, m.Counts()).as_dict()
                diff = {f: (have[f], want[f]) for f in m.ROLLUP_FIELDS if have[f] != want[f]}
                if diff:
                    what = ", ".join(f"{f} served {h} but the record says {w}" for f, (h, w) in diff.items())
                    problems.append(f"{_grain_text(table, key)}: {what}")
        for cell in sorted(set(fresh) | set(stored)):
            if (first is not None and cell.day < first) or (last is not None and cell.day > last):
                continue
            want = fresh.get(cell, m.Counts()).as_dict()
            have = stored.get(cell, m.Counts()).as_dict()
            diff = {f: (have[f], want[f]) for f in m.ROLLUP_FIELDS if have[f] != want[f]}
            if diff:
                what = ", ".join(f"{f} served {h} but the record says {w}" for f, (h, w) in diff.items())
                problems.append(
                    f"{cell.day} device {cell.device_id} staff {cell.staff_no or '-'} "
                    f"事项 {cell.item_code or '-'}: {what}"
                )
        return problems


def _phone_folded(conn) -> tuple[int, bool]:
    """How many phone ratings are folded (``fig_phone_count``), and whether that row exists (else they
    are counted)."""
    stored = conn.execute(select(folded_phone_count.c.folded).where(folded_phone_count.c.id == 1)).scalar()
    if stored is not None:
        return int(stored), True
    return int(conn.execute(select(func.count()).select_from(folded_phone)).scalar() or 0), False


def _grain_key(cell: m.Cell, columns: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(cell.day[:7] if c == "month" else getattr(cell, c) for c in columns)


def _by_grain(deltas: m.Deltas, columns: tuple[str, ...]) -> dict[tuple[str, ...], m.Counts]:
    """Cells summed per the key ``columns`` (of ``GRAINS``): the rows of that table."""
    out: dict[tuple[str, ...], m.Counts] = {}
    for c, v in deltas.items():
        out.setdefault(_grain_key(c, columns), m.Counts()).add(v)
    return out


def _grain_text(table, key: tuple[str, ...]) -> str:
    """A row of a table of sums, as the verify report names it."""
    named = dict(zip(GRAINS[table], key, strict=True))
    when = named.get("day") or named.get("month") or ""
    parts = [when] + [f"{label} {named[c] or '-'}" for c, label in _KEY_LABELS if c in named]
    return " ".join(parts) + f" ({_WHOLE[tuple(c for c in GRAINS[table] if c not in ('day', 'month'))]})"


_KEY_LABELS = (("device_id", "device"), ("staff_no", "staff"), ("item_code", "事项"))
_WHOLE = {
    ("device_id",): "all staff and 事项",
    ("device_id", "staff_no"): "all 事项",
    ("item_code",): "all devices and staff",
}


def _month_spans(first: str, last: str) -> list[tuple[str, str, bool]]:
    """Days ``first``…``last`` as (first, last, whole months?): the days before the first whole month,
    the whole months, the days after the last."""
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    whole_first = start if start.day == 1 else _next_month(start)
    whole_end = _next_month(end) if _next_month(end) - timedelta(days=1) == end else end.replace(day=1)
    if whole_first >= whole_end:  # no whole month inside
        return [(first, last, False)]
    spans = []
    if start < whole_first:
        spans.append((first, (whole_first - timedelta(days=1)).isoformat(), False))
    spans.append((whole_first.isoformat(), (whole_end - timedelta(days=1)).isoformat(), True))
    if whole_end <= end:
        spans.append((whole_end.isoformat(), last, False))
    return spans


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _read_sums(conn, found: m.Deltas, table, first, last, keep, staff, item, with_device: bool) -> None:
    """Rows of one table of sums (or the cells) over days ``first``…``last``, summed in SQL per device
    (``with_device``) and the columns in ``keep``, added into ``found``."""
    monthly = "month" in table.c
    when = table.c.month if monthly else table.c.day
    by: list[Any] = [table.c.device_id.label("device_id")] if with_device else []
    if "staff_no" in keep:
        by.append(table.c.staff_no)
    if "item_code" in keep:
        by.append(table.c.item_code)
    if "day" in keep:
        by.append(table.c.day)
    elif "month" in keep:
        by.append(when if monthly else func.substr(when, 1, 7))
    query = select(
        *by, func.min(when).label("first_day"), *[func.sum(table.c[f]).label(f) for f in m.ROLLUP_FIELDS]
    ).group_by(*by)
    if monthly:  # whole months only (``_month_spans``)
        first, last = first and first[:7], last and last[:7]
    query = _where_days(query, when, first, last)
    if staff is not None:
        query = query.where(table.c.staff_no == staff)
    if item is not None:
        query = query.where(table.c.item_code == item)
    for r in conn.execute(query):
        values = r._mapping
        cell = m.Cell(
            values["first_day"] + "-01" if monthly else values["first_day"],
            values.get("device_id", m.NONE_KEY),
            values["staff_no"] if "staff_no" in keep else m.NONE_KEY,
            values["item_code"] if "item_code" in keep else m.NONE_KEY,
        )
        counts = m.Counts(*[int(values[f] or 0) for f in m.ROLLUP_FIELDS])
        if cell in found:
            found[cell].add(counts)
        else:
            found[cell] = counts


def _cell_order(item: tuple[m.Cell, m.Counts]) -> tuple[str, str, str, str]:
    """Upserts in one order in every process (no deadlock between two folds on PostgreSQL)."""
    c = item[0]
    return c.day, c.device_id, c.staff_no, c.item_code


def _minus(assess_time: str, hms: str) -> str:
    h, mi, s = (int(x) for x in hms.split(":"))
    moment = datetime.strptime(assess_time, "%Y-%m-%d %H:%M:%S")
    return (moment - timedelta(hours=h, minutes=mi, seconds=s)).strftime("%Y-%m-%d %H:%M:%S")


def _where_days(query, column, first: str | None, last: str | None):
    if first is not None:
        query = query.where(column >= first)
    if last is not None:
        query = query.where(column <= last)
    return query


def _snapshot_begin(conn) -> None:
    """One consistent view for a whole read (SQLite's driver starts no transaction for a SELECT)."""
    if conn.engine.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")


def _parts(first: str | None, last: str | None, sections: m.Sections) -> list[tuple[str | None, str | None]]:
    """The period cut at every day within it on which some device changed section."""
    cuts = sorted(
        {
            day
            for assigned in sections.history.values()
            for (day, dept), (_, before) in zip(assigned[1:], assigned, strict=False)
            if dept != before and (first is None or day > first) and (last is None or day <= last)
        }
    )
    parts: list[tuple[str | None, str | None]] = []
    start = first
    for day in cuts:
        parts.append((start, (date.fromisoformat(day) - timedelta(days=1)).isoformat()))
        start = day
    parts.append((start, last))
    return parts


def read_labels(conn) -> m.Labels:
    names = m.Labels()
    for r in conn.execute(select(labels)):
        getattr(names, r.kind)[r.key] = (r.at, r.value)
    return names


# --- the desk's record (hub.desk) --------------------------------------------------------------------


def read_sections(conn) -> tuple[dict[str, list[tuple[str, str]]], dict[str, str]]:
    """Each device's section assignments as (local day, section), oldest first, and section names."""
    history: dict[str, list[tuple[str, str]]] = {}
    for device_id, dept, at in conn.execute(
        select(device_sections.c.device_id, device_sections.c.dept, device_sections.c.at).order_by(
            device_sections.c.id
        )
    ).all():
        history.setdefault(device_id, []).append((local_day(at), dept))
    names = dict(conn.execute(select(desk_sections.c.code, desk_sections.c.name)).all())
    return history, names


def desk_head(conn) -> tuple[int, str]:
    row = conn.execute(select(actions.c.seq, actions.c.hash).order_by(actions.c.seq.desc()).limit(1)).first()
    return (int(row[0]), row[1]) if row else (0, ZERO_HASH)


def desk_counts(
    conn, first, last, deadline_of, today, keep, staff=None, item=None, by_device=True, fields=m.DESK_FIELDS
) -> list[tuple[m.Cell, m.Counts]]:
    """The desk's counts of the period summed in SQL per device and key (hub.figures.desk)."""
    from .desk import desk_counts as read

    return read(conn, first, last, deadline_of, today, keep, staff, item, by_device, fields)


def desk_items(conn, first: str | None, last: str | None, deadline_of) -> Iterable[m.DeskItem]:
    """The 差评 of the desk whose rating fell on days ``first``…``last``, in their rating's cell."""
    from .desk import desk_items as read

    return read(conn, first, last, deadline_of)

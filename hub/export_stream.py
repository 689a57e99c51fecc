"""The ratings export read as a stream: a query over window ratings and one over phone ratings, each in
the order of an index, read through server-side cursors in pages, merged, and written out row by row as
JSON or CSV.

A month of a province is a million rows: building them in memory took gigabytes. Here the hub holds
one page of rows at a time, whatever the range. The totals (``count``, ``unlinked``, ``duplicates``)
come in the response headers from aggregate queries run in the same snapshot as the rows (so they
agree; index-only on PostgreSQL, revision 0010), and in JSON after the list, counted while writing it.
"""

from __future__ import annotations

import csv
import heapq
import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Engine,
    Integer,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    null,
    select,
)

from core.domain import PF_HALL_EVALUATOR, PF_QRCODE
from core.spreadsheet import safe_row

from .ratings import EXPORT_FIELDS, export_record
from .schema import devices, phone_ratings, ratings

PAGE_ROWS = 1000  # rows fetched from the server-side cursor at a time: the hub's memory, whatever the range
BOM = "\ufeff"  # Excel on a Chinese Windows reads UTF-8 as GBK without it

_COLUMNS = (
    "device_id",
    "log_id",
    "seq",
    "window",
    "staff_no",
    "staff_name",
    "ticket_no",
    "case_no",
    "item_code",
    "item_name",
    "satisfaction",
    "assess_time",
    "reasons",
    "contact_sealed",
)


@dataclass(frozen=True)
class Totals:
    count: int
    unlinked: int
    duplicates: int

    def headers(self) -> dict[str, str]:
        return {
            "X-Rating-Count": str(self.count),
            "X-Unlinked-Count": str(self.unlinked),
            "X-Duplicate-Count": str(self.duplicates),
        }


def _c(column, dialect: str):
    """``column`` in code-point order, as Python sorts (PostgreSQL's default collation ignores
    punctuation); SQLite's default is code-point order already."""
    return column.collate("C") if dialect == "postgresql" else column


def _in_range(table, first: str | None, last: str | None, dialect: str):
    """assess_time within two inclusive bounds, compared as the export's index orders it (revision 0010:
    same answer as any collation for the fixed ``yyyy-MM-dd HH:mm:ss`` form)."""
    bounds = []
    if first is not None:
        bounds.append(_c(table.c.assess_time, dialect) >= first)
    if last is not None:
        bounds.append(_c(table.c.assess_time, dialect) <= last)
    return and_(True, *bounds)


def export_queries(first: str | None, last: str | None, *, dialect: str):
    """(window ratings, phone ratings) between two inclusive assess_time bounds, each in the export's
    order, which the hub merges into one list ordered by (assess_time, device, log, seq, pf): ``pf`` 4
    for the window evaluator, 3 for the QR code page.

    Each is read in the order of an index (revision 0010), so the first rows come at once and nothing
    is sorted: a month of a province is a million rows. A window rating of a case already rated by
    phone is kept, with ``duplicate`` true. The device's codes are added by the reader.
    """
    rated_by_phone = (
        select(phone_ratings.c.nonce)
        .where(
            (phone_ratings.c.device_id == ratings.c.device_id)
            & (phone_ratings.c.case_no == ratings.c.case_no)
        )
        .exists()
    )
    terminal = (
        select(
            *(ratings.c[name] for name in _COLUMNS),
            literal(PF_HALL_EVALUATOR).label("pf"),
            cast(null(), String(16)).label("qr_nonce"),
            rated_by_phone.label("duplicate"),
            ratings.c.corrected_from,
        )
        .where(_in_range(ratings, first, last, dialect))
        .order_by(
            _c(ratings.c.assess_time, dialect),
            _c(ratings.c.device_id, dialect),
            _c(ratings.c.log_id, dialect),
            ratings.c.seq,
        )
    )
    phone = (
        select(
            phone_ratings.c.device_id,
            cast(null(), String(64)).label("log_id"),
            cast(null(), BigInteger).label("seq"),
            *(phone_ratings.c[name] for name in _COLUMNS[3:]),
            literal(PF_QRCODE).label("pf"),
            phone_ratings.c.nonce.label("qr_nonce"),
            cast(literal(False), Boolean).label("duplicate"),
            cast(null(), Integer).label("corrected_from"),
        )
        .where(_in_range(phone_ratings, first, last, dialect))
        .order_by(
            _c(phone_ratings.c.assess_time, dialect),
            _c(phone_ratings.c.device_id, dialect),
            _c(phone_ratings.c.nonce, dialect),
        )
    )
    return terminal, phone


def export_order(row: Any) -> tuple[str, str, str, int, int]:
    """The export's order of a row of either query (Python compares text by code point)."""
    return row["assess_time"], row["device_id"], row["log_id"] or "", row["seq"] or 0, row["pf"]


def totals_queries(first: str | None, last: str | None, *, dialect: str):
    """Queries giving count and unlinked of the window ratings, duplicates among them, and count and
    unlinked of the phone ratings of the export, without reading its rows (the window ratings' part
    from revision 0010's index alone)."""

    def counts(table):
        unlinked = case((table.c.case_no.is_(None), 1), (table.c.case_no == "", 1), else_=0)
        return select(func.count(), func.coalesce(func.sum(unlinked), 0)).where(
            _in_range(table, first, last, dialect)
        )

    duplicates = (
        select(func.count())
        .select_from(ratings)
        .where(
            _in_range(ratings, first, last, dialect),
            select(phone_ratings.c.nonce)
            .where(
                (phone_ratings.c.device_id == ratings.c.device_id)
                & (phone_ratings.c.case_no == ratings.c.case_no)
            )
            .exists(),
        )
    )
    return counts(ratings), duplicates, counts(phone_ratings)


@contextmanager
def export_rows(
    engine: Engine, first: str | None, last: str | None
) -> Iterator[tuple[Totals, Iterator[dict]]]:
    """(totals, rows) of the export in one read snapshot; the rows are read page by page while the
    caller iterates, and only while the context is open."""
    dialect = engine.dialect.name
    with engine.connect() as conn:
        if dialect == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")
        elif dialect == "sqlite":
            # pysqlite begins no transaction before a SELECT: begin one so both reads see one snapshot.
            conn.exec_driver_sql("BEGIN")
        window_counts, duplicates_query, phone_counts = totals_queries(first, last, dialect=dialect)
        window, window_unlinked = (int(n or 0) for n in conn.execute(window_counts).one())
        phone, phone_unlinked = (int(n or 0) for n in conn.execute(phone_counts).one())
        duplicates = int(conn.execute(duplicates_query).scalar() or 0)
        totals = Totals(window + phone, window_unlinked + phone_unlinked, duplicates)
        codes = {r.id: (r.area_code, r.dept_code) for r in conn.execute(select(devices))}
        terminal_query, phone_query = export_queries(first, last, dialect=dialect)
        streamed = conn.execution_options(stream_results=True, yield_per=PAGE_ROWS)
        results = [streamed.execute(terminal_query), streamed.execute(phone_query)]

        def rows() -> Iterator[dict]:
            merged = heapq.merge(*(r.mappings() for r in results), key=export_order)
            for row in merged:
                area, dept = codes.get(row["device_id"], (None, None))
                yield {**row, "area_code": area, "dept_code": dept, "duplicate": bool(row["duplicate"])}

        try:
            yield totals, rows()
        finally:
            for result in results:
                result.close()
            if dialect == "sqlite":
                conn.exec_driver_sql("ROLLBACK")


def json_chunks(rows: Iterator[dict], open_contact: Callable[[str], str | None]) -> Iterator[str]:
    """``{"ratings": [record, …], "count": N, "unlinked": U, "duplicates": D}``, piece by piece: the
    list first, its totals after it (counted while writing)."""
    count = unlinked = duplicates = 0
    yield '{"ratings": ['  # the first bytes at once, before the first page is read
    page: list[str] = []
    for row in rows:
        record = export_record(row, open_contact)
        page.append((", " if count else "") + json.dumps(record, ensure_ascii=False))
        count += 1
        unlinked += not record["linked"]
        duplicates += record["duplicate"]
        if len(page) >= PAGE_ROWS:
            yield "".join(page)
            page.clear()
    page.append(f'], "count": {count}, "unlinked": {unlinked}, "duplicates": {duplicates}}}')
    yield "".join(page)


def csv_chunks(rows: Iterator[dict], open_contact: Callable[[str], str | None]) -> Iterator[str]:
    """The export as CSV starting with a BOM, a page of lines at a time; every cell through
    ``core.spreadsheet.safe_row``: no cell is a formula."""
    out = io.StringIO()
    writer = csv.DictWriter(out, EXPORT_FIELDS, lineterminator="\r\n")
    out.write(BOM)
    writer.writeheader()
    yield out.getvalue()  # the first bytes at once, before the first page is read
    out.seek(0)
    out.truncate()
    for n, row in enumerate(rows, 1):
        record = export_record(row, open_contact)
        writer.writerow(
            safe_row({**record, "linked": int(record["linked"]), "duplicate": int(record["duplicate"])})
        )
        if n % PAGE_ROWS == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()

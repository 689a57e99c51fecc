"""The ratings export read as a stream: one SQL query over window and phone ratings, ordered by the
database, read through a server-side cursor in pages, and written out row by row as JSON or CSV.

A month of a province is a million rows: building them in memory took gigabytes. Here the hub holds
one page of rows at a time, whatever the range. The totals (``count``, ``unlinked``, ``duplicates``)
come in the response headers from one aggregate query run in the same snapshot as the rows (so they
agree), and in JSON after the list, counted while writing it.
"""

from __future__ import annotations

import csv
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


def export_query(first: str | None, last: str | None, *, dialect: str):
    """Window ratings (``pf`` 4) and phone ratings (``pf`` 3) between two inclusive assess_time bounds,
    with their device's codes, in one list ordered by (assess_time, device, log, seq, pf).

    A window rating of a case already rated by phone is kept, with ``duplicate`` true.
    """
    rated_by_phone = (
        select(phone_ratings.c.nonce)
        .where(
            (phone_ratings.c.device_id == ratings.c.device_id)
            & (phone_ratings.c.case_no == ratings.c.case_no)
        )
        .exists()
    )

    def in_range(table):
        bounds = []
        if first is not None:
            bounds.append(table.c.assess_time >= first)
        if last is not None:
            bounds.append(table.c.assess_time <= last)
        return and_(True, *bounds)

    terminal = (
        select(
            *(ratings.c[name] for name in _COLUMNS),
            devices.c.area_code,
            devices.c.dept_code,
            literal(PF_HALL_EVALUATOR).label("pf"),
            cast(null(), String(16)).label("qr_nonce"),
            rated_by_phone.label("duplicate"),
            ratings.c.corrected_from,
        )
        .join_from(ratings, devices, devices.c.id == ratings.c.device_id, isouter=True)
        .where(in_range(ratings))
    )
    phone = (
        select(
            phone_ratings.c.device_id,
            cast(null(), String(64)).label("log_id"),
            cast(null(), BigInteger).label("seq"),
            *(phone_ratings.c[name] for name in _COLUMNS[3:]),
            devices.c.area_code,
            devices.c.dept_code,
            literal(PF_QRCODE).label("pf"),
            phone_ratings.c.nonce.label("qr_nonce"),
            cast(literal(False), Boolean).label("duplicate"),
            cast(null(), Integer).label("corrected_from"),
        )
        .join_from(phone_ratings, devices, devices.c.id == phone_ratings.c.device_id, isouter=True)
        .where(in_range(phone_ratings))
    )
    both = terminal.union_all(phone).subquery("export")
    # Code-point order, as Python sorts: PostgreSQL's default collation ignores punctuation.
    text_order = (lambda column: column.collate("C")) if dialect == "postgresql" else (lambda column: column)
    return select(both).order_by(
        text_order(both.c.assess_time),
        text_order(both.c.device_id),
        text_order(func.coalesce(both.c.log_id, "")),
        func.coalesce(both.c.seq, 0),
        both.c.pf,
    )


def totals_query(first: str | None, last: str | None, *, dialect: str):
    """count, unlinked and duplicates of ``export_query`` without reading its rows."""
    rows = export_query(first, last, dialect=dialect).order_by(None).subquery("rows")
    return select(
        func.count(),
        func.coalesce(func.sum(case((rows.c.case_no.is_(None), 1), (rows.c.case_no == "", 1), else_=0)), 0),
        func.coalesce(func.sum(case((rows.c.duplicate, 1), else_=0)), 0),
    )


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
        sums: list[Any] = list(conn.execute(totals_query(first, last, dialect=dialect)).one())
        count, unlinked, duplicates = (int(n or 0) for n in sums)
        totals = Totals(count, unlinked, duplicates)
        result = conn.execution_options(stream_results=True, yield_per=PAGE_ROWS).execute(
            export_query(first, last, dialect=dialect)
        )

        def rows() -> Iterator[dict]:
            for row in result.mappings():
                yield {**row, "duplicate": bool(row["duplicate"])}

        try:
            yield totals, rows()
        finally:
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

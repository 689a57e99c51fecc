"""The ratings export read as a stream: a query over window ratings and one over phone ratings, each in
the order of an index, read through server-side cursors in pages, merged, and written out as JSON or
CSV.

On PostgreSQL the database writes each record (``encoded_queries``: its JSON object or CSV line, built
from ``hub.ratings.EXPORT_RECORD`` in SQL) and the hub only merges the two lists page by page and opens
the sealed contacts (1 rating in 75): Python building a million records took 4-5x the time of reading
them. Elsewhere (SQLite) the hub builds each record in Python (``export_rows``, ``json_chunks``,
``csv_chunks``): the reference the SQL must match byte for byte (tests/test_export_encoding.py).

A month of a province is a million rows: building them in memory took gigabytes. Here the hub holds
one page of rows at a time, whatever the range. The totals (``count``, ``unlinked``, ``duplicates``)
come in the response headers from aggregate queries run in the same snapshot as the rows (so they
agree; index-only on PostgreSQL, revision 0010), and in JSON after the list (counted while writing it
in Python; the headers' totals on PostgreSQL: the same snapshot, so the same numbers).
"""

from __future__ import annotations

import csv
import heapq
import io
import json
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Engine,
    Integer,
    String,
    Text,
    and_,
    any_,
    case,
    cast,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

from core.domain import PF_HALL_EVALUATOR, PF_QRCODE
from core.spreadsheet import FORMULA_PREFIXES, safe_cell, safe_row

from .ratings import EXPORT_FIELDS, EXPORT_RECORD, export_record
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


def _index_order(table, dialect: str) -> tuple[Any, ...]:
    """The order of the export's index on ``table`` (revision 0012), which every reading of the export
    follows, so nothing is sorted: window ratings by (assess_time, device, log, seq), phone ratings by
    (assess_time, device, nonce)."""
    if table is ratings:
        return (
            _c(ratings.c.assess_time, dialect),
            _c(ratings.c.device_id, dialect),
            _c(ratings.c.log_id, dialect),
            ratings.c.seq,
        )
    return (
        _c(phone_ratings.c.assess_time, dialect),
        _c(phone_ratings.c.device_id, dialect),
        _c(phone_ratings.c.nonce, dialect),
    )


def export_queries(first: str | None, last: str | None, *, dialect: str):
    """(window ratings, phone ratings) between two inclusive assess_time bounds, each in the export's
    order, which the hub merges into one list ordered by (assess_time, device, log, seq, pf): ``pf`` 4
    for the window evaluator, 3 for the QR code page.

    Each is read in the order of an index (revision 0010), so the first rows come at once and nothing
    is sorted: a month of a province is a million rows. A window rating of a case already rated by
    phone is kept, with ``duplicate`` true. The device's codes are added by the reader.
    """
    rated_by_phone = _rated_by_phone()
    terminal = (
        select(
            *(ratings.c[name] for name in _COLUMNS),
            literal(PF_HALL_EVALUATOR).label("pf"),
            cast(null(), String(16)).label("qr_nonce"),
            rated_by_phone.label("duplicate"),
            ratings.c.corrected_from,
        )
        .where(_in_range(ratings, first, last, dialect))
        .order_by(*_index_order(ratings, dialect))
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
        .order_by(*_index_order(phone_ratings, dialect))
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
        .where(_in_range(ratings, first, last, dialect), _rated_by_phone())
    )
    return counts(ratings), duplicates, counts(phone_ratings)


def _read_totals(conn: Connection, first: str | None, last: str | None) -> Totals:
    window_counts, duplicates_query, phone_counts = totals_queries(first, last, dialect=conn.dialect.name)
    window, window_unlinked = (int(n or 0) for n in conn.execute(window_counts).one())
    phone, phone_unlinked = (int(n or 0) for n in conn.execute(phone_counts).one())
    duplicates = int(conn.execute(duplicates_query).scalar() or 0)
    return Totals(window + phone, window_unlinked + phone_unlinked, duplicates)


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
        totals = _read_totals(conn, first, last)
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


# --- the records written by PostgreSQL ---------------------------------------------------------------

Format = Literal["json", "csv"]
_QUOTED = ',"\r\n'  # a CSV cell holding one of these is quoted, as Python's csv module does (QUOTE_MINIMAL)


def csv_cell(value: str | None) -> str:
    """A text cell as ``csv_chunks`` writes it (``safe_cell``, then quoted when it must be); the SQL of
    ``_csv_text`` does the same in the database."""
    if value is None:
        return ""
    value = safe_cell(value)
    if any(c in value for c in _QUOTED):
        return '"' + value.replace('"', '""') + '"'
    return value


def _lit(text: str) -> Any:
    """A constant string as a SQL literal (sent as written: the compiled query keeps no parameter for it)."""
    assert "%" not in text and "\x00" not in text, text  # pyformat's parameters; text holds no NUL
    return literal_column("'" + text.replace("'", "''") + "'", Text)


def _safe(value: Any) -> Any:
    """``core.spreadsheet.safe_cell`` in SQL: a leading apostrophe before a formula's first character
    (``ascii`` is the first character's code point; 0 for an empty string)."""
    starts = func.ascii(value).in_([literal_column(str(ord(prefix))) for prefix in FORMULA_PREFIXES])
    return case((starts, _lit("'") + value), else_=value)


def _csv_text(value: Any) -> Any:
    """A text cell as ``csv_cell`` writes it. Most cells need neither apostrophe nor quotes: the first
    character's code and a search for each character to quote find those that may (a tenth cheaper
    for the database than one regular expression, which cost what the rest of the record did)."""
    quoted = _lit('"') + _safe(func.replace(value, _lit('"'), _lit('""'))) + _lit('"')
    either = case((value.op("~")(_lit("[" + _QUOTED + "]")), quoted), else_=_safe(value))
    care = or_(
        func.ascii(value).in_([literal_column(str(ord(prefix))) for prefix in FORMULA_PREFIXES]),
        *(func.strpos(value, _lit(c)) > literal_column("0") for c in _QUOTED),
    )
    return func.coalesce(case((care, either), else_=value), _lit(""))


# A JSON string holding one of these is written by to_json (json.dumps escapes the same, the same way).
_JSON_ESCAPED = "[" + "".join(chr(c) for c in range(1, 32)) + '"\\\\' + "]"


def _json_quoted(value: Any) -> Any:
    """A string that needs no escape, as JSON."""
    return func.coalesce(_lit('"') + value + _lit('"'), _lit("null"))


def _json_text(value: Any) -> Any:
    """A text field as json.dumps(ensure_ascii=False) writes it: ``to_json`` escapes the same characters
    the same way, but on every string it made the query half again as long; a string without them
    needs only quotes."""
    needs = value.op("~")(_lit(_JSON_ESCAPED))
    return case(
        (needs, func.coalesce(cast(func.to_json(value), Text), _lit("null"))), else_=_json_quoted(value)
    )


# Each kind of field as CSV and as JSON, written by PostgreSQL exactly as csv.DictWriter (after
# safe_row) and json.dumps(ensure_ascii=False) write it: to_json escapes as json.dumps does.
_ENCODERS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "csv": {
        "text": _csv_text,
        "number": lambda value: func.coalesce(cast(value, Text), _lit("")),
        "flag": lambda value: case((value, _lit("1")), else_=_lit("0")),
    },
    "json": {
        "text": _json_text,
        "number": lambda value: func.coalesce(cast(value, Text), _lit("null")),
        "flag": lambda value: case((value, _lit("true")), else_=_lit("false")),
    },
}
_EMPTY_CONTACT = {"csv": "", "json": "null"}  # what the database writes where the opened contact goes
_CONTACT: dict[str, Callable[[str | None], str]] = {
    "csv": csv_cell,
    "json": lambda contact: json.dumps(contact, ensure_ascii=False),
}
_SQL_RULES: dict[str, Callable[[Any], Any]] = {
    "as_is": lambda value: value,
    "gbt39046": lambda value: 6 - value,  # core.domain.to_gbt39046 (the rows hold checked levels)
    "or_empty": lambda value: func.coalesce(value, _lit("")),
    "nonempty": lambda value: and_(value.is_not(None), value != _lit("")),
}


def _record_sql(columns: dict[str, Any], fmt: Format) -> tuple[Any, Any, Any]:
    """(the record as text, the sealed contact or NULL, where the opened contact goes in the text when
    there is one) from the export query's columns by name, by ``EXPORT_RECORD``."""
    head, tail, sealed = _pieces(columns, fmt, _ENCODERS[fmt])
    cut = case((sealed.is_not(None), func.char_length(_joined(head))), else_=None)
    record = _joined(head + tail)
    if fmt == "json":
        # Most records hold no string to escape: one search over all their strings instead of one a
        # string, then each string only quoted (the database's CPU for a month 3.5 s -> 2.8 s; the same
        # for CSV cost more than it saved: the reason codes hold commas).
        texts = [
            _SQL_RULES[f.rule](columns[f.column])
            for f in EXPORT_RECORD
            if f.kind == "text" and f.rule != "opened"
        ]
        clean = func.concat(*texts).op("!~")(_lit(_JSON_ESCAPED))
        plain_head, plain_tail, _ = _pieces(columns, fmt, {**_ENCODERS[fmt], "text": _json_quoted})
        record = case((and_(sealed.is_(None), clean), _joined(plain_head + plain_tail)), else_=record)
    return record, sealed, cut


def _pieces(
    columns: dict[str, Any], fmt: Format, encode: dict[str, Callable[[Any], Any]]
) -> tuple[list[Any], list[Any], Any]:
    """(the pieces of the record before the contact, those after it, the sealed contact)."""
    head: list[Any] = []
    tail: list[Any] = []
    pieces = head
    for n, field in enumerate(EXPORT_RECORD):
        if fmt == "json":
            pieces.append(_lit(("{" if n == 0 else ", ") + json.dumps(field.name) + ": "))
        elif n:
            pieces.append(_lit(","))
        if field.rule == "opened":
            sealed = func.nullif(columns[field.column], _lit(""))
            pieces = tail
            pieces.append(_lit(_EMPTY_CONTACT[fmt]))
            continue
        pieces.append(encode[field.kind](_SQL_RULES[field.rule](columns[field.column])))
    tail.append(_lit("}" if fmt == "json" else "\r\n"))
    return head, tail, sealed


def _joined(pieces: list[Any]) -> Any:
    """``(a || b) || (c || d) …``, none of them NULL: a third faster than ``concat(a, b, …)`` (which
    converts each argument); balanced, though a chain measured the same at 45 pieces."""
    if len(pieces) == 1:
        return type_coerce(pieces[0], Text)
    half = len(pieces) // 2
    return _joined(pieces[:half]).op("||")(_joined(pieces[half:])).self_group()


DUPLICATE_CASES_HELD = 10_000  # at most this many case numbers of duplicates are held to skip the check


def duplicate_cases_query(first: str | None, last: str | None):
    """The case numbers of the range's duplicates (window ratings of a case rated by phone), in no
    order: a hash join, as the totals count them, where checking each row in the export's order is a
    lookup in the phone ratings' index per row (two thirds of the database's time for a month)."""
    return (
        select(ratings.c.case_no)
        .distinct()
        .where(_in_range(ratings, first, last, "postgresql"), _rated_by_phone())
        .limit(DUPLICATE_CASES_HELD + 1)
    )


def _rated_by_phone():
    """Whether a phone rating of the window rating's case exists (its device and case number)."""
    return (
        select(phone_ratings.c.nonce)
        .where(
            (phone_ratings.c.device_id == ratings.c.device_id)
            & (phone_ratings.c.case_no == ratings.c.case_no)
        )
        .exists()
    )


def encoded_queries(
    first: str | None, last: str | None, fmt: Format, duplicate_cases: Sequence[str] | None = None
):
    """(window ratings, phone ratings) as ``export_queries`` reads them on PostgreSQL, each row
    (assess_time, device_id, log_id or '', seq or 0, record text, sealed contact, its place): the
    first four are the order of the merge.

    ``duplicate_cases``: the case numbers of the range's duplicates when known (``duplicate_cases_query``):
    only a rating of one of them is looked up among the phone ratings (none when there are none)."""
    dialect = "postgresql"
    rated_by_phone = _rated_by_phone()
    if duplicate_cases is not None:
        rated_by_phone = (
            and_(ratings.c.case_no == any_(literal(list(duplicate_cases), ARRAY(Text))), rated_by_phone)
            if duplicate_cases
            else literal_column("false")
        )
    terminal_columns = {
        **{name: ratings.c[name] for name in _COLUMNS},
        "pf": literal_column(str(PF_HALL_EVALUATOR)),
        "qr_nonce": cast(null(), Text),
        "duplicate": rated_by_phone,
        "corrected_from": ratings.c.corrected_from,
        "area_code": devices.c.area_code,
        "dept_code": devices.c.dept_code,
    }
    phone_columns = {
        **{name: phone_ratings.c[name] for name in _COLUMNS[3:]},
        "device_id": phone_ratings.c.device_id,
        "log_id": cast(null(), Text),
        "seq": cast(null(), BigInteger),
        "pf": literal_column(str(PF_QRCODE)),
        "qr_nonce": phone_ratings.c.nonce,
        "duplicate": literal_column("false"),
        "corrected_from": cast(null(), Integer),
        "area_code": devices.c.area_code,
        "dept_code": devices.c.dept_code,
    }
    # The device's codes by a join in the order of the index (a nested loop over the devices' cache
    # of lookups, PostgreSQL's Memoize): a hash join would have the month sorted first.
    terminal = (
        select(
            ratings.c.assess_time,
            ratings.c.device_id,
            func.coalesce(ratings.c.log_id, _lit("")),
            ratings.c.seq,
            *_record_sql(terminal_columns, fmt),
        )
        .select_from(ratings.outerjoin(devices, devices.c.id == ratings.c.device_id))
        .where(_in_range(ratings, first, last, dialect))
        .order_by(*_index_order(ratings, dialect))
    )
    phone = (
        select(
            phone_ratings.c.assess_time,
            phone_ratings.c.device_id,
            _lit(""),
            literal_column("0", BigInteger),
            *_record_sql(phone_columns, fmt),
        )
        .select_from(phone_ratings.outerjoin(devices, devices.c.id == phone_ratings.c.device_id))
        .where(_in_range(phone_ratings, first, last, dialect))
        .order_by(*_index_order(phone_ratings, dialect))
    )
    return terminal, phone


_KEY = itemgetter(0, 1, 2, 3)  # a window row before a phone row of the same key: pf 4 after pf 3


def merge_pages(window: Iterable[Sequence[Any]], phone: Iterable[Any]) -> Iterator[list[Any]]:
    """The pages of window rows with the phone rows put in their places (``export_order``): a phone
    row of the key of a window row goes first. Python touches each phone row, not each window row."""
    phone_rows = iter(phone)
    waiting = next(phone_rows, None)
    for page in window:
        last = _KEY(page[-1])
        if waiting is None or _KEY(waiting) > last:
            yield list(page)
            continue
        merged: list[Any] = []
        start = 0
        while waiting is not None and _KEY(waiting) <= last:
            place = bisect_left(page, _KEY(waiting), lo=start, key=_KEY)
            merged.extend(page[start:place])
            merged.append(waiting)
            start = place
            waiting = next(phone_rows, None)
        merged.extend(page[start:])
        yield merged
    rest: list[Any] = []
    while waiting is not None:
        rest.append(waiting)
        if len(rest) >= PAGE_ROWS:
            yield rest
            rest = []
        waiting = next(phone_rows, None)
    if rest:
        yield rest


def _encoded_chunks(
    pages: Iterator[list[Any]], fmt: Format, totals: Totals, open_contact: Callable[[str], str | None]
) -> Iterator[str]:
    """The document of ``csv_chunks`` or ``json_chunks`` from rows of ``encoded_queries``, a page at a
    time: only a row with a sealed contact is touched, to put the opened contact in its place."""
    skip = len(_EMPTY_CONTACT[fmt])
    contact = _CONTACT[fmt]

    def opened(row: Sequence[Any]) -> str:  # a row with a sealed contact: 1 in 75
        line, sealed, cut = row[4], row[5], row[6]
        return line[:cut] + contact(open_contact(sealed)) + line[cut + skip :]

    if fmt == "csv":
        out = io.StringIO()
        csv.writer(out, lineterminator="\r\n").writerow(EXPORT_FIELDS)
        yield BOM + out.getvalue()  # the first bytes at once, before the first page is read
        for page in pages:
            yield "".join([row[4] if row[5] is None else opened(row) for row in page])
        return
    yield '{"ratings": ['
    separator = ""
    for page in pages:
        yield separator + ", ".join([row[4] if row[5] is None else opened(row) for row in page])
        separator = ", "
    # The totals of the headers: counted in the same snapshot as the rows, so they are the list's.
    yield f'], "count": {totals.count}, "unlinked": {totals.unlinked}, "duplicates": {totals.duplicates}}}'


@contextmanager
def export_document(
    engine: Engine,
    first: str | None,
    last: str | None,
    fmt: Format,
    open_contact: Callable[[str], str | None],
) -> Iterator[tuple[Totals, Iterator[str]]]:
    """(totals, the pieces of the export's document), read only while the context is open: written by
    PostgreSQL there, by ``json_chunks`` / ``csv_chunks`` on any other database."""
    if engine.dialect.name != "postgresql":
        with export_rows(engine, first, last) as (totals, rows):
            yield totals, (csv_chunks if fmt == "csv" else json_chunks)(rows, open_contact)
        return
    with engine.connect() as conn:
        conn.execution_options(isolation_level="REPEATABLE READ")
        totals = _read_totals(conn, first, last)
        # Compiling the records' expressions to machine code took 1.3 s of the database's time for a
        # month, and saved none (measured: docs/performance.md); and it came before the first row.
        conn.exec_driver_sql("SET LOCAL jit = off")
        # Read through the driver's own server-side cursors, in the transaction begun above: rows as
        # plain tuples (SQLAlchemy's rows cost a third of the hub's time for a month).
        driver = conn.connection.dbapi_connection
        assert driver is not None
        cursors: list[Any] = []

        def pages() -> Iterator[list[Any]]:  # after the first bytes have gone: they wait for the totals only
            cases: list[str] | None = []
            if totals.duplicates:
                cases = list(conn.execute(duplicate_cases_query(first, last)).scalars())
                if len(cases) > DUPLICATE_CASES_HELD:
                    cases = None  # then each rating is looked up: the hub's memory stays that of a page
            queries = encoded_queries(first, last, fmt, cases)
            for name, query in zip(("kiosk_export_window", "kiosk_export_phone"), queries, strict=True):
                compiled = query.compile(dialect=conn.dialect)
                cursors.append(driver.cursor(name=name))
                cursors[-1].execute(str(compiled), compiled.construct_params())
            window, phone = cursors
            yield from merge_pages(_pages(window), chain.from_iterable(_pages(phone)))

        try:
            yield totals, _encoded_chunks(pages(), fmt, totals, open_contact)
        finally:
            for cursor in cursors:
                cursor.close()


def _pages(cursor: Any) -> Iterator[list[Any]]:
    while page := cursor.fetchmany(PAGE_ROWS):
        yield page

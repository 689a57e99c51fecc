"""The ratings export written by PostgreSQL (``hub.export_stream.export_document``: each record's JSON
object or CSV line built in SQL from ``hub.ratings.EXPORT_RECORD``) is byte for byte the document the
hub writes in Python (``export_rows`` with ``json_chunks`` / ``csv_chunks``, what SQLite serves), for
hostile values: formulas, quotes, commas, line breaks, control characters, Chinese, NULLs, unlinked
ratings, duplicates, phone ratings, sealed contacts (opened or not), corrected ratings. And no cell of
the CSV is a formula, whatever field it is stored in, on either database."""

from __future__ import annotations

import csv
import heapq
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert

import hub.export_stream as export_stream
from core.contact import seal_contact
from core.spreadsheet import FORMULA_PREFIXES, safe_cell
from hub.export_stream import (
    csv_cell,
    csv_chunks,
    export_document,
    export_order,
    export_rows,
    json_chunks,
    merge_pages,
)
from hub.ratings import EXPORT_FIELDS, EXPORT_RECORD
from hub.routers.operators import _contact_opener
from hub.schema import devices, phone_ratings, ratings
from hub.storage import HubStore

PG_URL = os.environ.get("KIOSK_TEST_PG_URL")
needs_pg = pytest.mark.skipif(not PG_URL, reason="no PostgreSQL")

HOSTILE = [
    "=1+1",
    '=HYPERLINK("http://x/?"&A1,"查看")',
    "+86",
    "-1",
    "@SUM(A1)",
    "\tx",
    "\rx",
    "\r\n",
    '"',
    'a"b',
    "a,b",
    "a\nb",
    "'=1",
    "\\",
    "\\u0000",
    "\x01\x1f\x7f",
    "\u2028",
    "好差评,满意",
    "",
    " =1",
]
TEXT = st.one_of(
    st.none(),
    st.sampled_from(HOSTILE),
    st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=8),
)
DEVICES = ["D1", "=D2", "设备,3", 'd"4']  # the last two not registered: no area or dept code
TIMES = ["2026-11-28 09:00:00", "2026-11-28 09:00:01", "2026-11-29 10:00:00"]


@pytest.fixture(scope="module")
def pg_store(tmp_path_factory) -> Iterator[HubStore]:
    from test_hub_support import wipe_database

    wipe_database(PG_URL)
    store = HubStore(PG_URL, key_file=tmp_path_factory.mktemp("key") / "contact.key")
    yield store
    store.close()


def _sealed(store: HubStore) -> st.SearchStrategy[str | None]:
    phone = seal_contact("13800138000", store.private_key.public_key)
    return st.sampled_from([None, "", phone, phone, "not a sealed box"])


@st.composite
def histories(draw, store: HubStore) -> tuple[list[dict], list[dict], list[dict]]:
    """(devices, window ratings, phone ratings) rows, some phone ratings of a window rating's case."""
    sealed = _sealed(store)
    device_rows = [
        {
            "id": d,
            "secret": "00",
            "area_code": (draw(TEXT) or "")[:16],
            "dept_code": (draw(TEXT) or "")[:32],
            "created_at": "2026-11-01T00:00:00+00:00",
        }
        for d in DEVICES[:2]
    ]
    window: dict[tuple, dict] = {}
    for _ in range(draw(st.integers(0, 12))):
        key = (
            draw(st.sampled_from(DEVICES)),
            draw(st.sampled_from(["L1", "", "=L", "L,2"])),
            draw(st.integers(1, 3)),
        )
        window[key] = {
            "device_id": key[0],
            "log_id": key[1],
            "seq": key[2],
            **{
                c: draw(TEXT)
                for c in ("window", "staff_no", "staff_name", "ticket_no", "item_code", "item_name")
            },
            "case_no": draw(st.one_of(st.none(), st.just(""), st.sampled_from(["C1", "C2", "=C3"]))),
            "satisfaction": draw(st.integers(1, 5)),
            "input": "touch",
            "at": "2026-11-28T09:00:00+08:00",
            "assess_time": draw(st.sampled_from(TIMES)),
            "reasons": draw(st.one_of(st.none(), st.sampled_from(["101,201", "", "=1", 'a"b']))),
            "contact_sealed": draw(sealed),
            "corrected_from": draw(st.one_of(st.none(), st.integers(1, 2))),
        }
    phone: dict[tuple, dict] = {}
    cases: set[tuple] = set()
    for n in range(draw(st.integers(0, 8))):
        device = draw(st.sampled_from(DEVICES))
        case_no = draw(st.one_of(st.none(), st.sampled_from(["C1", "C2", "=C3", "C4"])))
        if case_no is not None and (device, case_no) in cases:
            continue  # one phone rating a case
        cases.add((device, case_no))
        nonce = draw(st.sampled_from(["a1", "=b", "c,3", "0f"])) + str(n)
        phone[(device, nonce)] = {
            "device_id": device,
            "nonce": nonce,
            "window": draw(TEXT) or "",
            **{c: draw(TEXT) for c in ("staff_no", "staff_name", "ticket_no", "item_code", "item_name")},
            "case_no": case_no,
            "satisfaction": draw(st.integers(1, 5)),
            "reasons": draw(st.one_of(st.none(), st.sampled_from(["101", "=2"]))),
            "contact_sealed": draw(sealed),
            "issued_at": 1,
            "at": "2026-11-28T01:00:00+00:00",
            "assess_time": draw(st.sampled_from(TIMES)),
        }
    return device_rows, list(window.values()), list(phone.values())


def _fill(store: HubStore, history: tuple[list[dict], list[dict], list[dict]]) -> None:
    with store.engine.begin() as conn:
        for table in (ratings, phone_ratings, devices):
            conn.execute(delete(table))
        for table, rows in zip((devices, ratings, phone_ratings), history, strict=True):
            if rows:
                conn.execute(insert(table), rows)


def _reference(store: HubStore, fmt: str, first: str | None, last: str | None) -> tuple[object, str]:
    with export_rows(store.engine, first, last) as (totals, rows):
        writer = csv_chunks if fmt == "csv" else json_chunks
        return totals, "".join(writer(rows, _contact_opener(store)))


def _written(store: HubStore, fmt: str, first: str | None, last: str | None) -> tuple[object, str]:
    with export_document(store.engine, first, last, fmt, _contact_opener(store)) as (totals, chunks):  # type: ignore[arg-type]
        return totals, "".join(chunks)


@contextmanager
def _held_cases(limit: int) -> Iterator[None]:
    """At most ``limit`` duplicates' case numbers held: beyond it each rating is looked up (the path of
    a range with more than ``DUPLICATE_CASES_HELD`` duplicates)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(export_stream, "DUPLICATE_CASES_HELD", limit)
        yield


@needs_pg
@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(data=st.data())
def test_postgresql_writes_the_document_python_writes(pg_store, data):
    _fill(pg_store, data.draw(histories(pg_store)))
    first, last = data.draw(
        st.sampled_from([(None, None), ("2026-11-28 09:00:01", None), (None, "2026-11-28 23:59:59")])
    )
    held = data.draw(st.sampled_from([10_000, 0]))
    for fmt in ("csv", "json"):
        expected = _reference(pg_store, fmt, first, last)
        with _held_cases(held):
            assert _written(pg_store, fmt, first, last) == expected


@needs_pg
def test_a_range_of_duplicates_and_sealed_contacts_over_many_pages(pg_store):
    """Several pages of window ratings with phone ratings between them, before and after them, of the
    same second and device, duplicates among them: the merge and the contacts at page boundaries."""
    phone_key = seal_contact("13900139000", pg_store.private_key.public_key)
    window = [
        {
            "device_id": "D1" if seq % 3 else "=D2",
            "log_id": "L1",
            "seq": seq,
            "window": "03",
            "case_no": f"C{seq}" if seq % 7 else None,
            "satisfaction": 1 + seq % 5,
            "at": "2026-11-28T09:00:00+08:00",
            "assess_time": f"2026-11-28 09:{seq // 60 % 60:02d}:{seq % 60:02d}",
            "contact_sealed": phone_key if seq % 11 == 0 else None,
        }
        for seq in range(1, export_stream.PAGE_ROWS * 3 + 1)
    ]
    phone = [
        {
            "device_id": "D1",
            "nonce": f"n{n:04d}",
            "window": "=03",
            "case_no": f"C{n * 37}",  # many a window rating's case: duplicates
            "satisfaction": 1,
            "contact_sealed": phone_key,
            "issued_at": 1,
            "at": "2026-11-28T01:00:00+00:00",
            "assess_time": f"2026-11-28 0{9 if n < 80 else 8}:{n * 37 // 60 % 60:02d}:{n * 37 % 60:02d}",
        }
        for n in range(1, 100)
    ]
    _fill(
        pg_store,
        (
            [{"id": "D1", "secret": "00", "area_code": "370211", "dept_code": "=1", "created_at": "-"}],
            window,
            phone,
        ),
    )
    for fmt in ("csv", "json"):
        expected = _reference(pg_store, fmt, None, None)
        assert expected[0].duplicates > 0  # type: ignore[attr-defined]
        for held in (10_000, 0):
            with _held_cases(held):
                assert _written(pg_store, fmt, None, None) == expected


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=needs_pg)])
def test_a_formula_in_any_stored_field_stays_text_in_the_csv(tmp_path, backend, request):
    """Every text column of a window rating, a phone rating and the device's codes holds a formula:
    no cell of the export starts with ``=``, ``+``, ``-``, ``@``, TAB or CR."""
    if backend == "postgresql":
        store = request.getfixturevalue("pg_store")
    else:
        store = HubStore(f"sqlite:///{tmp_path / 'hub.db'}", key_file=tmp_path / "contact.key")
    attack = '=HYPERLINK("http://x/?"&R2,"查看")'
    texts = ("window", "staff_no", "staff_name", "ticket_no", "case_no", "item_code", "item_name", "reasons")
    for n, prefix in enumerate(FORMULA_PREFIXES):
        formula = prefix + attack[1:]
        _fill(
            store,
            (
                [
                    {
                        "id": formula,
                        "secret": "00",
                        "area_code": formula[:16],
                        "dept_code": formula[:32],
                        "created_at": "2026-11-01T00:00:00+00:00",
                    }
                ],
                [
                    {
                        "device_id": formula,
                        "log_id": formula,
                        "seq": 1,
                        **dict.fromkeys(texts, formula),
                        "satisfaction": 1,
                        "at": formula,
                        "assess_time": f"2026-11-28 09:00:0{n}",
                        "contact_sealed": seal_contact("13800138000", store.private_key.public_key),
                    }
                ],
                [
                    {
                        "device_id": formula,
                        "nonce": formula[:16],
                        **dict.fromkeys(texts, formula),
                        "satisfaction": 2,
                        "issued_at": 1,
                        "at": formula,
                        "assess_time": f"2026-11-28 09:00:0{n}",
                    }
                ],
            ),
        )
        _, text = _written(store, "csv", None, None)
        assert text.startswith("\ufeff")
        rows = list(csv.reader(io.StringIO(text[1:], newline="")))
        assert rows[0] == list(EXPORT_FIELDS) and len(rows) == 3
        cells = [cell for row in rows[1:] for cell in row]
        # every text field of both ratings; the device's codes and the nonce are cut to their columns
        assert cells.count("'" + formula) >= 19
        assert not [cell for cell in cells if cell.startswith(FORMULA_PREFIXES)]
    if backend == "sqlite":
        store.close()


@given(st.one_of(st.none(), st.sampled_from(HOSTILE), st.text(max_size=10)))
def test_a_cell_is_written_as_the_csv_module_writes_it(value):
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(["x", safe_cell(value), "x"])
    assert out.getvalue() == f"x,{csv_cell(value)},x\r\n"


KEYS = st.tuples(
    st.sampled_from(TIMES), st.sampled_from(DEVICES), st.sampled_from(["", "L1", "L2"]), st.integers(0, 3)
)


@given(window=st.lists(KEYS, unique=True), phone=st.lists(KEYS), page=st.integers(1, 4))
def test_the_pages_merge_as_heapq_merges_the_rows(window, phone, page):
    """``merge_pages`` (which compares only a phone row with its page) puts the rows in ``export_order``,
    the phone rows of one key in their own order."""
    window_rows = [(*key, "w") for key in sorted(window)]
    phone_rows = [(t, d, "", 0, f"p{n}") for n, (t, d, _, _) in enumerate(sorted(phone, key=lambda k: k[:2]))]
    pages = [window_rows[i : i + page] for i in range(0, len(window_rows), page)]
    merged = [row for p in merge_pages(pages, phone_rows) for row in p]

    def order(row):
        return export_order(
            {
                "assess_time": row[0],
                "device_id": row[1],
                "log_id": row[2],
                "seq": row[3],
                "pf": 4 if row[4] == "w" else 3,
            }
        )

    assert merged == list(heapq.merge(window_rows, phone_rows, key=order))


def test_every_field_of_the_record_is_written_by_a_rule_both_sides_know():
    assert {f.rule for f in EXPORT_RECORD} <= {"as_is", "gbt39046", "or_empty", "nonempty", "opened"}
    assert [f.name for f in EXPORT_RECORD if f.rule == "opened"] == ["contact"]

"""The ratings export streams: ``kiosk hub ratings export`` and ``GET /api/v1/ratings`` read the rows
through a server-side cursor a page at a time, so the hub's memory does not grow with the range, and the
first bytes leave before the last row is read. On SQLite and, when ``KIOSK_TEST_PG_URL`` is set, on
PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest
import requests
from sqlalchemy import insert
from test_hub_support import ADMIN_TOKEN, DEVICE, ROOT, register, thread_hub

from hub.export_stream import PAGE_ROWS
from hub.schema import ratings
from hub.storage import HubStore

PG_URL = os.environ.get("KIOSK_TEST_PG_URL")
BACKENDS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.skipif(not PG_URL, reason="no PostgreSQL")),
]


def _database(tmp_path, backend: str) -> tuple[list[str], HubStore]:
    """(the command line's database options, the store) of an empty hub database."""
    if backend == "postgresql":
        from test_hub_support import wipe_database

        wipe_database(PG_URL)
        return ["--db", PG_URL, "--key-file", str(tmp_path / "contact.key")], HubStore(
            PG_URL, key_file=tmp_path / "contact.key"
        )
    return ["--data", str(tmp_path)], HubStore(
        f"sqlite:///{tmp_path / 'hub.db'}", key_file=tmp_path / "contact.key"
    )


def _add_ratings(store: HubStore, first: int, count: int) -> None:
    """``count`` window ratings written straight into the derived table (seq first … first+count-1)."""
    rows = [
        {
            "device_id": DEVICE,
            "log_id": "L1",
            "seq": seq,
            "window": "03",
            "staff_no": "0371",
            "staff_name": "张三",
            "ticket_no": f"A{seq:04d}",
            "case_no": None if seq % 10 == 0 else f"3702112026112{seq:05d}",
            "item_code": "11370211MB0000001X",
            "item_name": "不动产登记" * 4,
            "satisfaction": 1 + seq % 5,
            "input": "touch",
            "at": "2026-11-28T09:00:00+08:00",
            "assess_time": f"2026-11-28 {9 + seq // 3600:02d}:{seq // 60 % 60:02d}:{seq % 60:02d}",
            "reasons": "101,201" if seq % 5 == 0 else None,
            "contact_sealed": None,
        }
        for seq in range(first, first + count)
    ]
    with store.engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(insert(ratings), rows[start : start + 5000])


# The child's own peak (VmHWM of its address space): ru_maxrss would carry over this test's peak at fork.
_PEAK_AT_EXIT = (
    "import atexit, runpy, sys\n"
    "atexit.register(lambda: sys.stderr.write(next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))))\n"
    "sys.argv[0] = 'kiosk'\n"
    "runpy.run_module('commands.cli', run_name='__main__')\n"
)


def _export_peak_kb(options: list[str], fmt: str) -> tuple[int, str]:
    """(peak resident KB, stdout) of ``kiosk hub ratings export`` in its own process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", _PEAK_AT_EXIT, "hub", "ratings", "export", *options, "--format", fmt],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    peak = result.stderr.decode().strip().splitlines()[-1]
    assert peak.startswith("VmHWM:"), peak
    return int(peak.split()[1]), result.stdout.decode("utf-8")


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_export_of_many_rows_holds_a_page_not_the_range(tmp_path, backend):
    options, store = _database(tmp_path, backend)
    try:
        register(store)
        _add_ratings(store, 1, 200)
        small_kb, small = _export_peak_kb(options, "json")
        _add_ratings(store, 201, 40_000)
    finally:
        store.close()
    big_kb, big = _export_peak_kb(options, "json")
    document = json.loads(big)
    assert document["count"] == len(document["ratings"]) == 40_200 and document["unlinked"] == 4_020
    assert json.loads(small)["count"] == 200
    # Held in memory, 40,000 records took well over 100 MB; streamed, the peak is that of 200 rows.
    assert big_kb - small_kb < 30_000, f"peak RSS grew by {big_kb - small_kb} KB for 40,000 more rows"
    csv_kb, text = _export_peak_kb(options, "csv")
    assert (
        csv_kb - small_kb < 30_000 and len(list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))) == 40_200
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_response_starts_before_the_last_row_is_read(tmp_path, backend):
    """The headers (with the totals) and the first page arrive while the database is still being read:
    a row added after the first bytes is not in this export (one snapshot), and the totals agree."""
    url = PG_URL if backend == "postgresql" else None
    if url:
        from test_hub_support import wipe_database

        wipe_database(PG_URL)
    with thread_hub(tmp_path, url=url) as hub:
        register(hub.store)
        _add_ratings(hub.store, 1, PAGE_ROWS * 5)
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with requests.get(
            f"{hub.url}/api/v1/ratings", params={"format": "csv"}, headers=auth, stream=True, timeout=30
        ) as r:
            assert r.status_code == 200 and r.headers["X-Rating-Count"] == str(PAGE_ROWS * 5)
            assert r.headers["X-Unlinked-Count"] == str(PAGE_ROWS // 2)
            chunks = r.iter_content(chunk_size=None)
            first = next(chunks)
            assert first.startswith(b"\xef\xbb\xbfprojectNo,")
            _add_ratings(hub.store, PAGE_ROWS * 5 + 1, 1)  # while the export is open
            text = (first + b"".join(chunks)).decode("utf-8-sig")
        assert len(list(csv.DictReader(io.StringIO(text)))) == PAGE_ROWS * 5
        body = requests.get(f"{hub.url}/api/v1/ratings", headers=auth, timeout=30).json()
        assert body["count"] == PAGE_ROWS * 5 + 1 and body["ratings"][0]["seq"] == 1


def test_formulas_stay_text_in_the_streamed_csv(tmp_path):
    with thread_hub(tmp_path) as hub:
        register(hub.store)
        with hub.store.engine.begin() as conn:
            conn.execute(
                insert(ratings),
                {
                    "device_id": DEVICE,
                    "log_id": "L1",
                    "seq": 1,
                    "window": "=1+1",
                    "case_no": '=HYPERLINK("http://x/")',
                    "satisfaction": 1,
                    "at": "2026-11-28T09:00:00+08:00",
                    "assess_time": "2026-11-28 09:00:00",
                },
            )
        r = requests.get(
            f"{hub.url}/api/v1/ratings",
            params={"format": "csv"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=10,
        )
        (row,) = csv.DictReader(io.StringIO(r.content.decode("utf-8-sig")))
        assert row["projectNo"] == '\'=HYPERLINK("http://x/")' and row["windowNo"] == "'=1+1"

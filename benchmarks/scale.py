"""The hub at city scale: a history of ``--ratings`` ratings generated straight into a scratch PostgreSQL
hub database, a real `kiosk hub` process on it, and the console's and API's 台账, figures and exports
measured beside the bare SQL reading the same rows in the same run.

    python benchmarks/scale.py [--db URL] [--ratings 10000000] [--reuse] [--samples 20] [--smoke]

``--db`` (default ``$KIOSK_TEST_PG_URL``) is a scratch database: the history goes to its schema
``--schema`` (default ``scale``; ``scale_smoke`` with ``--smoke``), **which is dropped first**
(unless ``--reuse`` finds a history of the same size there from an earlier run; generating 10,000,000
ratings takes minutes, measuring again does not need it). Not the tests' database for the big run:
tests/test_backup_restore.py dumps and restores a whole database and fails on a schema it did not make
(drop it after: ``DROP SCHEMA scale CASCADE``).

The history (all in SQL, ``INSERT … SELECT generate_series``): 1,500 windows (one device and one log
each) in 30 sections, two staff members a window taking turns by day, 200 事项, twelve months ending
today with the fleet growing through the year (the last months about 1.2x the average), ratings 5/4/3/
2/1 at 80/12/4/2.5/1.5 % (4 % 差评), 3 % of them by phone. Each window's log holds a staff_signin a day
and a case_opened and a rating per service, seq by seq as a kiosk writes it; the derived tables are
what the hub derives from such a log: ``ratings``, the 差评 items of the desk (with their reasons, a
third with a sealed phone number), the figures' cells, labels and fold cursors (the sums the fold
would write; ``--smoke`` checks them against the hub's own recomputation, ``FigureStore.verify``), and
a desk record of actions (回访, 整改, 办结; some 复核 to 不属实; the newest and some older items open)
with its cache of each item's status.
Simplified: no rating_detail events (the reasons and contacts are on the ratings rows), the event
hashes are not a chain (``kiosk hub verify`` is not part of this benchmark) and phone ratings carry no
chain of their own.

Measured, each ``--samples`` times, interleaved with the bare SQL of the same rows:

- the 台账: ``GET /api/v1/manage/bad-ratings`` (first page, a deep page, by status, overdue, by
  section as a section's user, a month) and the console's ``/console/items`` with the same filters;
- the figures: ``GET /api/v1/manage/stats`` by section, window, staff, 事项 and day for a month and a
  quarter, and the console's overview;
- the exports of a month (``GET /api/v1/ratings`` as CSV and JSON, ``kiosk hub ratings export``):
  time to the first byte, total time and the peak resident memory of the hub process (VmHWM, reset
  before each export) or of the CLI process, beside the bare SQL reading the same rows (the export's
  own query through a server-side cursor, no record building: the reference of the 2x target) and
  the SQL that writes the records on PostgreSQL read the same way (the database's part of an export).

``--smoke`` runs it all on 20,000 ratings at 40 windows over 30 days, 3 samples (CI; figures mean nothing).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from benchmarks.measure import add_smoke_option, interleaved, percentile, wait_serving  # noqa: E402
from core.contact import seal_contact  # noqa: E402
from core.events import ZERO_HASH, canonical_json  # noqa: E402
from hub.desk import workflow as wf  # noqa: E402
from hub.desk.store import DeskStore, action_hash, check_desk_chain, fold_item_facts  # noqa: E402
from hub.desk.tables import items  # noqa: E402
from hub.export_stream import duplicate_cases_query, encoded_queries, export_queries  # noqa: E402
from hub.keys import create_key_file  # noqa: E402
from hub.storage import HubStore  # noqa: E402

SECTIONS = 30
ITEMS = 200
PHONE_SHARE = 0.03
# The fleet grows through the year: ratings a day rise linearly, density A + B*t over the year t in [0, 1].
RAMP_A, RAMP_B = 0.7625, 0.475
PASSWORD = "scale-bench-password"
MARK = "bench_scale"  # a table of this benchmark's own: which history the database holds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the history ------------------------------------------------------------------------------------


class Shape:
    """Sizes of a history: ``windows`` devices, ``per`` terminal ratings each over ``days`` days ending
    ``last_day``, and ``phone`` phone ratings."""

    def __init__(self, ratings: int, windows: int, days: int, last_day: date):
        self.windows = windows
        self.phone = round(ratings * PHONE_SHARE)
        self.per = (ratings - self.phone) // windows
        self.phone = ratings - self.per * windows
        self.days = days
        self.first_day = last_day - timedelta(days=days - 1)
        if self.per * RAMP_A < 2 * days:
            raise SystemExit("too few ratings a window for a rating every day: more --ratings or fewer days")

    @property
    def ratings(self) -> int:
        return self.per * self.windows + self.phone

    def key(self) -> str:
        return f"{self.ratings}/{self.windows}/{self.days}/{self.first_day}"


def position(k: str, per: str) -> str:
    """SQL: the day position (a float, whole part the day index) of the k-th of ``per`` (0-based)."""
    return (
        f"((sqrt({RAMP_A}*{RAMP_A} + 2*{RAMP_B}*(({k})::float8 + 0.5)/({per})) - {RAMP_A})/{RAMP_B} * :days)"
    )


def generate(url: str, shape: Shape, data: Path) -> tuple[str, str, str]:
    """A fresh hub database holding the history; returns (supervisor token, section user token, the
    section user's section)."""
    schema = url.rsplit("search_path%3D", 1)[1]
    drop_schema(url, schema)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    store = HubStore(url)  # the real migrations
    key = create_key_file(data / "contact.key", None)
    sealed = [seal_contact(f"1380000{n:04d}", key.public_key) for n in range(50)]
    desk = DeskStore(store.engine, calendar=None)  # type: ignore[arg-type]
    for s in range(1, SECTIONS + 1):
        desk.add_section(f"S{s:02d}", f"第{s}科")
    started = time.monotonic()
    params = {"days": shape.days, "first": shape.first_day.isoformat()}
    with store.engine.begin() as conn:
        conn.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
        conn.execute(text("SET LOCAL work_mem = '256MB'"))
        conn.execute(text("SET LOCAL synchronous_commit = off"))
        saved = [_drop_indexes(conn, t) for t in ("events", "ratings", "desk_items", "fig_cells")]
        _fill(conn, shape, params, sealed)
        print(f"  rows generated in {time.monotonic() - started:.0f} s", flush=True)
        for statements in saved:
            for statement in statements:
                conn.execute(text(statement))
        print(f"  indexes built, {time.monotonic() - started:.0f} s", flush=True)
        # A hub stores ratings as uploads arrive, about in time order; generated window by window, the
        # table is put in that order once (reads of a month are then near one another, as on a hub).
        conn.execute(text("CLUSTER ratings USING ix_ratings_assess_time"))
        print(f"  ratings in arrival order, {time.monotonic() - started:.0f} s", flush=True)
    _actions(store, shape)
    with store.engine.begin() as conn:  # what the figures count of each item, as the desk keeps it
        fold_item_facts(conn, items.c.id.is_not(None))
    print(f"  desk actions, {time.monotonic() - started:.0f} s", flush=True)
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    print(f"  vacuumed, {time.monotonic() - started:.0f} s", flush=True)
    for name, role, dept in (("scale-sup", "supervisor", None), ("scale-dept", "dept", "S01")):
        desk.add_user(name, role, dept)
        desk.set_password(name, PASSWORD)
    tokens = desk.new_token("scale-sup"), desk.new_token("scale-dept")
    with store.engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {MARK} (key text primary key, value text)"))
        conn.execute(
            text(f"INSERT INTO {MARK} VALUES ('shape', :s), ('sup', :a), ('dept', :b)"),
            {"s": shape.key(), "a": tokens[0], "b": tokens[1]},
        )
    store.close()
    return tokens[0], tokens[1], "S01"


def reusable(url: str, shape: Shape) -> tuple[str, str, str] | None:
    store = HubStore(url)
    try:
        with store.engine.connect() as conn:
            if not conn.execute(text("SELECT to_regclass(:t)"), {"t": MARK}).scalar():
                return None
            found = dict(conn.execute(text(f"SELECT key, value FROM {MARK}")).all())  # noqa: S608
    finally:
        store.close()
    return (found["sup"], found["dept"], "S01") if found.get("shape") == shape.key() else None


def _drop_indexes(conn, table: str) -> list[str]:
    """Drop a table's indexes and primary key for the bulk fill; returns the statements rebuilding them."""
    rebuild = []
    for name, definition in conn.execute(
        text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = CAST(:t AS regclass) AND contype IN ('p', 'u')"
        ),
        {"t": table},
    ).all():
        conn.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
        rebuild.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    for name, definition in conn.execute(
        text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :t AND schemaname = current_schema()"
        ),
        {"t": table},
    ).all():
        conn.execute(text(f'DROP INDEX "{name}"'))
        rebuild.append(definition)
    return rebuild


def _fill(conn, shape: Shape, params: dict, sealed: list[str]) -> None:
    w, per = shape.windows, shape.per
    sealed_array = "CAST(:sealed AS text[])"
    params = {**params, "sealed": sealed}
    x = position("k", str(per))
    # One row a terminal service: window w, its k-th service, on day d at secs after midnight (kiosk time).
    services = f"""
        SELECT w, k, d, secs, d_prev,
               2*k + d + 1 AS signin_seq, 2*k + d + 2 AS case_seq, 2*k + d + 3 AS seq,
               'SCALE-' || lpad(w::text, 4, '0') AS device_id,
               '00000000-0000-4000-8000-' || lpad(w::text, 12, '0') AS log_id,
               lpad((w + 1)::text, 4, '0') AS window_no,
               'S' || lpad((w*2 + d % 2)::text, 5, '0') AS staff_no,
               '职员' || lpad((w*2 + d % 2)::text, 5, '0') AS staff_name,
               'C' || lpad(w::text, 4, '0') || lpad(k::text, 8, '0') AS case_no,
               'A' || lpad((k % 1000)::text, 3, '0') AS ticket_no,
               '11370200MB' || lpad(((w*7 + k*13 + (k*k) % 17) % {ITEMS})::text, 4, '0') || 'X' AS item_code,
               '事项' || lpad(((w*7 + k*13 + (k*k) % 17) % {ITEMS})::text, 4, '0') AS item_name,
               CASE WHEN h < 15 THEN 1 WHEN h < 40 THEN 2 WHEN h < 80 THEN 3 WHEN h < 200 THEN 4 ELSE 5 END
                 AS satisfaction,
               h,
               CAST(:first AS timestamp) + d * interval '1 day' + secs * interval '1 second' AS ts
        FROM (
            SELECT w, k, floor(x)::int AS d, 30600 + floor((x - floor(x)) * 28800)::int AS secs,
                   CASE WHEN k = 0 THEN -1 ELSE floor(x_prev)::int END AS d_prev,
                   ((w::bigint * 7919 + k::bigint * 104729) % 1000)::int AS h
            FROM (
                SELECT w, k, {x} AS x, {position("k - 1", str(per))} AS x_prev
                FROM generate_series(0, {w - 1}) AS w CROSS JOIN generate_series(0, {per - 1}) AS k
            ) AS p
        ) AS s
    """
    iso = "to_char({0}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || '+08:00'"
    fake_hash = "md5({0}) || md5({0} || 'x')"
    received = "'2026-11-30T00:00:00+00:00'"
    conn.execute(
        text(f"""
        INSERT INTO events (device_id, log_id, seq, id, type, at, payload, prev_hash, hash, received_at)
        SELECT device_id, log_id, e.seq, md5(device_id || e.seq), e.type, e.at, e.payload,
               {fake_hash.format("device_id || (e.seq - 1)")}, {fake_hash.format("device_id || e.seq")},
               {received}
        FROM ({services}) AS s
        CROSS JOIN LATERAL (
            SELECT signin_seq AS seq, 'staff_signin' AS type,
                   {iso.format("CAST(:first AS timestamp) + d * interval '1 day' + interval '8 hours'")} AS at,
                   json_build_object('staff_no', staff_no, 'staff_name', staff_name)::text AS payload
            WHERE d <> d_prev
            UNION ALL
            SELECT case_seq, 'case_opened', {iso.format("ts - interval '1 minute'")},
                   json_build_object('ticket_no', ticket_no, 'case_no', case_no, 'item_code', item_code,
                                     'item_name', item_name, 'source', 'queue')::text
            UNION ALL
            SELECT seq, 'rating', {iso.format("ts")},
                   json_build_object('case_seq', case_seq, 'staff_no', staff_no, 'staff_name', staff_name,
                                     'window', window_no, 'ticket_no', ticket_no, 'case_no', case_no,
                                     'item_code', item_code, 'item_name', item_name,
                                     'satisfaction', satisfaction, 'input', 'touch')::text
        ) AS e
        """),
        params,
    )
    conn.execute(
        text(f"""
        INSERT INTO ratings (device_id, log_id, seq, "window", staff_no, staff_name, ticket_no, case_no,
                             item_code, item_name, satisfaction, input, at, assess_time, reasons,
                             contact_sealed)
        SELECT device_id, log_id, seq, window_no, staff_no, staff_name, ticket_no, case_no, item_code,
               item_name, satisfaction, 'touch', {iso.format("ts")},
               to_char(ts, 'YYYY-MM-DD HH24:MI:SS'),
               CASE WHEN satisfaction <= 2 THEN '101,203' END,
               CASE WHEN satisfaction <= 2 AND h % 3 = 0 THEN ({sealed_array})[1 + (w + k) % {len(sealed)}] END
        FROM ({services}) AS s
        """),
        params,
    )
    conn.execute(
        text(f"""
        INSERT INTO devices (id, secret, area_code, dept_code, created_at)
        SELECT 'SCALE-' || lpad(w::text, 4, '0'), md5(w::text) || md5(w::text || 'x'), '370211',
               'D' || lpad((w % {SECTIONS} + 1)::text, 2, '0'), '2025-11-01T00:00:00+00:00'
        FROM generate_series(0, {w - 1}) AS w
        """)
    )
    conn.execute(
        text(f"""
        INSERT INTO desk_device_sections (device_id, dept, at)
        SELECT 'SCALE-' || lpad(w::text, 4, '0'), 'S' || lpad((w % {SECTIONS} + 1)::text, 2, '0'),
               '2025-11-01T00:00:00+00:00'
        FROM generate_series(0, {w - 1}) AS w ORDER BY w
        """)
    )
    # Phone ratings: the j-th one at window j % windows, spread over the year as the terminal ones.
    phone_per = shape.phone / w
    xp = position(f"j / {w}", str(phone_per))
    conn.execute(
        text(f"""
        INSERT INTO phone_ratings (device_id, nonce, "window", staff_no, staff_name, ticket_no, case_no,
                                   item_code, item_name, satisfaction, reasons, contact_sealed, issued_at,
                                   at, assess_time)
        SELECT 'SCALE-' || lpad(w::text, 4, '0'), lpad(to_hex(j), 16, '0'), lpad((w + 1)::text, 4, '0'),
               'S' || lpad((w*2 + d % 2)::text, 5, '0'), '职员' || lpad((w*2 + d % 2)::text, 5, '0'),
               NULL, 'P' || lpad(j::text, 11, '0'),
               '11370200MB' || lpad(((w*7 + j*13) % {ITEMS})::text, 4, '0') || 'X',
               '事项' || lpad(((w*7 + j*13) % {ITEMS})::text, 4, '0'),
               CASE WHEN h < 15 THEN 1 WHEN h < 40 THEN 2 WHEN h < 80 THEN 3 WHEN h < 200 THEN 4 ELSE 5 END,
               CASE WHEN h < 40 THEN '102' END,
               CASE WHEN h < 40 AND j % 2 = 0 THEN ({sealed_array})[1 + j % {len(sealed)}] END,
               extract(epoch FROM ts - interval '8 hours')::bigint - 120,
               to_char(ts - interval '8 hours', 'YYYY-MM-DD"T"HH24:MI:SS') || '+00:00',
               to_char(ts, 'YYYY-MM-DD HH24:MI:SS')
        FROM (
            SELECT j, w, d, h,
                   CAST(:first AS timestamp) + d * interval '1 day'
                     + (30600 + floor((x - d) * 28800)::int) * interval '1 second' AS ts
            FROM (
                SELECT j, j % {w} AS w, x, floor(x)::int AS d, ((j::bigint * 7717) % 1000)::int AS h
                FROM (SELECT j, {xp} AS x FROM generate_series(0, {shape.phone - 1}) AS j) AS p
            ) AS q
        ) AS r
        """),
        params,
    )
    # The derived tables of the desk and the figures, as the hub derives them from the rows above.
    conn.execute(
        text(f"""
        INSERT INTO desk_items (device_id, log_id, seq, nonce, dept, satisfaction, assess_time, received,
                                received_at)
        SELECT device_id, log_id, seq, nonce, 'S' || lpad((substr(device_id, 7)::int % {SECTIONS} + 1)::text, 2, '0'),
               satisfaction, assess_time, substr(assess_time, 1, 10),
               to_char(CAST(assess_time AS timestamp) - interval '8 hours' + interval '30 seconds',
                       'YYYY-MM-DD"T"HH24:MI:SS') || '+00:00'
        FROM (
            SELECT device_id, log_id, seq, NULL AS nonce, satisfaction, assess_time FROM ratings
            WHERE satisfaction <= 2
            UNION ALL
            SELECT device_id, NULL, NULL, nonce, satisfaction, assess_time FROM phone_ratings
            WHERE satisfaction <= 2
        ) AS bad
        ORDER BY assess_time, device_id
        """)
    )
    counts = """
        count(*) FILTER (WHERE satisfaction >= 3), count(*) FILTER (WHERE satisfaction <= 2),
        count(*) FILTER (WHERE satisfaction = 1), count(*) FILTER (WHERE satisfaction = 2),
        count(*) FILTER (WHERE satisfaction = 3), count(*) FILTER (WHERE satisfaction = 4),
        count(*) FILTER (WHERE satisfaction = 5)
    """
    conn.execute(
        text(f"""
        INSERT INTO fig_cells (day, device_id, staff_no, item_code, services, walkin, skipped, rated, phone,
                               good, bad, s1, s2, s3, s4, s5, duplicates, unreadable)
        SELECT day, device_id, staff_no, item_code, sum(services), 0, 0, sum(rated), sum(phone), sum(good),
               sum(bad), sum(s1), sum(s2), sum(s3), sum(s4), sum(s5), 0, 0
        FROM (
            SELECT substr(assess_time, 1, 10) AS day, device_id, staff_no, item_code, count(*) AS services,
                   count(*) AS rated, 0 AS phone, {counts}
            FROM ratings GROUP BY 1, 2, 3, 4
            UNION ALL
            SELECT substr(assess_time, 1, 10), device_id, staff_no, item_code, 0, count(*), count(*),
                   {counts}
            FROM phone_ratings GROUP BY 1, 2, 3, 4
        ) AS c (day, device_id, staff_no, item_code, services, rated, phone, good, bad, s1, s2, s3, s4, s5)
        GROUP BY 1, 2, 3, 4
        ORDER BY 1, 2, 3, 4
        """)
    )
    fields = "services, walkin, skipped, rated, phone, good, bad, s1, s2, s3, s4, s5, duplicates, unreadable"
    sums = ", ".join(f"sum({f.strip()})" for f in fields.split(","))
    conn.execute(  # the cells per day and device, as the hub folds them with the cells (revision 0013)
        text(
            f"INSERT INTO fig_device_days (day, device_id, {fields}) "  # noqa: S608
            f"SELECT day, device_id, {sums} FROM fig_cells GROUP BY 1, 2 ORDER BY 1, 2"
        )
    )
    for table, keys, source in (  # the coarser sums, as the hub folds them with the cells (revision 0014)
        ("fig_staff_days", "day, device_id, staff_no", "fig_cells"),
        ("fig_item_days", "day, item_code", "fig_cells"),
        ("fig_device_months", "month, device_id", "fig_device_days"),
        ("fig_staff_months", "month, device_id, staff_no", "fig_staff_days"),
        ("fig_item_months", "month, item_code", "fig_item_days"),
    ):
        by = keys.replace("month", "substr(day, 1, 7)")
        conn.execute(
            text(
                f"INSERT INTO {table} ({keys}, {fields}) "  # noqa: S608
                f"SELECT {by}, {sums} FROM {source} GROUP BY {by}"
            )
        )
    conn.execute(
        text("""
        INSERT INTO logs (device_id, log_id, acked_seq, head_hash, first_seen_at, last_seen_at)
        SELECT device_id, log_id, max(seq), '', '2025-11-01T00:00:00+00:00', '2026-11-30T00:00:00+00:00'
        FROM events GROUP BY device_id, log_id
        """)
    )
    conn.execute(
        text("UPDATE logs SET head_hash = md5(device_id || acked_seq) || md5(device_id || acked_seq || 'x')")
    )
    last_staff = f"'S' || lpad((substr(l.device_id, 7)::int * 2 + {shape.days - 1} % 2)::text, 5, '0')"
    conn.execute(
        text(f"""
        INSERT INTO fig_logs (device_id, log_id, seq, hash, state)
        SELECT l.device_id, l.log_id, l.acked_seq, l.head_hash,
               json_build_object('seq', l.acked_seq, 'staff_no', {last_staff},
                                 'open_cases', json_build_object())::text
        FROM logs AS l
        """)
    )
    conn.execute(
        text(
            "INSERT INTO fig_phone (device_id, nonce, assess_time) SELECT device_id, nonce, assess_time FROM phone_ratings"
        )
    )
    conn.execute(text("UPDATE fig_phone_count SET folded = (SELECT count(*) FROM fig_phone) WHERE id = 1"))
    conn.execute(
        text("""
        INSERT INTO fig_labels (kind, key, at, value)
        SELECT 'staff', staff_no, max(at), min(staff_name) FROM ratings GROUP BY staff_no
        UNION ALL SELECT 'items', item_code, max(at), min(item_name) FROM ratings GROUP BY item_code
        UNION ALL SELECT 'windows', device_id, max(at), min("window") FROM ratings GROUP BY device_id
        """)
    )


def _actions(store: HubStore, shape: Shape, seed: int = 7) -> None:
    """A desk record over the items: most older ones called back, rectified and closed, some reviewed
    to 不属实, the rest and the newest open; one hash chain as the desk writes it."""
    rng = random.Random(seed)
    last_day = shape.first_day + timedelta(days=shape.days - 1)
    recent = (last_day - timedelta(days=10)).isoformat()
    prev, seq = ZERO_HASH, 0
    raw = store.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("SELECT id, received_at, received FROM desk_items ORDER BY id")
        todo = cur.fetchall()
        with cur.copy(
            "COPY desk_actions (seq, item_id, at, by_user, role, action, payload, status, prev_hash, hash) "
            "FROM STDIN"
        ) as copy:
            for item_id, received_at, received in todo:
                roll = rng.random()
                steps: list[tuple[str, str, dict]] = []
                if received >= recent:
                    if roll < 0.4:
                        steps = [(wf.CALLBACK, "dept", {"note": "", "reached": True})]
                elif roll < 0.82:
                    steps = [
                        (wf.CALLBACK, "dept", {"note": "", "reached": rng.random() < 0.8}),
                        (wf.RECTIFY, "dept", {"note": "已整改"}),
                        (wf.CLOSE, "dept", {"note": ""}),
                    ]
                elif roll < 0.87:
                    steps = [
                        (wf.REQUEST_REVIEW, "dept", {"note": "评价人误操作"}),
                        (wf.REVIEW_OPINION, "dept", {"note": "", "adopt": False}),
                        (wf.REVIEW_DECIDE, "supervisor", {"note": "", "adopt": False}),
                    ]
                elif roll < 0.95:
                    steps = [(wf.CALLBACK, "dept", {"note": "", "reached": False})]
                at = datetime.fromisoformat(received_at)
                status = wf.OPEN
                state = wf.ItemState()
                for n, (action, role, payload) in enumerate(steps):
                    state = wf.step(state, action, role, payload)
                    status = state.status
                    seq += 1
                    row = {
                        "seq": seq,
                        "item_id": item_id,
                        "at": (at + timedelta(days=1 + n, hours=1)).isoformat(timespec="seconds"),
                        "by_user": "scale-sup" if role == "supervisor" else "scale-dept",
                        "role": role,
                        "action": action,
                        "payload": canonical_json(payload).decode("utf-8"),
                        "status": status,
                        "prev_hash": prev,
                    }
                    row["hash"] = prev = action_hash(row)
                    copy.write_row(
                        [
                            row[k]
                            for k in (
                                "seq",
                                "item_id",
                                "at",
                                "by_user",
                                "role",
                                "action",
                                "payload",
                                "status",
                                "prev_hash",
                                "hash",
                            )
                        ]
                    )
        # The cache of each item's newest status, as the desk writes it with each action.
        cur.execute(
            "INSERT INTO desk_item_status (item_id, seq, status) "
            "SELECT DISTINCT ON (item_id) item_id, seq, status FROM desk_actions ORDER BY item_id, seq DESC"
        )
        raw.commit()
    finally:
        raw.close()


# --- the hub and the clients ------------------------------------------------------------------------


def start_hub(url: str, data: Path, admin: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "KIOSK_HUB_DB": url, "KIOSK_HUB_ADMIN_TOKEN": admin}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "commands.cli",
            "hub",
            "--key-file",
            str(data / "contact.key"),
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(data / "hub.log", "wb"),  # noqa: SIM115
    )
    base = f"http://127.0.0.1:{port}"
    wait_serving(proc, base, timeout_s=120, log=data / "hub.log")
    return proc, base


def console_session(base: str, name: str) -> requests.Session:
    s = requests.Session()
    page = s.get(f"{base}/console/login", timeout=30)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf, "no csrf field on the login page"
    done = s.post(
        f"{base}/console/login",
        data={"name": name, "password": PASSWORD, "csrf": csrf.group(1)},
        allow_redirects=False,
        timeout=30,
    )
    assert done.status_code == 303, done.status_code
    return s


def timed_get(session: requests.Session, url: str, **kw) -> Callable[[], float]:
    def once() -> float:
        start = time.perf_counter()
        r = session.get(url, timeout=600, **kw)
        elapsed = time.perf_counter() - start
        assert r.status_code == 200, (url, r.status_code, r.text[:300])
        return elapsed

    return once


def timed_sql(url: str, sql: str, params: dict | None = None) -> Callable[[], float]:
    store = HubStore(url)

    def once() -> float:
        start = time.perf_counter()
        with store.engine.connect() as conn:
            conn.execute(text(sql), params or {}).all()
        return time.perf_counter() - start

    return once


def vm_hwm(pid: int) -> int:
    """The process's peak resident memory so far, kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def reset_hwm(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets the peak to the current resident size


def fetch_export(base: str, admin: str, hub_pid: int, first: str, last: str, fmt: str) -> dict:
    reset_hwm(hub_pid)
    before = vm_hwm(hub_pid)
    start = time.perf_counter()
    first_byte = None
    size = 0
    with requests.get(
        f"{base}/api/v1/ratings",
        params={"from": first, "to": last, "format": fmt},
        headers={"Authorization": f"Bearer {admin}"},
        stream=True,
        timeout=3600,
    ) as r:
        assert r.status_code == 200, r.status_code
        for chunk in r.iter_content(65536):
            if first_byte is None:
                first_byte = time.perf_counter() - start
            size += len(chunk)
        count = int(r.headers["X-Rating-Count"])
    return {
        "first_byte": first_byte or 0.0,
        "total": time.perf_counter() - start,
        "rss_mb": vm_hwm(hub_pid) / 1024,
        "rss_before_mb": before / 1024,
        "bytes": size,
        "count": count,
    }


def cli_export(url: str, data: Path, first: str, last: str, fmt: str) -> dict:
    env = {**os.environ, "KIOSK_HUB_DB": url}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "commands.cli",
            "hub",
            "ratings",
            "export",
            "--from",
            first,
            "--to",
            last,
            "--format",
            fmt,
            "--key-file",
            str(data / "contact.key"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    first_byte = None
    size = 0
    while chunk := proc.stdout.read1(65536):
        if first_byte is None:
            first_byte = time.perf_counter() - start
        size += len(chunk)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = status
    assert status == 0, status
    return {
        "first_byte": first_byte or 0.0,
        "total": time.perf_counter() - start,
        "rss_mb": usage.ru_maxrss / 1024,
        "bytes": size,
    }


def bare_export_sql(url: str, first: str, last: str) -> dict:
    """The export's own queries (window and phone ratings, each in its order), their rows read through
    server-side cursors in pages one after the other, nothing built from them."""
    store = HubStore(url)
    queries = export_queries(first + " 00:00:00", last + " 23:59:59", dialect="postgresql")
    start = time.perf_counter()
    with store.engine.connect() as conn:
        timed = _read_through(conn, queries, start)
    store.close()
    return timed


def records_sql(url: str, first: str, last: str) -> dict:
    """The queries of the export on PostgreSQL, the database writing each record (CSV), read through
    server-side cursors as the hub reads them, and nothing done with the lines: the database's part."""
    store = HubStore(url)
    bounds = (first + " 00:00:00", last + " 23:59:59")
    start = time.perf_counter()
    with store.engine.connect() as conn:
        conn.execution_options(isolation_level="REPEATABLE READ")
        cases = list(conn.execute(duplicate_cases_query(*bounds)).scalars())
        conn.exec_driver_sql("SET LOCAL jit = off")
        timed = _read_through(conn, encoded_queries(*bounds, "csv", cases), start)
    store.close()
    return timed


def _read_through(conn, queries, start: float) -> dict:
    """Every row of ``queries`` read through server-side cursors, 1,000 a fetch, nothing done with them:
    when the first came and when the last, counted from ``start``."""
    first_row = None
    n = 0
    for query in queries:
        result = conn.execution_options(stream_results=True, yield_per=1000).execute(query)
        for partition in result.partitions():
            if first_row is None:
                first_row = time.perf_counter() - start
            n += len(partition)
    return {"first_byte": first_row or 0.0, "total": time.perf_counter() - start, "count": n}


# --- the measurement --------------------------------------------------------------------------------


def report(name: str, samples: list[float], target: float | None = None) -> None:
    p50, p95 = percentile(samples, 50) * 1000, percentile(samples, 95) * 1000
    verdict = "" if target is None else ("  (met)" if p95 < target * 1000 else "  (MISSED)")
    print(f"  {name:58s} p50 {p50:8.1f} ms  p95 {p95:8.1f} ms{verdict}", flush=True)


def month_of(last_day: date, back: int) -> tuple[str, str]:
    first = last_day.replace(day=1)
    for _ in range(back):
        first = (first - timedelta(days=1)).replace(day=1)
    end = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return first.isoformat(), end.isoformat()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default=os.environ.get("KIOSK_TEST_PG_URL"), help="scratch PostgreSQL URL")
    parser.add_argument(
        "--schema",
        help="the schema of --db to hold the history, dropped first (default scale, smoke: scale_smoke)",
    )
    parser.add_argument("--ratings", type=int, default=10_000_000)
    parser.add_argument("--windows", type=int, default=1500)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument(
        "--figure-samples", type=int, help="samples of each figures query (default --samples)"
    )
    parser.add_argument("--export-samples", type=int, default=3)
    parser.add_argument(
        "--reuse", action="store_true", help="keep a history of the same size from an earlier run"
    )
    parser.add_argument(
        "--skip", default="", help="comma-separated parts not to measure: desk,figures,export"
    )
    add_smoke_option(parser)
    args = parser.parse_args()
    if not args.db or not args.db.startswith("postgresql"):
        print("scale.py: --db (or $KIOSK_TEST_PG_URL): a scratch PostgreSQL URL is required", file=sys.stderr)
        return 2
    schema = args.schema or ("scale_smoke" if args.smoke else "scale")
    args.db += ("&" if "?" in args.db else "?") + f"options=-csearch_path%3D{schema}"
    if args.smoke:
        args.ratings, args.windows, args.days, args.samples, args.export_samples = 20_000, 40, 75, 3, 1
        args.figure_samples = 3
    today = date.today()
    shape = Shape(args.ratings, args.windows, args.days, today)
    skip = set(filter(None, args.skip.split(",")))
    data = Path(os.environ.get("KIOSK_SCALE_DATA") or (Path(tempfile.gettempdir()) / f"kiosk-{schema}"))
    data.mkdir(exist_ok=True)
    tokens = reusable(args.db, shape) if args.reuse and (data / "contact.key").exists() else None
    if tokens is None:
        print(
            f"generating {shape.ratings:,} ratings ({shape.phone:,} by phone) at {shape.windows} windows "
            f"over {shape.days} days ending {today}",
            flush=True,
        )
        (data / "contact.key").unlink(missing_ok=True)
        started = time.monotonic()
        tokens = generate(args.db, shape, data)
        print(f"generated in {time.monotonic() - started:.0f} s", flush=True)
    else:
        print(f"reusing the history of {shape.ratings:,} ratings", flush=True)
    sup, dept_token, dept = tokens
    if args.smoke:
        check_cells(args.db)
    sizes(args.db)
    admin = secrets.token_hex(24)
    proc, base = start_hub(args.db, data, admin)
    try:
        print(f"hub pid {proc.pid}, resident {vm_hwm(proc.pid) / 1024:.0f} MB after start", flush=True)
        if "desk" not in skip:
            measure_desk(args.db, base, sup, dept_token, dept, shape, args.samples)
        if "figures" not in skip:
            measure_figures(args.db, base, sup, shape, args.figure_samples or args.samples)
        if "export" not in skip:
            measure_exports(args.db, base, admin, proc.pid, data, shape, args.export_samples)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if args.smoke:
            drop_schema(args.db, schema)  # CI's test database: a smoke run leaves nothing behind
    return 0


def drop_schema(url: str, schema: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def check_cells(url: str) -> None:
    """The generated cells are what the hub's own recomputation from the generated events gives."""
    from hub.figures.store import FigureStore

    store = HubStore(url)
    problems = FigureStore(store.engine).verify()
    chain = check_desk_chain(store)
    store.close()
    if problems:
        raise SystemExit("generated cells differ from the hub's fold:\n" + "\n".join(problems[:20]))
    if chain:
        raise SystemExit(f"generated desk record: {chain}")
    print(
        "  cells, their sums per day and month and the desk's facts agree with the hub's recomputation "
        "from the record (FigureStore.verify)",
        flush=True,
    )
    print("  the desk record is one chain and its status cache agrees (check_desk_chain)", flush=True)


def sizes(url: str) -> None:
    store = HubStore(url)
    with store.engine.connect() as conn:
        for table in (
            "events",
            "ratings",
            "phone_ratings",
            "desk_items",
            "desk_actions",
            "fig_cells",
            "fig_device_days",
            "fig_staff_days",
            "fig_item_days",
            "fig_device_months",
            "desk_item_facts",
        ):
            rows = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()  # noqa: S608
            size = conn.execute(
                text("SELECT pg_total_relation_size(CAST(:t AS regclass))"), {"t": table}
            ).scalar()
            print(f"  {table:14s} {rows:>12,} rows {size / 2**20:>10,.0f} MB with indexes", flush=True)
    store.close()


def measure_desk(url, base, sup, dept_token, dept, shape: Shape, samples: int) -> None:
    print("台账 (target p95 < 500 ms):", flush=True)
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {sup}"
    dept_api = requests.Session()
    dept_api.headers["Authorization"] = f"Bearer {dept_token}"
    console = console_session(base, "scale-sup")
    month = month_of(shape.first_day + timedelta(days=shape.days - 1), 1)
    bad = f"{base}/api/v1/manage/bad-ratings"
    page = f"{base}/console/items"
    cases: dict[str, Callable[[], float]] = {
        "api first page": timed_get(api, bad, params={"limit": 50}),
        "api page 200": timed_get(api, bad, params={"limit": 50, "offset": 9950}),
        "api status=open": timed_get(api, bad, params={"status": "open", "limit": 50}),
        "api status=closed, page 20": timed_get(
            api, bad, params={"status": "closed", "limit": 50, "offset": 950}
        ),
        "api overdue": timed_get(api, bad, params={"overdue": "true", "limit": 50}),
        "api a month": timed_get(api, bad, params={"from": month[0], "to": month[1], "limit": 50}),
        "api section user (own section)": timed_get(dept_api, bad, params={"limit": 50}),
        "console first page": timed_get(console, page),
        "console page 100": timed_get(console, page, params={"page": 100}),
        "console status=open": timed_get(console, page, params={"status": "open"}),
        "console overdue (督办)": timed_get(console, page, params={"overdue": "1"}),
        f"console section {dept}, a month": timed_get(
            console, page, params={"dept": dept, "from": month[0], "to": month[1]}
        ),
        "bare SQL: count + first page of desk_items": timed_sql(
            url,
            "SELECT count(*) FROM desk_items; ",
        ),
    }
    bare_page = timed_sql(
        url,
        "SELECT i.*, r.window, r.staff_no FROM desk_items i LEFT JOIN ratings r "
        "ON r.device_id = i.device_id AND r.log_id = i.log_id AND r.seq = i.seq ORDER BY i.id DESC LIMIT 50",
    )
    count = cases.pop("bare SQL: count + first page of desk_items")

    def bare() -> float:
        return count() + bare_page()

    cases["bare SQL: count(*) + first page joined"] = bare
    found = interleaved(cases, samples, warmup=1)
    for name, values in found.items():
        report(name, values, None if name.startswith("bare") else 0.5)


def measure_figures(url, base, sup, shape: Shape, samples: int) -> None:
    print("figures (target p95 < 500 ms):", flush=True)
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {sup}"
    console = console_session(base, "scale-sup")
    last_day = shape.first_day + timedelta(days=shape.days - 1)
    month = month_of(last_day, 1)
    q_first = month_of(last_day, 3)[0]
    quarter = (q_first, month[1])
    cases: dict[str, Callable[[], float]] = {}
    for label, (first, last) in (("month", month), ("quarter", quarter)):
        for by in ("dept", "window", "staff", "item", "day"):
            cases[f"api stats by {by}, a {label}"] = timed_get(
                api, f"{base}/api/v1/manage/stats", params={"by": by, "from": first, "to": last}
            )
        cases[f"bare SQL: ratings of a {label} by window"] = timed_sql(
            url,
            "SELECT device_id, count(*), count(*) FILTER (WHERE satisfaction >= 3) FROM ratings "
            "WHERE assess_time BETWEEN :a AND :b GROUP BY device_id",
            {"a": first + " 00:00:00", "b": last + " 23:59:59"},
        )
    cases["console overview"] = timed_get(console, f"{base}/console/overview")
    found = interleaved(cases, samples, warmup=1)
    for name, values in found.items():
        report(name, values, None if name.startswith("bare") else 0.5)


def measure_exports(url, base, admin, hub_pid, data: Path, shape: Shape, samples: int) -> None:
    last_day = shape.first_day + timedelta(days=shape.days - 1)
    first, last = month_of(last_day, 1)
    print(
        f"exports of {first}…{last} (targets: first byte < 1 s, total < 2x the bare SQL, hub < 300 MB):",
        flush=True,
    )
    runs: dict[str, list[dict]] = {
        "bare SQL": [],
        "SQL records": [],
        "api csv": [],
        "api json": [],
        "cli csv": [],
    }
    for _ in range(samples):
        runs["bare SQL"].append(bare_export_sql(url, first, last))
        runs["SQL records"].append(records_sql(url, first, last))
        runs["api csv"].append(fetch_export(base, admin, hub_pid, first, last, "csv"))
        runs["api json"].append(fetch_export(base, admin, hub_pid, first, last, "json"))
        runs["cli csv"].append(cli_export(url, data, first, last, "csv"))
    bare_total = min(r["total"] for r in runs["bare SQL"])
    for name, found in runs.items():
        best = min(found, key=lambda r: r["total"])
        worst_first = max(r["first_byte"] for r in found)
        line = (
            f"  {name:11s} rows {found[0].get('count', '-')!s:>9}  first byte {worst_first:6.2f} s (worst)  "
            f"total {best['total']:7.1f} s (best of {len(found)}, {best['total'] / bare_total:.2f}x the bare SQL)"
        )
        if "rss_mb" in best:
            line += f"  peak RSS {max(r['rss_mb'] for r in found):.0f} MB"
        if "rss_before_mb" in best:
            line += f" (from {min(r['rss_before_mb'] for r in found):.0f} MB before)"
        if "bytes" in best:
            line += f"  {best['bytes'] / 2**20:.0f} MB"
        print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())

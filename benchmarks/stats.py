"""The figures' speed against the physical limit: stats queries over materialised cells beside a bare
aggregate SQL query of the same ratings in the same run, and the big screen's update latency.

    python benchmarks/stats.py [--ratings 1000000] [--samples 30] [--dir PATH] [--smoke]

1. A hub database (SQLite) filled through HubStore.ingest, as uploads fill it: ``--ratings`` ratings at
   50 windows over 90 days (a case_opened and a rating each, sign-ins, some skipped cases), 5% of them
   by phone. The fill is not measured; the first fold of the whole record into cells is (once).
2. Queries, interleaved and warmed up, each ``--samples`` times: the stats the API serves (FigureStore:
   fold check, cells of the period, desk counts, grouping, rates) by section, window, staff, 事项, day
   and month, for a month and for a quarter; beside the bare aggregate SQL over the ratings table of the
   same period (count and good count by window): the cost of reading the raw rows once.
3. The big screen: a hub on 127.0.0.1, Debian's chromium on /screen, a rating uploaded, the time until
   the page shows it; target < 2 s.

``--smoke`` runs it all at 5,000 ratings, 3 samples and 2 screen updates (CI; its figures mean nothing).
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from sqlalchemy import insert, text  # noqa: E402

from benchmarks.measure import add_smoke_option, interleaved, percentile  # noqa: E402
from core.events import ZERO_HASH, event_hash  # noqa: E402
from hub.figures import model as m  # noqa: E402
from hub.figures.store import FigureStore  # noqa: E402
from hub.figures.views import stats_json  # noqa: E402
from hub.schema import phone_ratings  # noqa: E402
from hub.storage import HubStore, database_url  # noqa: E402

WINDOWS, DAYS, ITEMS = 50, 90, 30
FIRST_DAY = date(2026, 9, 1)
KEEP = {"staff": ("staff_no",), "item": ("item_code",), "day": ("day",), "month": ("month",)}


class Log:
    """One window's log, chained as the kiosk writes it, uploaded in batches of 1000."""

    def __init__(self, store: HubStore, window: int, log_id: str | None = None):
        self.store, self.device = store, f"BENCH-W{window:02d}"
        self.window = f"{window:02d}"
        self.log_id = log_id or f"00000000-0000-4000-8000-{window:012d}"
        self.seq, self.prev, self.batch = 0, ZERO_HASH, []

    def add(self, kind: str, at: str, payload: dict) -> int:
        self.seq += 1
        e = {
            "log_id": self.log_id,
            "seq": self.seq,
            "id": f"{self.log_id[:-8]}{self.seq:08d}",
            "type": kind,
            "at": at,
            "payload": payload,
            "prev_hash": self.prev,
        }
        e["hash"] = self.prev = event_hash(e)
        self.batch.append(e)
        if len(self.batch) >= 1000:
            self.flush()
        return self.seq

    def flush(self) -> None:
        if self.batch:
            self.store.ingest(self.device, self.log_id, self.batch)
            self.batch = []


def fill(store: HubStore, ratings: int, seed: int = 7) -> int:
    rnd = random.Random(seed)
    logs = [Log(store, w + 1) for w in range(WINDOWS)]
    per_day = max(1, ratings // (WINDOWS * DAYS))
    made, phone_rows = 0, []
    for d in range(DAYS):
        day = FIRST_DAY + timedelta(days=d)
        for log in logs:
            staff = f"{int(log.window) * 10 + d % 3:04d}"
            base = datetime(day.year, day.month, day.day, 9, 0)
            log.add("staff_signin", _at(base), {"staff_no": staff, "staff_name": f"员工{staff}"})
            for i in range(per_day):
                if made >= ratings:
                    break
                at = base + timedelta(seconds=30 * (i + 1))
                item = f"I{rnd.randrange(ITEMS):02d}"
                case_no = f"{log.window}{day:%Y%m%d}{i:05d}"
                case_seq = log.add(
                    "case_opened",
                    _at(at),
                    {
                        "ticket_no": None,
                        "case_no": case_no,
                        "item_code": item,
                        "item_name": f"事项{item}",
                        "source": "queue",
                    },
                )
                s = rnd.choices((5, 4, 3, 2, 1), weights=(80, 12, 4, 3, 1))[0]
                if rnd.random() < 0.05:  # rated by phone after the window's countdown
                    log.add(
                        "rating_skipped",
                        _at(at + timedelta(seconds=60)),
                        {"case_seq": case_seq, "why": "timeout"},
                    )
                    phone_rows.append(
                        {
                            "device_id": log.device,
                            "nonce": f"{made:016x}",
                            "window": log.window,
                            "staff_no": staff,
                            "staff_name": f"员工{staff}",
                            "ticket_no": None,
                            "case_no": case_no,
                            "item_code": item,
                            "item_name": f"事项{item}",
                            "satisfaction": s,
                            "reasons": None,
                            "contact_sealed": None,
                            "issued_at": 0,
                            "at": _at(at + timedelta(seconds=90)),
                            "assess_time": (at + timedelta(seconds=90)).strftime("%Y-%m-%d %H:%M:%S"),
                        }
                    )
                else:
                    log.add(
                        "rating",
                        _at(at + timedelta(seconds=5)),
                        {
                            "case_seq": case_seq,
                            "staff_no": staff,
                            "staff_name": f"员工{staff}",
                            "window": log.window,
                            "ticket_no": None,
                            "case_no": case_no,
                            "item_code": item,
                            "item_name": f"事项{item}",
                            "satisfaction": s,
                            "input": "touch",
                        },
                    )
                made += 1
    for log in logs:
        log.flush()
    with store.engine.begin() as conn:
        for lo in range(0, len(phone_rows), 5000):
            conn.execute(insert(phone_ratings), phone_rows[lo : lo + 5000])
    return made


def _at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000+08:00")


def bare_aggregate(store: HubStore, first: str, last: str) -> None:
    with store.engine.connect() as conn:
        conn.execute(
            text(
                "SELECT window, count(*), sum(satisfaction >= 3) FROM ratings "
                "WHERE assess_time >= :a AND assess_time <= :b GROUP BY window"
            ),
            {"a": first + " 00:00:00", "b": last + " 23:59:59"},
        ).all()


def served(figures: FigureStore, by: str, first: str, last: str) -> None:
    stats_json(figures.snapshot(first, last, keep=KEEP.get(by, ())), by, first, last, m.Filters())


def measure_queries(store: HubStore, figures: FigureStore, samples: int) -> list[tuple[str, float, float]]:
    periods = {"month": ("2026-11-01", "2026-11-29"), "quarter": ("2026-09-01", "2026-11-29")}
    cases: dict[str, Callable[[], None]] = {}
    for name, (a, b) in periods.items():
        cases[f"bare SQL, {name}"] = lambda a=a, b=b: bare_aggregate(store, a, b)
        for by in m.DIMENSIONS:
            cases[f"stats by {by}, {name}"] = lambda by=by, a=a, b=b: served(figures, by, a, b)

    def timed(fn: Callable[[], None]) -> Callable[[], float]:
        def once() -> float:
            t = time.perf_counter()
            fn()
            return time.perf_counter() - t

        return once

    times = interleaved({name: timed(fn) for name, fn in cases.items()}, rounds=samples, warmup=1)
    return [(name, percentile(v, 50) * 1000, percentile(v, 95) * 1000) for name, v in times.items()]


def screen_latency(store: HubStore, tries: int) -> list[float] | None:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        return None
    if not Path(chromium).exists():
        return None
    import uvicorn
    from test_hub_support import free_port, wait_until

    from hub.app import create_app
    from hub.figures.screen import new_screen_key

    key = new_screen_key(store.engine)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(store),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            log_config=None,
            timeout_graceful_shutdown=1,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, what="hub start")
    log = Log(store, 99, str(uuid.uuid4()))  # a new log each run (--reuse keeps earlier runs' logs)
    now = datetime.now().astimezone()
    log.add("staff_signin", now.isoformat(timespec="milliseconds"), {"staff_no": "9901", "staff_name": "测"})
    log.flush()
    latencies = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=chromium,
                args=[
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                ],
            )
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            page.goto(f"http://127.0.0.1:{port}/screen?key={key}")
            page.wait_for_selector("#link.ok")
            for i in range(tries):
                before = int(page.inner_text("#t-rated"))
                at = datetime.now().astimezone().isoformat(timespec="milliseconds")
                started = time.perf_counter()
                case_seq = log.add(
                    "case_opened",
                    at,
                    {
                        "ticket_no": None,
                        "case_no": f"L{i}",
                        "item_code": None,
                        "item_name": None,
                        "source": "queue",
                    },
                )
                log.add(
                    "rating",
                    at,
                    {
                        "case_seq": case_seq,
                        "staff_no": "9901",
                        "staff_name": "测",
                        "window": "99",
                        "ticket_no": None,
                        "case_no": f"L{i}",
                        "item_code": None,
                        "item_name": None,
                        "satisfaction": 5,
                        "input": "touch",
                    },
                )
                log.flush()
                expect(page.locator("#t-rated")).to_have_text(str(before + 1), timeout=10000)
                latencies.append(time.perf_counter() - started)
            browser.close()
    finally:
        server.should_exit = True
        thread.join(10)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--screen-tries", type=int, default=10)
    parser.add_argument("--dir", type=Path)
    add_smoke_option(parser)
    parser.add_argument("--reuse", action="store_true", help="use the database already in --dir (no fill)")
    parser.add_argument("--no-verify", action="store_true", help="skip timing stats --verify")
    args = parser.parse_args()
    if args.smoke:
        args.ratings, args.samples, args.screen_tries = 5_000, 3, 2
    folder = args.dir or Path(tempfile.mkdtemp(prefix="bench-stats-"))
    store = HubStore(database_url(folder, None))
    t = time.perf_counter()
    made = 0 if args.reuse else fill(store, args.ratings)
    with store.engine.connect() as conn:
        events = conn.execute(text("SELECT count(*) FROM events")).scalar()
        made = (
            made
            or conn.execute(
                text("SELECT (SELECT count(*) FROM ratings) + (SELECT count(*) FROM phone_ratings)")
            ).scalar()
        )
    how = "reused" if args.reuse else f"filled in {time.perf_counter() - t:.0f} s (not measured)"
    print(f"{made:,} ratings ({events:,} events), {how}")
    figures = FigureStore(store.engine, today=lambda: date(2026, 11, 29))
    t = time.perf_counter()
    figures.refresh()
    print(f"first fold of the whole record into cells: {time.perf_counter() - t:.1f} s")
    with store.engine.connect() as conn:
        cells = conn.execute(text("SELECT count(*) FROM fig_cells")).scalar()
    print(f"cells: {cells:,} ({made / max(cells, 1):.1f} ratings a cell)\n")
    print(f"{'query':<28} {'p50 ms':>9} {'p95 ms':>9}")
    for name, p50, p95 in measure_queries(store, figures, args.samples):
        print(f"{name:<28} {p50:>9.1f} {p95:>9.1f}")
    if not args.no_verify:
        t = time.perf_counter()
        problems = figures.verify()
        print(
            f"\nstats --verify over the whole record: {time.perf_counter() - t:.1f} s, {len(problems)} differences"
        )
    latencies = screen_latency(store, args.screen_tries)
    if latencies is None:
        print("big screen: skipped (no playwright or chromium)")
    else:
        print(
            f"big screen, upload to page: p50 {statistics.median(latencies) * 1000:.0f} ms, "
            f"max {max(latencies) * 1000:.0f} ms over {len(latencies)} ratings (target < 2000 ms)"
        )
    store.close()


if __name__ == "__main__":
    main()

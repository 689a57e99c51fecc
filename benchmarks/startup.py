"""Kiosk start-up against a growing log: rebuilding the flow and this month's figures from the events.

    python benchmarks/startup.py [--ratings 12500] [--smoke]

The flow's state (who is signed in, paused, the called ticket, the open case, rated case numbers) and
the window's figures are rebuilt from the log at every start, so start-up grows with the log. This
prints the time to replay a log of ``--ratings`` full cycles (4 events each: case_opened, rating,
two ticket calls) beside the physical limit: a raw sqlite3 read of the same rows.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from core.store import EventLog
from kiosk.flow import HISTORY_TYPES, Flow
from kiosk.stats import WindowStats

RATING = {
    "staff_no": "0301",
    "staff_name": "王芳",
    "window": "03",
    "ticket_no": "A012",
    "item_code": "11370211MB0001234X",
    "item_name": "不动产登记",
    "satisfaction": 5,
    "input": "touch",
}


def fill(log: EventLog, ratings: int) -> None:
    log._conn.execute("PRAGMA synchronous=OFF")  # filling only; the measured reads do not depend on it
    log.append("staff_signin", {"staff_no": "0301", "staff_name": "王芳"})
    for i in range(ratings):
        case_no = f"3702112026{i:08d}"
        case = log.append(
            "case_opened",
            {
                "ticket_no": "A012",
                "case_no": case_no,
                "item_code": None,
                "item_name": "不动产登记",
                "source": "queue",
            },
        )
        log.append("rating", {**RATING, "case_seq": case["seq"], "case_no": case_no})
        log.append("ticket_called", {"ticket_no": "A013"})
        log.append("ticket_called", {"ticket_no": "A014"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", type=int, default=12_500)
    parser.add_argument("--smoke", action="store_true", help="200 ratings: checks it runs (.ci/run)")
    args = parser.parse_args()
    if args.smoke:
        args.ratings = 200
    with tempfile.TemporaryDirectory() as tmp, EventLog(Path(tmp) / "kiosk.db") as log:
        fill(log, args.ratings)
        events = log.head_seq()

        start = time.perf_counter()
        raw = sqlite3.connect(Path(tmp) / "kiosk.db")
        rows = raw.execute(
            "SELECT seq, id, type, at, payload, prev_hash, hash FROM events ORDER BY seq"
        ).fetchall()
        raw.close()
        raw_s = time.perf_counter() - start

        start = time.perf_counter()
        Flow(
            record=log.append,
            find_staff=lambda card: None,
            window="03",
            rating_timeout_s=60,
            thanks_s=3,
            now=time.monotonic(),
            history=log.events_after(0, types=HISTORY_TYPES),
        )
        flow_s = time.perf_counter() - start

        start = time.perf_counter()
        WindowStats("03").update_from(log)
        stats_s = time.perf_counter() - start
    assert len(rows) == events
    print(f"{events} events ({args.ratings} rated cases)\n")
    print(f"| {'step':<40} | {'seconds':>8} | {'µs/event':>8} |")
    print(f"|{'-' * 42}|{'-' * 10}|{'-' * 10}|")
    for name, seconds in (
        ("raw sqlite3 read of every row (limit)", raw_s),
        ("flow rebuilt from the log", flow_s),
        ("this month's figures from the log", stats_s),
    ):
        print(f"| {name:<40} | {seconds:8.3f} | {seconds / events * 1e6:8.1f} |")


if __name__ == "__main__":
    main()

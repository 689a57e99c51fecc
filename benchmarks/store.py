"""Event log append latency against the physical limit: a raw sqlite3 insert+commit, same pragmas, same disk.

    python benchmarks/store.py [--n 2000] [--warmup 200] [--dir PATH] [--smoke]

Prints p50/p99 latency and appends/s for EventLog.append (canonical JSON, SHA-256 chain, BEGIN
IMMEDIATE, WAL, synchronous=FULL) beside a single-row INSERT + COMMIT in plain sqlite3 with the same
journal mode and synchronous setting and a row of the same size, and the ratio. Both writers are open at
once on the same disk; after a warm-up their writes alternate. Target: append p99 within 2x of the raw
commit.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.measure import add_smoke_option, interleaved, percentile, ratio  # noqa: E402
from core.store import EventLog  # noqa: E402

PAYLOAD = {
    "case_seq": 41,
    "staff_no": "0371",
    "staff_name": "王晓燕",
    "window": "03",
    "ticket_no": "A012",
    "case_no": "370211202611280012",
    "item_code": "11370211MB0000001X",
    "item_name": "不动产登记",
    "satisfaction": 5,
    "input": "touch",
}


def timed(fn: Callable[[], object]) -> Callable[[], float]:
    def one() -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    return one


def raw_writer(conn: sqlite3.Connection) -> Callable[[], None]:
    """One row of the size of an event (the payload's JSON and two hashes) in its own transaction."""
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    body = json.dumps(PAYLOAD, ensure_ascii=False) + "0" * 128

    def one() -> None:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t (body) VALUES (?)", [body])
        conn.execute("COMMIT")

    return one


def row(name: str, samples: list[float]) -> tuple[str, float, float, float]:
    return name, percentile(samples, 50) * 1000, percentile(samples, 99) * 1000, len(samples) / sum(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="writes of each, measured")
    parser.add_argument("--warmup", type=int, default=200, help="writes of each before measuring")
    parser.add_argument("--dir", type=Path, help="folder on the disk to measure (default: a temp folder)")
    add_smoke_option(parser)
    args = parser.parse_args()
    if args.smoke:
        args.n, args.warmup = 50, 5
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp, EventLog(Path(tmp) / "log.db") as log:
        conn = sqlite3.connect(Path(tmp) / "raw.db", isolation_level=None)
        try:
            samples = interleaved(
                {"raw": timed(raw_writer(conn)), "append": timed(lambda: log.append("rating", PAYLOAD))},
                rounds=args.n,
                warmup=args.warmup,
            )
        finally:
            conn.close()
    raw = row("raw sqlite3 insert+commit", samples["raw"])
    ours = row("EventLog.append", samples["append"])
    print(f"{args.n} writes each after {args.warmup} of warm-up, alternating, WAL + synchronous=FULL\n")
    print(f"| {'writer':<26} | {'p50 ms':>7} | {'p99 ms':>7} | {'writes/s':>9} |")
    print(f"|{'-' * 28}|{'-' * 9}|{'-' * 9}|{'-' * 11}|")
    for name, p50, p99, rate in (raw, ours):
        print(f"| {name:<26} | {p50:7.3f} | {p99:7.3f} | {rate:9.0f} |")
    print(f"\nappend / raw: {ratio(samples['append'], samples['raw'])} (target p99 <= 2x)")


if __name__ == "__main__":
    main()

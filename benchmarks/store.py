"""Event log append latency against the physical limit: a raw sqlite3 insert+commit, same pragmas, same disk.

    python benchmarks/store.py [--n 2000] [--dir PATH]

Prints p50/p99 latency and appends/s for EventLog.append (canonical JSON, SHA-256 chain, BEGIN
IMMEDIATE, WAL, synchronous=FULL) beside a single-row INSERT + COMMIT in plain sqlite3 with the same
journal mode and synchronous setting, and the ratio. Target: append p99 within 2x of the raw commit.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from core.store import EventLog

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


def timed(fn, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def raw_commit(path: Path, n: int) -> list[float]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    body = str(PAYLOAD)

    def one() -> None:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t (body) VALUES (?)", [body])
        conn.execute("COMMIT")

    samples = timed(one, n)
    conn.close()
    return samples


def log_append(path: Path, n: int) -> list[float]:
    with EventLog(path) as log:
        return timed(lambda: log.append("rating", PAYLOAD), n)


def row(name: str, samples: list[float]) -> tuple[str, float, float, float]:
    q = statistics.quantiles(samples, n=100)
    return name, q[49] * 1000, q[98] * 1000, len(samples) / sum(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--dir", type=Path, help="folder on the disk to measure (default: a temp folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        raw = row("raw sqlite3 insert+commit", raw_commit(Path(tmp) / "raw.db", args.n))
        ours = row("EventLog.append", log_append(Path(tmp) / "log.db", args.n))
    print(f"{args.n} writes each, WAL + synchronous=FULL\n")
    print(f"| {'writer':<26} | {'p50 ms':>7} | {'p99 ms':>7} | {'writes/s':>9} |")
    print(f"|{'-' * 28}|{'-' * 9}|{'-' * 9}|{'-' * 11}|")
    for name, p50, p99, rate in (raw, ours):
        print(f"| {name:<26} | {p50:7.3f} | {p99:7.3f} | {rate:9.0f} |")
    print(f"\nappend / raw: p50 {ours[1] / raw[1]:.2f}x, p99 {ours[2] / raw[2]:.2f}x (target p99 <= 2x)")


if __name__ == "__main__":
    main()

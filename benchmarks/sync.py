"""Sync throughput and latency against the physical limit: the agent draining a backlog into a fresh hub,
beside raw signed POSTs of the same batches to the same hub process in the same run.

    python benchmarks/sync.py [--events 100000] [--samples 40] [--dir PATH]

1. A kiosk log of ``--events`` events (filled with synchronous=OFF: the fill is not measured).
2. Raw: every batch body the agent would send, built in advance, signed and POSTed in a loop under a
   second device id (a fresh chain on the hub). This is the hub's limit: HTTP + verify + store.
3. Agent: SyncAgent.drain() as `kiosk sync --once` runs it (local chain check, roster pull, reading,
   encoding, signing, cursor and status writes). Target: >= 2,000 events/s.
4. Press-to-hub latency: the agent runs forever; one event is appended (durable, as a press is) and
   the time until the hub's database holds it is measured. Target: p50 < 1 s.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.store import PAYLOAD as RATING  # noqa: E402
from core.store import EventLog  # noqa: E402
from hub.storage import HubStore, database_url  # noqa: E402
from sync.agent import SyncAgent  # noqa: E402
from sync.client import HubClient  # noqa: E402

DEVICE, RAW_DEVICE = "BENCH-AGENT", "BENCH-RAW"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_hub(data: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "commands.cli", "hub", "--data", str(data), "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/healthz", timeout=1).ok:
                return proc, url
        except requests.RequestException:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("hub did not start")


def fill(log: EventLog, count: int) -> None:
    log._conn.execute("PRAGMA synchronous=OFF")  # the fill is set-up, not what is measured
    for i in range(count):
        log.append("rating", {**RATING, "case_seq": i, "satisfaction": 1 + i % 5})
    log._conn.execute("PRAGMA synchronous=FULL")


def raw_posts(url: str, secret: bytes, log: EventLog) -> float:
    """Seconds to POST the agent's own batches, prepared in advance, under another device id."""
    preparer = SyncAgent(log, HubClient(url, RAW_DEVICE, secret))
    bodies = []
    while (batch := preparer.next_batch()) is not None:
        seqs, body = batch
        bodies.append(body)
        preparer.acked_seq = seqs[-1]
    client = HubClient(url, RAW_DEVICE, secret)
    start = time.perf_counter()
    for body in bodies:
        client.post_batch(body)
    return time.perf_counter() - start


def latency(url: str, secret: bytes, path: Path, hub_view: HubStore, samples: int) -> list[float]:
    stop = threading.Event()

    def agent_thread() -> None:
        with EventLog(path) as own:
            SyncAgent(own, HubClient(url, DEVICE, secret)).run(stop)

    thread = threading.Thread(target=agent_thread, daemon=True)
    thread.start()
    rng = random.Random(1)
    results = []
    with EventLog(path) as log:
        while hub_view.acked_seq(DEVICE, log.log_id) < log.head_seq():
            time.sleep(0.01)
        for _ in range(samples):
            time.sleep(rng.uniform(0.05, 0.4))  # presses arrive at random moments
            start = time.perf_counter()
            event = log.append("rating", RATING)
            while hub_view.acked_seq(DEVICE, log.log_id) < event["seq"]:
                time.sleep(0.002)
            results.append(time.perf_counter() - start)
    stop.set()
    thread.join(10)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--dir", type=Path, default=None, help="working folder (default: a temporary one)")
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench-sync-"))
    data = work / "hub"
    setup = HubStore(database_url(data, None))
    secret = bytes.fromhex(setup.add_device(DEVICE)[0])
    raw_secret = bytes.fromhex(setup.add_device(RAW_DEVICE)[0])
    setup.close()
    proc, url = start_hub(data)
    hub_view = HubStore(database_url(data, None))
    try:
        with EventLog(work / "kiosk.db") as log:
            t = time.perf_counter()
            fill(log, args.events)
            print(
                f"filled {args.events} events in {time.perf_counter() - t:.1f} s (not measured)",
                file=sys.stderr,
            )
            agent = SyncAgent(log, HubClient(url, DEVICE, secret))
            raw_s = raw_posts(url, raw_secret, log)
            start = time.perf_counter()
            assert agent.drain(), agent.summary()
            agent_s = time.perf_counter() - start
            assert hub_view.acked_seq(DEVICE, log.log_id) == args.events
        lat = latency(url, secret, work / "kiosk.db", hub_view, args.samples)
    finally:
        proc.kill()
        proc.wait()
        hub_view.close()

    raw_rate, agent_rate = args.events / raw_s, args.events / agent_s
    p50 = statistics.median(lat)
    p90 = statistics.quantiles(lat, n=10)[-1]
    print(f"\nsync benchmark: {args.events} events, batches of up to 1000 events / 512 KB, hub on SQLite\n")
    print(f"{'measure':<44} {'value':>14} {'limit / target':>22}")
    print(f"{'raw signed POSTs of the same batches':<44} {raw_rate:>10,.0f} ev/s {'(the hub limit)':>22}")
    print(f"{'agent drain (kiosk sync --once path)':<44} {agent_rate:>10,.0f} ev/s {'>= 2,000 ev/s':>22}")
    print(f"{'agent / raw':<44} {agent_rate / raw_rate:>13.0%} {'':>22}")
    print(f"{'press-to-hub latency p50':<44} {p50 * 1000:>11.0f} ms {'< 1,000 ms':>22}")
    print(f"{'press-to-hub latency p90':<44} {p90 * 1000:>11.0f} ms {'':>22}")
    ok = agent_rate >= 2000 and p50 < 1.0
    print(f"\n{'PASS' if ok else 'FAIL'}: drain {agent_rate:,.0f} ev/s, p50 {p50 * 1000:.0f} ms")


if __name__ == "__main__":
    main()

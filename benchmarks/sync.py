"""Sync throughput and latency against the physical limit: the agent draining a backlog into a fresh hub,
beside raw signed POSTs of the same batches to the same hub process in the same run.

    python benchmarks/sync.py [--events 100000] [--rounds 3] [--samples 40] [--dir PATH] [--smoke]

1. Each round, a new kiosk log of ``--events`` events (filled with synchronous=OFF: not measured).
2. Raw: every batch body the agent would send for that log, built in advance, signed and POSTed in a
   loop under a second device id (a fresh chain on the hub). This is the hub's limit: HTTP + verify +
   store.
3. Agent: SyncAgent.drain() of the same log as `kiosk sync --once` runs it (local chain check, roster
   pull, reading, encoding, signing, cursor and status writes). Target: >= 2,000 events/s.
   A warm-up round of a smaller log comes first and is not counted; raw and agent alternate which
   goes first from round to round, and the median round of each is reported.
4. Press-to-hub latency: the agent runs forever; one event is appended (durable, as a press is) and
   the time until the hub's database holds it is measured. Target: p50 < 1 s.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.measure import add_smoke_option, interleaved  # noqa: E402
from benchmarks.store import PAYLOAD as RATING  # noqa: E402
from commands.hubprocess import HubProcess  # noqa: E402
from core.store import EventLog  # noqa: E402
from hub.storage import HubStore, database_url  # noqa: E402
from sync.agent import SyncAgent  # noqa: E402
from sync.client import HubClient  # noqa: E402

DEVICE, RAW_DEVICE = "BENCH-AGENT", "BENCH-RAW"


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


class Rounds:
    """Each round a new log of ``events`` events; ``raw()`` and ``agent()`` each send all of it once and
    return events/s. Whichever runs first in a round fills the log; the other finds it ready."""

    def __init__(self, work: Path, url: str, secret: bytes, raw_secret: bytes, hub_view: HubStore):
        self.work, self.url, self.secret, self.raw_secret, self.hub_view = (
            work,
            url,
            secret,
            raw_secret,
            hub_view,
        )
        self.events = 0
        self.log: EventLog | None = None
        self.done: set[str] = set()

    def next_log(self, events: int) -> EventLog:
        if self.log is None or self.done == {"raw", "agent"}:
            if self.log is not None:
                self.log.close()
            self.log = EventLog(self.work / f"kiosk-{time.monotonic_ns()}.db")
            fill(self.log, events)
            self.events, self.done = events, set()
        return self.log

    def raw(self, events: int) -> float:
        log = self.next_log(events)
        seconds = raw_posts(self.url, self.raw_secret, log)
        self.done.add("raw")
        return self.events / seconds

    def agent(self, events: int) -> float:
        log = self.next_log(events)
        agent = SyncAgent(log, HubClient(self.url, DEVICE, self.secret))
        start = time.perf_counter()
        assert agent.drain(), agent.summary()
        seconds = time.perf_counter() - start
        assert self.hub_view.acked_seq(DEVICE, log.log_id) == self.events
        self.done.add("agent")
        return self.events / seconds

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds of raw and agent each")
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--dir", type=Path, default=None, help="working folder (default: a temporary one)")
    add_smoke_option(parser)
    args = parser.parse_args()
    if args.smoke:
        args.events, args.rounds, args.samples = 300, 1, 3
    with tempfile.TemporaryDirectory(prefix="bench-sync-", dir=args.dir) as tmp:
        rates, lat = run(Path(tmp), args)

    raw_rate, agent_rate = statistics.median(rates["raw"]), statistics.median(rates["agent"])
    p50 = statistics.median(lat)
    p90 = statistics.quantiles(lat, n=10)[-1] if len(lat) > 1 else lat[0]
    print(
        f"\nsync benchmark: {args.events} events a round, {args.rounds} rounds after a warm-up, raw and agent"
        " alternating; batches of up to 1000 events / 512 KB, hub on SQLite\n"
    )
    print(f"{'measure':<44} {'value':>14} {'limit / target':>22}")
    print(f"{'raw signed POSTs of the same batches':<44} {raw_rate:>10,.0f} ev/s {'(the hub limit)':>22}")
    print(f"{'agent drain (kiosk sync --once path)':<44} {agent_rate:>10,.0f} ev/s {'>= 2,000 ev/s':>22}")
    print(f"{'agent / raw':<44} {agent_rate / raw_rate:>13.0%} {'':>22}")
    print(f"{'press-to-hub latency p50':<44} {p50 * 1000:>11.0f} ms {'< 1,000 ms':>22}")
    print(f"{'press-to-hub latency p90':<44} {p90 * 1000:>11.0f} ms {'':>22}")
    ok = agent_rate >= 2000 and p50 < 1.0
    print(f"\n{'PASS' if ok else 'FAIL'}: drain {agent_rate:,.0f} ev/s, p50 {p50 * 1000:.0f} ms")


def run(work: Path, args: argparse.Namespace) -> tuple[dict[str, list[float]], list[float]]:
    data = work / "hub"
    setup = HubStore(database_url(data, None))
    secret = bytes.fromhex(setup.add_device(DEVICE)[0])
    raw_secret = bytes.fromhex(setup.add_device(RAW_DEVICE)[0])
    setup.close()
    hub = HubProcess(data).start()
    hub_view = HubStore(database_url(data, None))
    rounds = Rounds(work, hub.url, secret, raw_secret, hub_view)
    try:
        warmup_events = min(args.events, 2000)
        interleaved(
            {"raw": lambda: rounds.raw(warmup_events), "agent": lambda: rounds.agent(warmup_events)}, 1, 0
        )
        rates = interleaved(
            {"raw": lambda: rounds.raw(args.events), "agent": lambda: rounds.agent(args.events)},
            rounds=args.rounds,
            warmup=0,
        )
        lat = latency(hub.url, secret, work / "latency.db", hub_view, args.samples)
    finally:
        rounds.close()
        hub.kill()
        hub_view.close()
    return rates, lat


if __name__ == "__main__":
    main()

"""A fleet of simulated devices against a real `kiosk hub` process on a real PostgreSQL, beside the same
events inserted raw into the same PostgreSQL in the same run.

    python benchmarks/fleet.py [--db URL] [--devices 40] [--rounds 20] [--batch 1] [--smoke]

``--db`` (default ``$KIOSK_TEST_PG_URL``) is a scratch database: **its hub tables are dropped first**.
Each device (a thread, with its own event log and secret) does per round what a live agent does: one
signed batch of ``--batch`` new rating events, a heartbeat, a roster pull and a settings pull. Reported:
events stored per second, each request kind's p50/p99, and the raw ``executemany`` rate of the same
event rows into a copy of the events table (the physical floor). Phone-page ratings are not simulated
yet (benchmarks/phone.py measures that page alone).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from benchmarks.measure import add_smoke_option, percentile  # noqa: E402
from core.store import EventLog  # noqa: E402
from hub.schema import metadata  # noqa: E402
from hub.storage import HubStore  # noqa: E402
from sync.client import HubClient, batch_body, encode_event  # noqa: E402
from sync.heartbeat import heartbeat_path  # noqa: E402
from sync.settings import settings_path  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rating(i: int) -> dict:
    return {
        "case_seq": i,
        "staff_no": "0371",
        "staff_name": "王晓燕",
        "window": "03",
        "ticket_no": f"A{i:04d}",
        "case_no": f"37021120261128{i:06d}",
        "item_code": "11370211MB0000001X",
        "item_name": "不动产登记",
        "satisfaction": 5,
        "input": "touch",
    }


def fresh_database(url: str) -> None:
    store = HubStore(url)
    metadata.drop_all(store.engine)
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        conn.execute(text("DROP TABLE IF EXISTS bench_raw_events"))
    store.close()


def start_hub(url: str, data: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "KIOSK_HUB_DB": url}
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
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/healthz", timeout=1).ok:
                return proc, base
        except requests.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the hub did not start")


def run_device(base, device, secret, path: Path, rounds: int, batch: int, times, errors, raw_rows) -> None:
    """One device's rounds (its own thread: an SQLite connection stays in the thread that opened it);
    its events, as the hub's rows, into ``raw_rows`` at the end."""
    with EventLog(path) as log:
        _rounds(base, device, secret, log, rounds, batch, times, errors)
        raw_rows.extend(
            {
                **{k: e[k] for k in ("seq", "id", "type", "at", "prev_hash", "hash")},
                "payload": encode_payload(e["payload"])
                if not isinstance(e["payload"], str)
                else e["payload"],
                "device_id": device,
                "log_id": log.log_id,
                "received_at": "2026-11-29T00:00:00+00:00",
            }
            for e in log.events_after(0)
        )


def _rounds(base, device, secret, log: EventLog, rounds: int, batch: int, times, errors) -> None:
    client = HubClient(base, device, secret)
    sent = 0
    for r in range(rounds):
        for i in range(batch):
            log.append("rating", rating(r * batch + i + 1))
        encoded = [encode_event(e) for e in log.events_after(sent)]
        steps = (
            ("events", lambda encoded=encoded: client.post_batch(batch_body(device, log.log_id, encoded))),
            (
                "heartbeat",
                lambda: client._request(
                    "POST",
                    heartbeat_path(device),
                    f'{{"device_id":"{device}","window":"03","heartbeat_s":60,"pending":0}}'.encode(),
                    {"Content-Type": "application/json"},
                ),
            ),
            ("roster", lambda: client.get_roster(None)),
            ("settings", lambda: client._request("GET", settings_path(device))),
        )
        for kind, call in steps:
            start = time.perf_counter()
            try:
                answer = call()
            except Exception as e:  # counted, the run goes on
                errors.append(f"{kind}: {e}")
                continue
            times[kind].append(time.perf_counter() - start)
            if kind == "events":
                sent = answer


def raw_rate(url: str, rows: list[dict]) -> float:
    """Events per second of a plain executemany of the same rows into a copy of the events table."""
    store = HubStore(url)
    try:
        with store.engine.begin() as conn:
            conn.execute(text("CREATE TABLE bench_raw_events (LIKE events INCLUDING ALL)"))
        start = time.perf_counter()
        with store.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO bench_raw_events (device_id, log_id, seq, id, type, at, payload, prev_hash, "
                    "hash, received_at) VALUES (:device_id, :log_id, :seq, :id, :type, :at, :payload, "
                    ":prev_hash, :hash, :received_at)"
                ),
                rows,
            )
        elapsed = time.perf_counter() - start
        with store.engine.begin() as conn:
            conn.execute(text("DROP TABLE bench_raw_events"))
        return len(rows) / elapsed
    finally:
        store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=os.environ.get("KIOSK_TEST_PG_URL"), help="scratch PostgreSQL URL")
    parser.add_argument("--devices", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--batch", type=int, default=1, help="events per upload (live devices send 1)")
    add_smoke_option(parser)
    args = parser.parse_args()
    if not args.db or not args.db.startswith("postgresql"):
        print("fleet.py: --db (or $KIOSK_TEST_PG_URL): a scratch PostgreSQL URL is required", file=sys.stderr)
        return 2
    if args.smoke:
        args.devices, args.rounds = 4, 3
    fresh_database(args.db)
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        store = HubStore(args.db)
        secrets = {
            f"BENCH-{d:04d}": bytes.fromhex(store.add_device(f"BENCH-{d:04d}")[0])
            for d in range(args.devices)
        }
        store.close()
        proc, base = start_hub(args.db, data)
        times: dict[str, list[float]] = defaultdict(list)
        errors: list[str] = []
        rows: list[dict] = []
        try:
            threads = [
                threading.Thread(
                    target=run_device,
                    args=(
                        base,
                        device,
                        secret,
                        data / f"{device}.db",
                        args.rounds,
                        args.batch,
                        times,
                        errors,
                        rows,
                    ),
                )
                for device, secret in secrets.items()
            ]
            start = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - start
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        events = args.devices * args.rounds * args.batch
        if len(rows) != events:
            print(f"fleet.py: {len(rows)} events logged, {events} expected", file=sys.stderr)
            return 1
        raw = raw_rate(args.db, rows)
    print(f"{args.devices} devices × {args.rounds} rounds, batches of {args.batch}: {elapsed:.1f} s")
    print(
        f"hub: {events / elapsed:,.0f} events/s stored (with heartbeats and pulls between); raw executemany: {raw:,.0f}/s"
    )
    for kind, samples in sorted(times.items()):
        ms = [s * 1000 for s in samples]
        print(f"  {kind:9} n={len(ms):5}  p50 {percentile(ms, 50):7.1f} ms  p99 {percentile(ms, 99):7.1f} ms")
    busy = [e for e in errors if "HTTP 429" in e]  # the hub's back-pressure: an agent retries later
    failed = [e for e in errors if e not in busy]
    if busy:
        print(f"{len(busy)} requests answered 429 busy (retried in the next round)")
    if failed:
        print(f"{len(failed)} failed requests, e.g. {failed[0]}", file=sys.stderr)
        return 1
    return 0


RAW_COLUMNS = (
    "device_id",
    "log_id",
    "seq",
    "id",
    "type",
    "at",
    "payload",
    "prev_hash",
    "hash",
    "received_at",
)


def encode_payload(payload: dict) -> str:
    from core.events import canonical_json

    return canonical_json(payload).decode("utf-8")


if __name__ == "__main__":
    sys.exit(main())

"""A fleet of simulated devices against a real `kiosk hub` process on a real PostgreSQL, beside the physical
floors measured in the same run: the same event rows inserted raw into the same PostgreSQL, and a bare
FastAPI endpoint taking the same signed POST bodies.

    python benchmarks/fleet.py [--db URL] [--devices 40] [--rounds 20] [--batch 1] [--phone 0.1]
                               [--spread S] [--smoke]
    python benchmarks/fleet.py --steady SECONDS [--devices 5000] [--speed 1] [--phone 0.1]
    python benchmarks/fleet.py --backlog [--devices 1000] [--events-per-day 400] [--workers 64]

``--db`` (default ``$KIOSK_TEST_PG_URL``) is a scratch database: **its hub tables are dropped first**.

Rounds (the default): each device (a thread, with its own event log and secret) does per round what a
live agent does: one signed batch of ``--batch`` new rating events, a heartbeat, a roster pull and a
settings pull; a fraction ``--phone`` of its cases is rated on the phone page instead (GET and POST
``/q/{token}``, the token made with the device's secret as the kiosk makes it). ``--spread S`` starts the
devices at random moments within S seconds instead of together. Then, for batches of 1 (what live devices
send), uploads alone against the same uploads to a bare FastAPI endpoint (a tiny uvicorn app that reads
the body and answers 200) from ``--bare-threads`` devices at once, rounds interleaved. Reported: events stored per second, each request kind's
p50/p99, the raw ``executemany`` rate of the same event rows into a copy of the events table, and batch-1
uploads per second beside the bare endpoint's.

Steady (``--steady SECONDS``): ``--devices`` devices at a live fleet's rates for SECONDS of wall time
(times ``--speed``): each opens cases and rates them at ``--events-per-day`` events in an ``--day-hours``
working day (a case is case_opened then rating, a 差评 also its rating_detail; each event uploaded on its
own as the agent does), beats every 60 s and pulls its roster every 300 s (sync/agent.py's periods), each
device's clocks started at a random moment of its period like a fleet that has been running. Reported:
the offered and stored rates, each request kind's p50/p99, how late work started (the hub not keeping up
shows there first), whether everything was stored exactly once, and the raw rate of the same rows.

Backlog (``--backlog``): ``--devices`` devices each hold a day's events not yet sent (``--events-per-day``,
after an outage of the hub or the network) and all come back at once: ``--workers`` client threads drain
them as agents do (batches of up to 1,000 events, a 429 or 5xx answered by sending again a second
later). Reported: the time until every device's log is acknowledged (target: a day of 1,000 devices in
under 10 minutes), events/s, upload p50/p99, the 429s, and the exactly-once check.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import queue
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
import uvicorn
from fastapi import FastAPI, Request

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select, text  # noqa: E402

from benchmarks.measure import add_smoke_option, interleaved, percentile, wait_serving  # noqa: E402
from core.events import ZERO_HASH, canonical_json, event_hash  # noqa: E402
from core.qrtoken import issue_token  # noqa: E402
from core.signing import request_headers  # noqa: E402
from hub.schema import devices, events, metadata, phone_ratings, ratings  # noqa: E402
from hub.signature_policy import signature_policy  # noqa: E402
from hub.storage import HubStore  # noqa: E402
from sync.client import ChainConflict, HubClient, HubUnavailable, batch_body, encode_event  # noqa: E402
from sync.heartbeat import heartbeat_path  # noqa: E402
from sync.settings import settings_path  # noqa: E402

HEARTBEAT_S = 60.0  # sync/agent.py HEARTBEAT_S
ROSTER_S = 300.0  # sync/agent.py ROSTER_INTERVAL_S
BAD_EVERY = 20  # one case in 20 is a 差评 (with its rating_detail)
EVENTS_PATH = "/api/v1/events"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class MemoryLog:
    """A kiosk's event log kept in memory: events made exactly as core.store.EventLog makes them."""

    def __init__(self) -> None:
        self.log_id = str(uuid.uuid4())
        self.events: list[dict[str, Any]] = []
        self.appended_at: list[float] = []  # perf_counter of each append, for the time to acknowledgement

    def append(self, type_: str, payload: dict[str, Any]) -> dict[str, Any]:
        event = {
            "log_id": self.log_id,
            "seq": len(self.events) + 1,
            "id": str(uuid.uuid4()),
            "type": type_,
            "at": now_iso(),
            "payload": payload,
            "prev_hash": self.events[-1]["hash"] if self.events else ZERO_HASH,
        }
        event["hash"] = event_hash(event)
        self.events.append(event)
        self.appended_at.append(time.perf_counter())
        return event

    def head(self) -> int:
        return len(self.events)


class SimDevice:
    """One simulated kiosk and its agent's state."""

    def __init__(self, device_id: str, secret: bytes, rng: random.Random):
        self.id, self.secret, self.rng = device_id, secret, rng
        self.log = MemoryLog()
        self.acked = 0
        self.uploading = False
        self.cases = 0
        self.open_case: tuple[int, str] | None = None  # (seq of case_opened, case number) awaiting its rating
        self.roster_etag: str | None = None
        self.settings_pulled = False
        self.lock = threading.Lock()
        self.terminal_ratings = self.phone_ratings = 0

    def next_case_event(self, phone_share: float) -> str | None:
        """Append the next event of its cases (open one, or rate the open one); "phone" when this case is
        rated on the phone page instead (nothing appended then), else None."""
        with self.lock:
            if self.open_case is None:
                self.cases += 1
                case_no = f"{self.id[-6:]}{self.cases:08d}"
                event = self.log.append(
                    "case_opened",
                    {
                        "ticket_no": f"A{self.cases:04d}",
                        "case_no": case_no,
                        "item_code": "11370211MB0000001X",
                        "item_name": "不动产登记",
                        "source": "scanner",
                    },
                )
                self.open_case = (event["seq"], case_no)
                return None
            case_seq, case_no = self.open_case
            self.open_case = None
            if self.rng.random() < phone_share:
                self.phone_ratings += 1
                return "phone"
            bad = self.cases % BAD_EVERY == 0
            rated = self.log.append("rating", rating(self.cases, case_seq, case_no, 2 if bad else 5))
            if bad:
                self.log.append(
                    "rating_detail", {"rating_seq": rated["seq"], "reasons": ["201"], "contact_sealed": None}
                )
            self.terminal_ratings += 1
            return None

    def phone_token(self, case_no: str) -> str:
        return issue_token(
            self.secret,
            device_id=self.id,
            window="03",
            staff_no="0371",
            case_no=case_no,
            item_code=None,
            issued_at=int(time.time()),
            ttl_s=600,
        )


def rating(i: int, case_seq: int = 0, case_no: str | None = None, satisfaction: int = 5) -> dict:
    return {
        "case_seq": case_seq or i,
        "staff_no": "0371",
        "staff_name": "王晓燕",
        "window": "03",
        "ticket_no": f"A{i:04d}",
        "case_no": case_no or f"37021120261128{i:06d}",
        "item_code": "11370211MB0000001X",
        "item_name": "不动产登记",
        "satisfaction": satisfaction,
        "input": "touch",
    }


# --- requests, as the agent and a phone send them ------------------------------------------------------


def upload(session: requests.Session, base: str, device: SimDevice, limit: int = 1000) -> tuple[int, float]:
    """Send the device's events after its acked seq (at most ``limit``); (events stored, oldest append).
    HubUnavailable (429, 5xx) propagates: the caller tries again later."""
    with device.lock:
        start = device.acked
        todo = device.log.events[start : start + limit]
        oldest = device.log.appended_at[start] if todo else time.perf_counter()
    if not todo:
        return 0, oldest
    client = HubClient(base, device.id, device.secret, session=session)
    body = batch_body(device.id, device.log.log_id, [encode_event(e) for e in todo])
    try:
        acked = client.post_batch(body)
    except ChainConflict as e:  # a lost answer to an earlier upload: the hub says where it is
        acked = e.expected_seq - 1
    with device.lock:
        stored, device.acked = max(0, acked - device.acked), max(device.acked, acked)
    return stored, oldest


def heartbeat(session: requests.Session, base: str, device: SimDevice) -> None:
    client = HubClient(base, device.id, device.secret, session=session)
    report = {
        "device_id": device.id,
        "window": "03",
        "heartbeat_s": int(HEARTBEAT_S),
        "pending": device.log.head() - device.acked,
        "version": "0.2.0",
    }
    client._request(
        "POST",
        heartbeat_path(device.id),
        json.dumps(report, separators=(",", ":")).encode(),
        {"Content-Type": "application/json"},
    )


def pull_roster(session: requests.Session, base: str, device: SimDevice) -> None:
    client = HubClient(base, device.id, device.secret, session=session)
    update = client.get_roster(device.roster_etag)
    if update is not None:
        device.roster_etag = update.etag


def pull_settings(session: requests.Session, base: str, device: SimDevice) -> None:
    HubClient(base, device.id, device.secret, session=session)._request("GET", settings_path(device.id))


def phone_rating(session: requests.Session, base: str, device: SimDevice, case_no: str, bad: bool) -> None:
    """What a person does on the phone page: open the form, send a rating (303 once stored)."""
    token = device.phone_token(case_no)
    form = session.get(f"{base}/q/{token}", timeout=30)
    if form.status_code != 200:
        raise RuntimeError(f"phone form HTTP {form.status_code}")
    data = {"satisfaction": "2", "reason": "201"} if bad else {"satisfaction": "5"}
    answer = session.post(f"{base}/q/{token}", data=data, allow_redirects=False, timeout=30)
    if answer.status_code != 303:
        raise RuntimeError(f"phone rating HTTP {answer.status_code}")


# --- processes: the hub, the bare endpoint, the scratch database ------------------------------------------


def fresh_database(url: str) -> None:
    store = HubStore(url)
    metadata.drop_all(store.engine)
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        conn.execute(text("DROP TABLE IF EXISTS bench_raw_events"))
    store.close()


def register(url: str, count: int, seed: int) -> list[SimDevice]:
    """``count`` devices registered at once (as `kiosk hub device add` registers each: v2 signatures)."""
    rng = random.Random(seed)
    store = HubStore(url)
    try:
        made = [(f"BENCH-{d:05d}", rng.randbytes(32)) for d in range(count)]
        at = now_iso()
        with store.engine.begin() as conn:
            conn.execute(
                insert(devices),
                [
                    {"id": d, "secret": s.hex(), "area_code": "", "dept_code": "", "created_at": at}
                    for d, s in made
                ],
            )
            conn.execute(
                insert(signature_policy),
                [{"device_id": d, "v1_allowed": False, "changed_at": at} for d, _ in made],
            )
    finally:
        store.close()
    return [SimDevice(d, s, random.Random(rng.random())) for d, s in made]


def start_hub(url: str, data: Path, workers: int = 1) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "KIOSK_HUB_DB": url}
    command = [sys.executable, "-m", "commands.cli", "hub", "--key-file", str(data / "contact.key")]
    proc = subprocess.Popen(
        [*command, "--port", str(port), "--workers", str(workers)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    wait_serving(proc, base, "the hub")
    return proc, base


def start_bare() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-bare", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    wait_serving(proc, base, "the bare endpoint")
    return proc, base


def serve_bare(port: int) -> None:
    """The floor of an upload: FastAPI on uvicorn as the hub runs it, reading the body, answering 200."""
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.post(EVENTS_PATH)
    async def post_events(request: Request) -> dict[str, int]:
        await request.body()
        return {"acked_seq": 0}

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        access_log=False,
        log_config=None,
        limit_concurrency=2048,
        timeout_keep_alive=5,
    )


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def raw_rows(fleet: list[SimDevice]) -> list[dict]:
    return [
        {
            **{k: e[k] for k in ("seq", "id", "type", "at", "prev_hash", "hash")},
            "payload": canonical_json(e["payload"]).decode("utf-8"),
            "device_id": d.id,
            "log_id": d.log.log_id,
            "received_at": "2026-11-30T00:00:00+00:00",
        }
        for d in fleet
        for e in d.log.events
    ]


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


def stored_counts(url: str) -> tuple[int, int, int]:
    """(events, ratings, phone ratings) the hub holds."""
    store = HubStore(url)
    try:
        with store.engine.connect() as conn:
            return tuple(  # type: ignore[return-value]
                conn.execute(select(func.count()).select_from(t)).scalar() or 0
                for t in (events, ratings, phone_ratings)
            )
    finally:
        store.close()


def check_exactly_once(url: str, fleet: list[SimDevice]) -> str | None:
    """Why the hub's tables disagree with what the devices wrote and were acked for; None if they agree."""
    held = stored_counts(url)
    wanted = (
        sum(d.acked for d in fleet),
        sum(d.terminal_ratings for d in fleet),
        sum(d.phone_ratings for d in fleet),
    )
    unacked = sum(d.log.head() - d.acked for d in fleet)
    if unacked:
        return f"{unacked} events never acknowledged"
    if held != wanted:
        return f"hub holds (events, ratings, phone ratings) {held}, the devices wrote {wanted}"
    return None


def report_times(times: dict[str, list[float]]) -> None:
    for kind, samples in sorted(times.items()):
        ms = [s * 1000 for s in samples]
        print(f"  {kind:9} n={len(ms):6}  p50 {percentile(ms, 50):7.1f} ms  p99 {percentile(ms, 99):7.1f} ms")


# --- rounds ---------------------------------------------------------------------------------------------


def run_device(base: str, device: SimDevice, args, times, errors) -> None:
    """One device's rounds, on its own thread."""
    session = requests.Session()
    time.sleep(device.rng.uniform(0, args.spread))
    for r in range(args.rounds):
        phone_cases = []
        for _ in range(args.batch):
            device.next_case_event(0.0)  # open
            case_no = device.open_case[1] if device.open_case else ""
            if device.next_case_event(args.phone) == "phone":
                phone_cases.append(case_no)
        steps = [
            ("events", lambda: upload(session, base, device)),
            ("heartbeat", lambda: heartbeat(session, base, device)),
            ("roster", lambda: pull_roster(session, base, device)),
            ("settings", lambda: pull_settings(session, base, device)),
        ]
        steps += [
            ("phone", lambda c=c, r=r: phone_rating(session, base, device, c, bad=r % BAD_EVERY == 0))
            for c in phone_cases
        ]
        for kind, call in steps:
            start = time.perf_counter()
            try:
                call()
            except Exception as e:  # counted, the run goes on
                errors.append(f"{kind}: {e}")
                continue
            times[kind].append(time.perf_counter() - start)
    for _ in range(3):  # what a 429 left: the agent sends it later
        try:
            upload(session, base, device)
        except HubUnavailable:
            time.sleep(1)


def batch1_against_bare(hub: str, bare: str, fleet: list[SimDevice], rounds: int, per_round: int):
    """Batch-1 uploads per second of the hub and of the bare endpoint: one thread per device, each sending
    its next event in a signed body, with the same plain client for both (the answer's signature is not
    checked: that is the device's cost, not the server's), rounds interleaved."""
    sessions = {d.id: requests.Session() for d in fleet}

    def post(base: str, device: SimDevice, batch: list[dict[str, Any]]) -> int:
        body = batch_body(device.id, device.log.log_id, [encode_event(e) for e in batch])
        headers = request_headers(device.id, device.secret, "POST", EVENTS_PATH, body, int(time.time()))
        answer = sessions[device.id].post(
            base + EVENTS_PATH, data=body, headers={**headers, "Content-Type": "application/json"}, timeout=30
        )
        answer.raise_for_status()
        return answer.json()["acked_seq"]

    def hub_round() -> float:
        def one(device: SimDevice) -> None:
            for _ in range(per_round):
                device.next_case_event(0.0)  # one event (a 差评's rating two: its detail too)
                device.acked = post(hub, device, device.log.events[device.acked :])

        return per_round * len(fleet) / _together(fleet, one)

    def bare_round() -> float:
        def one(device: SimDevice) -> None:
            for _ in range(per_round):
                post(bare, device, device.log.events[-1:])

        return per_round * len(fleet) / _together(fleet, one)

    for device in fleet:  # whatever the rounds left unacknowledged first, so each upload is one event
        upload(sessions[device.id], hub, device)
    return interleaved({"hub": hub_round, "bare": bare_round}, rounds, warmup=1)


def _together(fleet: list[SimDevice], work) -> float:
    """Seconds for every device's thread to do ``work``, started together; the first failure raised."""
    failures: list[BaseException] = []

    def run(device: SimDevice) -> None:
        try:
            work(device)
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=run, args=(d,)) for d in fleet]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]
    return time.perf_counter() - start


def rounds_main(args) -> int:
    fleet = register(args.db, args.devices, seed=1)
    with tempfile.TemporaryDirectory() as folder:
        proc, base = start_hub(args.db, Path(folder), args.hub_workers)
        bare_proc, bare = start_bare()
        times: dict[str, list[float]] = defaultdict(list)
        errors: list[str] = []
        try:
            elapsed = _together(fleet, lambda d: run_device(base, d, args, times, errors))
            stored = sum(d.acked for d in fleet)
            problem = check_exactly_once(args.db, fleet)
            senders = fleet[: args.bare_threads]
            rates = batch1_against_bare(base, bare, senders, args.bare_rounds, args.bare_posts)
        finally:
            stop(proc)
            stop(bare_proc)
    raw = raw_rate(args.db, raw_rows(fleet))
    phone = sum(d.phone_ratings for d in fleet)
    print(
        f"{args.devices} devices × {args.rounds} rounds, batches of {args.batch} ratings"
        f"{f', {args.phone:.0%} rated by phone' if args.phone else ''}"
        f"{f', started within {args.spread:g} s' if args.spread else ', started together'}: {elapsed:.1f} s"
    )
    print(
        f"hub: {stored / elapsed:,.0f} events/s stored (with heartbeats, pulls and {phone} phone ratings "
        f"between); raw executemany of the same rows: {raw:,.0f}/s"
    )
    report_times(times)
    hub_rate, bare_rate = percentile(rates["hub"], 50), percentile(rates["bare"], 50)
    print(
        f"batch-1 uploads alone, {len(senders)} threads: hub {hub_rate:,.0f}/s, bare FastAPI endpoint "
        f"{bare_rate:,.0f}/s ({hub_rate / bare_rate:.0%} of it; medians of {args.bare_rounds} interleaved rounds)"
    )
    return _verdict(errors, problem)


def _verdict(errors: list[str], problem: str | None) -> int:
    busy = [e for e in errors if "HTTP 429" in e]  # the hub's back-pressure: an agent retries later
    failed = [e for e in errors if e not in busy]
    if busy:
        print(f"{len(busy)} requests answered 429 busy (sent again later)")
    if problem:
        print(f"NOT exactly once: {problem}", file=sys.stderr)
        return 1
    print("every event acknowledged is stored once; every rating and phone rating once")
    if failed:
        print(f"{len(failed)} failed requests, e.g. {failed[0]}", file=sys.stderr)
        return 1
    return 0


# --- steady load ----------------------------------------------------------------------------------------


class Steady:
    """A fleet at its live rates: a scheduler thread hands due work to a pool of worker threads."""

    def __init__(self, base: str, fleet: list[SimDevice], args):
        self.base, self.fleet, self.args = base, fleet, args
        self.speed = args.speed
        self.event_gap_s = args.day_hours * 3600 / args.events_per_day  # mean time between a device's events
        self.heap: list[tuple[float, int, int, str]] = []
        self.heap_lock = threading.Lock()
        self.counter = 0
        self.work: queue.Queue = queue.Queue()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.late: list[float] = []  # how long after its due time each request started
        self.acked_after: list[float] = []  # from an event's append to its acknowledgement
        self.errors: list[str] = []
        self.busy = 0
        self.stopping = False

    def at(self, due: float, index: int, kind: str) -> None:
        with self.heap_lock:
            self.counter += 1
            heapq.heappush(self.heap, (due, self.counter, index, kind))

    def run(self, seconds: float) -> float:
        start = time.perf_counter()
        for i, d in enumerate(
            self.fleet
        ):  # a fleet that has been running: every clock somewhere in its period
            self.at(start + d.rng.uniform(0, HEARTBEAT_S) / self.speed, i, "heartbeat")
            self.at(start + d.rng.uniform(0, ROSTER_S) / self.speed, i, "roster")
            self.at(start + d.rng.expovariate(1 / self.event_gap_s) / self.speed, i, "case")
        workers = [threading.Thread(target=self._worker, daemon=True) for _ in range(self.args.workers)]
        for w in workers:
            w.start()
        end = start + seconds
        while True:
            now = time.perf_counter()
            with self.heap_lock:
                due = self.heap[0][0] if self.heap else end
                item = heapq.heappop(self.heap) if due <= now else None
            if item is None:
                if now >= end:
                    break
                time.sleep(min(0.005, max(0.0, due - now)))
                continue
            due, _, i, kind = item
            if kind == "case":
                self._case(due, i)
            else:
                self.work.put((due, i, kind))
        self.stopping = True  # no new cases, beats or pulls; what is pending is still uploaded
        drained_at = time.perf_counter()
        deadline = drained_at + 60
        while time.perf_counter() < deadline and (
            any(d.acked < d.log.head() for d in self.fleet) or not self.work.empty() or self.busy
        ):
            with self.heap_lock:
                retries = [h for h in self.heap if h[3] == "upload"]
                self.heap = [h for h in self.heap if h[3] != "upload"]
            for due, _, i, kind in retries:
                self.work.put((due, i, kind))
            time.sleep(0.05)
        for _ in workers:
            self.work.put(None)
        for w in workers:
            w.join(timeout=30)
        return time.perf_counter() - drained_at

    def _case(self, due: float, i: int) -> None:
        device = self.fleet[i]
        opening = device.open_case is None
        case_no = device.open_case[1] if device.open_case else ""
        if device.next_case_event(self.args.phone) == "phone":
            self.work.put((due, i, f"phone:{case_no}"))
        elif not device.uploading:
            device.uploading = True
            self.work.put((due, i, "upload"))
        gap = device.rng.expovariate(1 / self.event_gap_s) if opening else device.rng.uniform(0.5, 1.5) * 30
        self.at(due + gap / self.speed, i, "case")

    def _worker(self) -> None:
        session = requests.Session()
        while (item := self.work.get()) is not None:
            due, i, kind = item
            device = self.fleet[i]
            started = time.perf_counter()
            self.late.append(started - due)
            self.busy += 1
            try:
                self._do(session, device, i, kind, started)
            except HubUnavailable as e:
                self.errors.append(f"{kind}: {e}")
                if kind == "upload":
                    self.at(time.perf_counter() + 1, i, "upload")
            except Exception as e:  # counted, the run goes on
                self.errors.append(f"{kind}: {e}")
                if kind == "upload":
                    device.uploading = False
            finally:
                self.busy -= 1

    def _do(self, session: requests.Session, device: SimDevice, i: int, kind: str, started: float) -> None:
        if kind == "upload":
            stored, oldest = upload(session, self.base, device)
            done = time.perf_counter()
            self.times["events"].append(done - started)
            if stored:
                self.acked_after.append(done - oldest)
            with device.lock:
                more = device.acked < device.log.head()
                device.uploading = more
            if more:
                self.work.put((done, i, "upload"))
            return
        if kind.startswith("phone:"):
            phone_rating(
                session, self.base, device, kind.partition(":")[2], bad=device.cases % BAD_EVERY == 0
            )
            self.times["phone"].append(time.perf_counter() - started)
            return
        if kind == "heartbeat":
            heartbeat(session, self.base, device)
            self.times["heartbeat"].append(time.perf_counter() - started)
            if not device.settings_pulled:  # the first answer names settings it has not got: fetch them
                device.settings_pulled = True
                asked = time.perf_counter()
                pull_settings(session, self.base, device)
                self.times["settings"].append(time.perf_counter() - asked)
            period = HEARTBEAT_S
        else:
            pull_roster(session, self.base, device)
            self.times["roster"].append(time.perf_counter() - started)
            period = ROSTER_S
        if not self.stopping:
            self.at(started + period / self.speed, i, kind)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time so far of a process and its live children (the hub's --workers; Linux)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(stat.parent.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def steady_main(args) -> int:
    fleet = register(args.db, args.devices, seed=2)
    for device in fleet:  # a fleet that has been running holds its settings already
        device.settings_pulled = True
    with tempfile.TemporaryDirectory() as folder:
        proc, base = start_hub(args.db, Path(folder), args.hub_workers)
        steady = Steady(base, fleet, args)
        try:
            hub_cpu = cpu_seconds(proc.pid)
            drain = steady.run(args.steady)
            hub_cpu = cpu_seconds(proc.pid) - hub_cpu
            problem = check_exactly_once(args.db, fleet)
        finally:
            stop(proc)
    rows = raw_rows(fleet)
    raw = raw_rate(args.db, rows)
    seconds = args.steady
    offered = args.devices * args.events_per_day / (args.day_hours * 3600) * args.speed
    requests_done = sum(len(v) for v in steady.times.values())
    print(
        f"steady load: {args.devices} devices for {seconds:g} s at {args.speed:g}× their live rates "
        f"({args.events_per_day} events in a {args.day_hours:g} h day, heartbeat {HEARTBEAT_S:g} s, roster "
        f"{ROSTER_S:g} s{f', {args.phone:.0%} of cases rated by phone' if args.phone else ''})"
    )
    print(
        f"offered {offered:,.1f} events/s; stored {len(rows) / seconds:,.1f} events/s, "
        f"{requests_done / seconds:,.1f} requests/s in all; "
        f"raw executemany of the same rows: {raw:,.0f}/s; the rest uploaded {drain:.1f} s after the load stopped"
    )
    report_times(steady.times)
    print(f"  the hub (all its processes) used {hub_cpu / (seconds + drain):.0%} of a core")
    late = [s * 1000 for s in steady.late]
    acked = [s * 1000 for s in steady.acked_after]
    print(
        f"  work started late by p50 {percentile(late, 50):.1f} ms, p99 {percentile(late, 99):.1f} ms, "
        f"max {max(late):.0f} ms; an event acknowledged p50 {percentile(acked, 50):.1f} ms, "
        f"p99 {percentile(acked, 99):.1f} ms after it was written"
    )
    p99 = percentile([s * 1000 for s in steady.times["events"]], 99)
    keeps_up = percentile(late, 99) < 1000 and drain < 5
    print(
        f"the hub {'keeps up' if keeps_up else 'does NOT keep up'}; ingest p99 {p99:.1f} ms "
        f"(target < 200 ms: {'met' if p99 < 200 else 'missed'})"
    )
    return _verdict(steady.errors, problem)


def backlog_main(args) -> int:
    fleet = register(args.db, args.devices, seed=3)
    for device in fleet:
        while device.log.head() < args.events_per_day:
            device.next_case_event(0.0)
    total = sum(d.log.head() for d in fleet)
    times: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    waiting = list(reversed(fleet))
    taken = threading.Lock()

    def drain() -> None:
        session = requests.Session()
        while True:
            with taken:
                if not waiting:
                    return
                device = waiting.pop()
            while device.acked < device.log.head():
                start = time.perf_counter()
                try:
                    upload(session, base, device)
                except HubUnavailable as e:  # the agent's answer to back-pressure: again, a moment later
                    errors.append(f"events: {e}")
                    time.sleep(1)
                    continue
                times["events"].append(time.perf_counter() - start)

    with tempfile.TemporaryDirectory() as folder:
        proc, base = start_hub(args.db, Path(folder), args.hub_workers)
        try:
            hub_cpu = cpu_seconds(proc.pid)
            started = time.perf_counter()
            threads = [threading.Thread(target=drain) for _ in range(args.workers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - started
            hub_cpu = cpu_seconds(proc.pid) - hub_cpu
            problem = check_exactly_once(args.db, fleet)
        finally:
            stop(proc)
    print(
        f"backlog: {args.devices} devices × {args.events_per_day} events ({total:,} events) drained by "
        f"{args.workers} agents at a time in {elapsed:.1f} s ({total / elapsed:,.0f} events/s)"
    )
    if total >= 400_000:  # a day of 1,000 devices or more
        print(f"  target: a day of 1,000 devices in under 600 s: {'met' if elapsed < 600 else 'missed'}")
    report_times(times)
    print(f"  the hub (all its processes) used {hub_cpu / elapsed:.0%} of a core")
    return _verdict(errors, problem)


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-bare":
        serve_bare(int(sys.argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=os.environ.get("KIOSK_TEST_PG_URL"), help="scratch PostgreSQL URL")
    parser.add_argument("--devices", type=int, default=None, help="40 in rounds, 5000 in --steady")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--batch", type=int, default=1, help="ratings per upload (live devices send 1)")
    parser.add_argument("--phone", type=float, default=0.1, help="share of cases rated on the phone page")
    parser.add_argument("--spread", type=float, default=0.0, help="start devices within this many seconds")
    parser.add_argument("--bare-rounds", type=int, default=5)
    parser.add_argument(
        "--bare-threads",
        type=int,
        default=16,
        help="devices sending batch-1 uploads (the hub's 16 in flight)",
    )
    parser.add_argument("--bare-posts", type=int, default=20, help="uploads per device per round")
    parser.add_argument("--steady", type=float, default=None, help="seconds of steady load")
    parser.add_argument("--speed", type=float, default=1.0, help="times the live rates (steady)")
    parser.add_argument("--events-per-day", type=int, default=400)
    parser.add_argument("--day-hours", type=float, default=8.0, help="the working day the events fall in")
    parser.add_argument("--workers", type=int, default=64, help="client threads (steady, backlog)")
    parser.add_argument("--backlog", action="store_true", help="every device's day of events sent at once")
    parser.add_argument("--hub-workers", type=int, default=1, help="kiosk hub --workers N (hub processes)")
    add_smoke_option(parser)
    args = parser.parse_args()
    if not args.db or not args.db.startswith("postgresql"):
        print("fleet.py: --db (or $KIOSK_TEST_PG_URL): a scratch PostgreSQL URL is required", file=sys.stderr)
        return 2
    if args.devices is None:
        args.devices = 5000 if args.steady else 1000 if args.backlog else 40
    if args.smoke:
        args.devices, args.rounds, args.bare_rounds, args.bare_posts = 4, 3, 1, 3
        if args.steady:
            args.devices, args.steady, args.speed = 20, 3.0, 20.0
        if args.backlog:
            args.devices, args.events_per_day, args.workers = 8, 50, 4
    fresh_database(args.db)
    if args.backlog:
        return backlog_main(args)
    return steady_main(args) if args.steady else rounds_main(args)


if __name__ == "__main__":
    sys.exit(main())

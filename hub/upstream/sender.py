"""The upward sender: drains the outbox in batches to the configured target, in the hub process (a
background thread) or from ``kiosk hub upstream send``.

Each round leases the oldest due records (``outbox.claim``: row locks with SKIP LOCKED on PostgreSQL,
so several hub processes never send one record at once), maps them with the profile's table, sends one
request, and records each record's outcome. A record that cannot be mapped waits as needs_linkage; a
window 差评 whose reasons have not arrived waits for them. A failure (transport, 5xx, 429, an answer the
profile does not expect) is logged with a bounded excerpt and retried with backoff and jitter, never
sooner than a Retry-After; repeated failures open the circuit (logged), which then lets one probe batch
through at a time. Nothing here crashes the hub: a round that meets an error logs it and waits.
"""

from __future__ import annotations

import http.client
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, create_engine, event

from . import outbox, rules
from .profiles import Failure, NeedsLinkage, Outcome, Profile, excerpt
from .signing import Signer

log = logging.getLogger("hub.upstream")

MAX_ANSWER_BYTES = 1024 * 1024
DEFAULT_TIMEOUT_S = 10.0
IDLE_POLL_S = 1.0


@dataclass(frozen=True)
class Target:
    """Where and how to report: the ``[upstream]`` section of the hub's configuration, checked."""

    profile: Profile
    url: str
    app: str
    signer: Signer
    timeout_s: float = DEFAULT_TIMEOUT_S


class HttpPoster:
    """POSTs to one URL over a kept-alive connection (http.client: the hub needs no HTTP library)."""

    def __init__(self, url: str, timeout_s: float):
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname or "", parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._timeout_s = timeout_s
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._https:
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout_s, context=ssl.create_default_context()
                )
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout_s)
        return self._conn

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """(status, lower-case headers, body); OSError or http.client.HTTPException on transport errors."""
        conn = self._connection()
        try:
            conn.request("POST", self._path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read(MAX_ANSWER_BYTES + 1)
            if len(data) > MAX_ANSWER_BYTES:
                raise http.client.HTTPException(f"answer over {MAX_ANSWER_BYTES} bytes")
            answer_headers = {k.lower(): v for k, v in response.getheaders()}
            if response.will_close:
                self.close()
            return response.status, answer_headers, data
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _sqlite_progress_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def progress_engine(engine: Engine) -> Engine:
    """The engine the sender records its progress with. The outbox's leases and outcomes need not survive
    a power cut the way a rating must: one lost, the record is sent again and the target, keyed by
    (projectNo, assessNumber), holds it once. So on SQLite the sender's own connections commit without
    waiting for the disk (synchronous=NORMAL, WAL: never corrupt, an application crash loses nothing);
    on PostgreSQL ``outbox.claim`` and ``outbox.settle`` turn synchronous_commit off per transaction.
    Ratings and people's actions keep the store's fully durable commits."""
    if engine.dialect.name != "sqlite":
        return engine
    progress = create_engine(engine.url, pool_pre_ping=True)
    event.listen(progress, "connect", _sqlite_progress_pragmas)
    return progress


@dataclass
class Round:
    """What one round did."""

    claimed: int = 0
    sent: int = 0
    rejected: int = 0
    failed: int = 0
    needs_linkage: int = 0
    waiting: int = 0
    circuit_open: bool = False
    errors: list[str] = field(default_factory=list)


class Sender:
    def __init__(
        self,
        engine: Engine,
        target: Target,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        poster: HttpPoster | None = None,
        backoff_base_s: float = rules.BASE_S,
        circuit_open_s: float = rules.OPEN_S,
    ):
        self._store_engine = engine
        self.engine, self.target = progress_engine(engine), target
        self.profile = target.profile
        self._clock, self._monotonic, self._jitter = clock, monotonic, jitter
        self._poster = poster or HttpPoster(target.url, target.timeout_s)
        requests_per_round = 1 if self.profile.per_record_answer else 1 + self.profile.max_batch
        # Far beyond the longest a round can take: only a crashed sender's records wait this long.
        self.lease_s = 30 + 3 * requests_per_round * target.timeout_s
        self.circuit = rules.Circuit(open_s=circuit_open_s, base_open_s=circuit_open_s)
        self._backoff_base_s = backoff_base_s
        self.last_error: str | None = None
        self.sent_total = 0  # by this process, since it started
        self._lock = threading.Lock()  # one round at a time in this process
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- one round -----------------------------------------------------------------------------

    def send_once(self) -> Round:
        with self._lock:
            result = Round()
            if not self.circuit.allows(self._monotonic()):
                result.circuit_open = True
                return result
            now = self._clock()
            with self.engine.begin() as conn:
                token, claimed = outbox.claim(conn, self.profile.max_batch, now, self.lease_s)
            result.claimed = len(claimed)
            if not claimed:
                return result
            settled: list[tuple[list[int], dict[str, Any]]] = []
            records, sending = [], []
            for c in claimed:
                if c.waits_for_detail:
                    settled.append(([c.id], {"status": rules.AWAITING_DETAIL}))
                    result.waiting += 1
                    continue
                mapped = self.profile.map(c.rating)
                if isinstance(mapped, NeedsLinkage):
                    rules.next_status(c.status, "incomplete")
                    settled.append(([c.id], {"status": rules.NEEDS_LINKAGE, "last_error": mapped.message}))
                    result.needs_linkage += 1
                    continue
                records.append(mapped)
                sending.append(c)
            if records:
                self._send(sending, records, settled, result)
            with self.engine.begin() as conn:
                for ids, values in settled:
                    outbox.settle(conn, token, ids, **values)
            self.sent_total += result.sent
            return result

    def _send(self, claimed: list, records: list[dict], settled: list, result: Round) -> None:
        answer = self._post(records, [(c.rating.project_no, c.rating.assess_number) for c in claimed])
        if isinstance(answer, Failure):
            self._failed(claimed, answer, settled, result)
            return
        self._succeeded()
        refused = [i for i, o in enumerate(answer) if not o.ok]
        if refused and not self.profile.per_record_answer and len(records) > 1:
            # The answer speaks for the whole batch: find the refused ones by sending each alone.
            for c, record in zip(claimed, records, strict=True):
                self._send([c], [record], settled, result)
            return
        ok_ids = [c.id for c, o in zip(claimed, answer, strict=True) if o.ok]
        if ok_ids:
            settled.append((ok_ids, {"status": rules.SENT, "attempts_inc": 1}))
            result.sent += len(ok_ids)
        for i in refused:
            c, outcome = claimed[i], answer[i]
            settled.append(
                (
                    [c.id],
                    {"status": rules.REJECTED, "attempts_inc": 1, "message": outcome.message or "refused"},
                )
            )
            result.rejected += 1
            log.warning("upstream refused record %d (%s): %s", c.id, self.profile.name, outcome.message)

    def _post(self, records: list[dict], keys: list[tuple[str, int]]) -> list[Outcome] | Failure:
        request = self.profile.request(
            records, self.target.app, self.target.signer, datetime.now().astimezone()
        )
        try:
            status, headers, body = self._poster.post(request.body, request.headers)
        except (TimeoutError, OSError, http.client.HTTPException) as e:
            return Failure(excerpt(f"{type(e).__name__}: {e}"))
        return self.profile.answer(status, headers, body, keys)

    def _failed(self, claimed: list, failure: Failure, settled: list, result: Round) -> None:
        now = self._clock()
        wait = rules.retry_after_s(failure.retry_after, datetime.fromtimestamp(now).astimezone())
        for c in claimed:
            delay = rules.delay_after_failure(c.attempts + 1, self._jitter(), wait, self._backoff_base_s)
            settled.append(
                (
                    [c.id],
                    {
                        "status": rules.FAILING,
                        "attempts_inc": 1,
                        "next_attempt_at": now + delay,
                        "last_error": failure.detail,
                    },
                )
            )
        result.failed += len(claimed)
        result.errors.append(failure.detail)
        self.last_error = failure.detail
        was_open = self.circuit.is_open
        self.circuit = self.circuit.after_failure(self._monotonic())
        log.warning("upstream %s: batch of %d not sent: %s", self.profile.name, len(claimed), failure.detail)
        if self.circuit.is_open and not was_open:
            log.error(
                "upstream %s: circuit open after %d failed batches; probing again in %.1f s",
                self.profile.name,
                self.circuit.failures,
                self.circuit.open_s,
            )

    def _succeeded(self) -> None:
        if self.circuit.is_open:
            log.info("upstream %s: circuit closed, the target answers again", self.profile.name)
        self.circuit = self.circuit.after_success()
        self.last_error = None

    # --- loops ---------------------------------------------------------------------------------

    def drain(self, timeout_s: float, *, until: Callable[[], bool] | None = None) -> bool:
        """Rounds until nothing is due now (or ``until()`` holds), at most ``timeout_s``; True if done."""
        deadline = self._monotonic() + timeout_s
        while self._monotonic() < deadline:
            if until is not None and until():
                return True
            r = self.send_once()
            if until is None and r.claimed == 0 and not r.circuit_open:
                return True
            if r.claimed == 0 or r.circuit_open:
                time.sleep(0.05)
        return False

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="upstream-sender", daemon=True)
        self._thread.start()
        log.info("upstream sender started: %s to %s", self.profile.name, self.target.url)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.target.timeout_s + 5)
            self._thread = None
        self._poster.close()
        if self.engine is not self._store_engine:
            self.engine.dispose()

    def _run(self) -> None:
        delay = 0.0
        while not self._stop.wait(delay):
            try:
                r = self.send_once()
            except Exception:  # noqa: BLE001 - a database hiccup must not end reporting
                log.exception("upstream round failed; trying again shortly")
                delay = 5 * IDLE_POLL_S
                continue
            delay = IDLE_POLL_S if r.claimed == 0 or r.circuit_open else 0.0

    def state(self) -> dict[str, Any]:
        return {
            "profile": self.profile.name,
            "url": self.target.url,
            "circuit": self.circuit.state(self._monotonic()),
            "lastError": self.last_error,
            "sentByThisProcess": self.sent_total,
        }

"""Real parts for the hub and sync tests: a hub served on 127.0.0.1 (in a thread or as a process),
signed requests, kiosk logs full of events, and a fault-injecting HTTP proxy between agent and hub.

Imported by tests/test_hub*.py and tests/test_sync*.py; it holds no tests itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import socket
import sqlite3
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import requests
import uvicorn
from sqlalchemy import text as sql_text
from starlette.applications import Starlette
from starlette.routing import Match, Mount, Route

from commands.hubprocess import HubProcess, free_port  # noqa: F401  (the tests' hub launcher)
from core.qrtoken import issue_token
from core.signing import request_headers, sign_v1
from core.store import EventLog
from hub.answer_signing import AnswerSigning
from hub.app import create_app
from hub.auth import AuthError, DeviceAuthenticator
from hub.dependencies import ANSWER_KEY
from hub.keys import key_file_path
from hub.storage import HubStore, database_url

DEVICE = "XHA-W03"
ADMIN_TOKEN = "operator-token-for-tests-0123456789abcdef"
ROOT = Path(__file__).resolve().parent.parent


def wait_until(condition: Callable[[], object], timeout_s: float = 20.0, what: str = "condition") -> object:
    """Poll ``condition`` until it is truthy; fail after ``timeout_s`` (a deadline, not a sleep)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


# --- the hub ---------------------------------------------------------------------------------------


class ThreadHub:
    """The hub app served by uvicorn on a free port in a background thread of the test process."""

    def __init__(
        self,
        store: HubStore,
        admin_token: str | None = ADMIN_TOKEN,
        *,
        prefix: str = "",
        routes: Sequence[Route] = (),
        **app_options,
    ):
        """``prefix``: served under that path, as behind a reverse proxy; ``routes``: answers that take
        precedence over the hub's own (what another hub might send)."""
        self.store = store
        app = create_app(store, admin_token, **app_options)
        self.app_desk = app.state.desk
        if prefix or routes:
            app = Starlette(routes=[*routes, Mount(prefix, app=app)])
        if routes:
            app = _SignedLikeTheHub(app, store, routes)
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            access_log=False,
            log_config=None,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started or not self.thread.is_alive(), what="hub start")
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}{prefix}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class _SignedLikeTheHub:
    """Signs the answers of the stand-in ``routes`` as the hub would (it holds the device's secret): a
    hostile hub, not a man in the middle. Headers are checked, the body is not. The hub's own answers are
    signed by the hub already."""

    def __init__(self, app, store: HubStore, routes: Sequence[Route]):
        self.plain, self.app = app, AnswerSigning(app)
        self.routes = routes
        self.authenticator = DeviceAuthenticator(store.device_secret)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and not any(r.matches(scope)[0] == Match.FULL for r in self.routes):
            await self.plain(scope, receive, send)
            return
        if scope["type"] == "http":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            headers = {k.title(): v for k, v in headers.items()}
            with contextlib.suppress(AuthError):
                claim, secret = self.authenticator.claim(headers)
                scope.setdefault("state", {})[ANSWER_KEY] = (secret, claim.signature)
        await self.app(scope, receive, send)


@contextlib.contextmanager
def thread_hub(data: Path, url: str | None = None, **app_options) -> Iterator[ThreadHub]:
    store = HubStore(url or database_url(data, None), key_file_path(data, None))
    hub = ThreadHub(store, **app_options)
    try:
        yield hub
    finally:
        hub.stop()
        store.close()


def register(data_or_store: Path | HubStore, device: str = DEVICE, **codes) -> bytes:
    """Register ``device`` and return its secret as HMAC key bytes."""
    store = (
        data_or_store if isinstance(data_or_store, HubStore) else HubStore(database_url(data_or_store, None))
    )
    secret_hex, _ = store.add_device(device, **codes)
    if store is not data_or_store:
        store.close()
    return bytes.fromhex(secret_hex)


def signed_headers(
    secret: bytes,
    body: bytes,
    device: str = DEVICE,
    timestamp: int | None = None,
    *,
    method: str = "POST",
    target: str = "/api/v1/events",
) -> dict:
    """The v2 signature headers of a request (core.signing, as the agent sends them)."""
    ts = int(time.time()) if timestamp is None else timestamp
    return request_headers(device, secret, method, target, body, ts)


def signed_headers_v1(secret: bytes, body: bytes, device: str = DEVICE, timestamp: int | None = None) -> dict:
    """The v1 signature headers: what agents before 0.2.0 sent."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {"X-Kiosk-Device": device, "X-Kiosk-Timestamp": ts, "X-Kiosk-Signature": sign_v1(secret, ts, body)}


def post_events(url: str, secret: bytes, log_id: str, events: list[dict], device: str = DEVICE, **kw):
    body = json.dumps({"device_id": device, "log_id": log_id, "events": events}, ensure_ascii=False).encode()
    headers = {**signed_headers(secret, body, device, **kw), "Content-Type": "application/json"}
    return requests.post(f"{url}/api/v1/events", data=body, headers=headers, timeout=10)


# --- kiosk logs ------------------------------------------------------------------------------------


def rating_payload(i: int, *, case_no: str | None = "370211202611280012", satisfaction: int = 5) -> dict:
    return {
        "case_seq": i,
        "staff_no": "0371",
        "staff_name": "王晓燕",
        "window": "03",
        "ticket_no": f"A{i:03d}",
        "case_no": case_no,
        "item_code": "11370211MB0000001X",
        "item_name": "不动产登记",
        "satisfaction": satisfaction,
        "input": "touch",
    }


def fill_log(log: EventLog, count: int, seed: int = 0) -> None:
    """Append ``count`` events cycling through case_opened, rating and rating_detail."""
    rng = random.Random(seed)
    for _ in range(count):
        kind = rng.choice(("case", "rating", "detail"))
        head = log.head_seq()
        if kind == "case":
            log.append(
                "case_opened",
                {
                    "ticket_no": "A001",
                    "case_no": "3702110001",
                    "item_code": None,
                    "item_name": None,
                    "source": "queue",
                },
            )
        elif kind == "rating" or head == 0:
            log.append("rating", rating_payload(head, satisfaction=rng.randint(1, 5)))
        else:
            log.append("rating_detail", {"rating_seq": head, "reasons": ["201"], "contact_sealed": None})


def drop_triggers(path: Path) -> sqlite3.Connection:
    """What a person with database access does first: remove the append-only triggers."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("DROP TRIGGER events_no_delete")
    return conn


def qr_token(secret: bytes, case_no: str | None, device: str = DEVICE, **claims) -> str:
    """A QR token as the kiosk issues it, valid for 600 s from now unless ``issued_at``/``ttl_s`` say."""
    fields = {"window": "03", "staff_no": "0371", "item_code": "11370211MB0000001X"}
    fields |= {"issued_at": int(time.time()), "ttl_s": 600} | claims
    return issue_token(secret, device_id=device, case_no=case_no, **fields)


def upload_case(url: str, secret: bytes, path: Path, case_no: str, *, rated: bool = False) -> None:
    """A kiosk log at ``path`` that opened ``case_no`` (and rated it at the window), sent to the hub."""
    with EventLog(path) as log:
        log.append(
            "case_opened",
            {
                "ticket_no": "A017",
                "case_no": case_no,
                "item_code": "11370211MB0000001X",
                "item_name": "不动产登记",
                "source": "queue",
            },
        )
        if rated:
            log.append("rating", rating_payload(1, case_no=case_no, satisfaction=2))
        response = post_events(url, secret, log.log_id, list(log.events_after(0)))
        assert response.status_code == 200, response.text


def write_kiosk_config(folder: Path, hub_url: str, secret: bytes, device: str = DEVICE) -> Path:
    (folder / "device.key").write_text(secret.hex() + "\n")
    path = folder / "kiosk.toml"
    path.write_text(
        f'[device]\nid = "{device}"\nwindow = "03"\n\n[store]\npath = "kiosk.db"\n\n'
        f'[hub]\nurl = "{hub_url}"\nsecret_file = "device.key"\n'
    )
    return path


def agent_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


# --- the fault-injecting proxy ---------------------------------------------------------------------

FAULTS = ("drop", "reset_after", "reset_mid", "error500", "slow")


def _read_message(sock: socket.socket, buffer: bytearray) -> bytes | None:
    """One HTTP/1.1 message (headers and a Content-Length body) from ``sock``; None at end of stream."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buffer += chunk
    head_end = buffer.index(b"\r\n\r\n") + 4
    length = 0
    for line in bytes(buffer[:head_end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(buffer) < head_end + length:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buffer += chunk
    message = bytes(buffer[: head_end + length])
    del buffer[: head_end + length]
    return message


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class FaultProxy:
    """Relays HTTP requests to the hub one at a time, injecting a fault into a share of them:

    drop (close before forwarding), reset_after (the hub stored it; the client gets a reset instead of
    the answer), reset_mid (half the answer, then a reset), error500 (a 500 without forwarding), slow
    (the answer after a delay); the first requests get each fault once. With ``hold`` each answer
    waits in ``answers`` until the test sets it.
    """

    def __init__(self, upstream_port: int, fault_rate: float = 0.0, seed: int = 0, slow_s: float = 0.3):
        self.upstream_port = upstream_port
        self.fault_rate = fault_rate
        self.slow_s = slow_s
        self.rng = random.Random(seed)
        self.rng_lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.hold = False
        # Held answers as (request method, event the test sets to let the answer go).
        self.answers: queue.Queue[tuple[str, threading.Event]] = queue.Queue()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        while not self.answers.empty():
            self.answers.get()[1].set()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _choose(self) -> str:
        with self.rng_lock:
            if self.fault_rate and self.counts.total() < len(FAULTS):  # every fault at least once, first
                fault = FAULTS[self.counts.total()]
            else:
                fault = self.rng.choice(FAULTS) if self.rng.random() < self.fault_rate else "pass"
            self.counts[fault] += 1
        return fault

    def _serve(self, client: socket.socket) -> None:
        buffer = bytearray()
        try:
            while True:
                request = _read_message(client, buffer)
                if request is None:
                    client.close()
                    return
                fault = self._choose()
                if fault == "drop":
                    client.close()
                    return
                if fault == "error500":
                    body = b'{"error":"proxy"}'
                    client.sendall(
                        b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                    )
                    continue
                try:
                    with socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30) as upstream:
                        upstream.sendall(request)
                        response = _read_message(upstream, bytearray())
                except OSError:
                    response = None
                if response is None:  # the hub is down: as a real proxy would, give up on the client
                    _reset(client)
                    return
                if self.hold:
                    go = threading.Event()
                    self.answers.put((request.split(b" ", 1)[0].decode(), go))
                    go.wait(30)
                if fault == "reset_after":
                    _reset(client)
                    return
                if fault == "reset_mid":
                    client.sendall(response[: len(response) // 2])
                    _reset(client)
                    return
                if fault == "slow":
                    time.sleep(self.slow_s)  # the fault itself, not synchronisation
                client.sendall(response)
        except OSError:
            client.close()


def wipe_database(url: str) -> None:
    """Drop every hub table and Alembic's version of a scratch database, so the next store migrates it
    from nothing: the PostgreSQL test database outlives the run."""
    from hub.schema import metadata

    wipe = HubStore(url)
    metadata.drop_all(wipe.engine)
    with wipe.engine.begin() as conn:
        conn.execute(sql_text("DROP TABLE IF EXISTS alembic_version"))
    wipe.close()


def waiting_for_a_lock(conn) -> bool:
    """Whether another backend waits for a lock, asked on a connection of its own: inside ``conn``'s open
    transaction pg_stat_activity is a snapshot taken at its first reading, without the backends started
    since (the upload's path opens its own connection)."""
    query = sql_text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid() "
        "AND pid <> :holder"
    )
    holder = conn.execute(sql_text("SELECT pg_backend_pid()")).scalar()
    with conn.engine.connect() as observer:
        return observer.execute(query, {"holder": holder}).scalar() > 0

"""``kiosk hub --workers N`` (hub/workers.py): N processes on one port and one PostgreSQL, under one
systemd service. Real processes, a real notify socket, real TCP; which process holds a connection is read
from /proc, so the hub's answers need not say (a pid in a header would tell every caller)."""

from __future__ import annotations

import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select
from test_hub_postgres import PG_URL
from test_hub_support import DEVICE, fill_log, post_events, qr_token, register, wait_until, wipe_database

from commands.cli import main as kiosk_main
from commands.hubprocess import free_port
from core.store import EventLog
from hub.console.session import COOKIE, LOGIN_CSRF_COOKIE, SESSION_S, Signer, session_key
from hub.console.throttle import MAX_FAILURES, login_failures
from hub.desk.calendar import WorkCalendar
from hub.desk.store import DeskStore
from hub.keys import read_key_file
from hub.schema import phone_ratings
from hub.storage import HubStore
from hub.workers import MAX_RESTARTS, READY, Supervisor, WorkersFailed

needs_pg = pytest.mark.skipif(not PG_URL, reason="KIOSK_TEST_PG_URL is not set (see .ci/postgres.sh)")


def test_several_workers_on_sqlite_are_refused_before_anything_is_made(tmp_path, capsys):
    assert kiosk_main(["hub", "--data", str(tmp_path / "hub"), "--workers", "2", "--port", "0"]) == 2
    assert "need PostgreSQL" in capsys.readouterr().err
    assert not (tmp_path / "hub" / "hub.db").exists()
    assert kiosk_main(["hub", "--data", str(tmp_path / "hub"), "--workers", "0"]) == 2


def children(pid: int) -> set[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return {int(p) for p in text.split()}


def _socket_inode(client_port: int, server_port: int) -> str | None:
    """The inode of the server's end of the TCP connection from client_port (IPv4, /proc/net/tcp)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
            return fields[9]
    return None


def serving_pid(connection: http.client.HTTPConnection, server_port: int, pids: set[int]) -> int | None:
    """Which of ``pids`` holds the accepted end of ``connection``."""
    inode = _socket_inode(connection.sock.getsockname()[1], server_port)
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


def healthz(connection: http.client.HTTPConnection) -> None:
    connection.request("GET", "/healthz")
    response = connection.getresponse()
    assert response.status == 200 and response.read() == b'{"ok":true}'


class WorkersHub:
    def __init__(self, tmp_path: Path, count: int = 2):
        self.store = HubStore(PG_URL)
        self.key_file = tmp_path / "contact.key"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(tmp_path / "notify.sock"))
        self.notify.settimeout(30)
        env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "2000000"}
        env.pop("KIOSK_HUB_DB", None)
        command = ["hub", "--db", PG_URL, "--key-file", str(self.key_file), "--port", str(self.port)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "commands.cli", *command, "--workers", str(count)], env=env
        )

    def workers(self) -> set[int]:
        return children(self.proc.pid)

    def connection_to(self, pid: int) -> http.client.HTTPConnection:
        """A new connection that worker ``pid`` accepted (new ones until it takes one)."""
        found: list[http.client.HTTPConnection] = []

        def landed() -> bool:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            healthz(connection)
            if serving_pid(connection, self.port, {pid}) == pid:
                found.append(connection)
                return True
            connection.close()
            return False

        wait_until(landed, what=f"a connection to worker {pid}")
        return found[0]

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self.notify.close()
        self.store.close()


@pytest.fixture
def workers_hub(tmp_path):
    wipe_database(PG_URL)
    hub = WorkersHub(tmp_path)
    try:
        assert hub.notify.recv(64) == b"READY=1"
        yield hub
    finally:
        hub.close()


@needs_pg
def test_two_workers_serve_upload_once_and_stop_on_sigterm(workers_hub, tmp_path):
    hub, proc, port, url, store = (
        workers_hub,
        workers_hub.proc,
        workers_hub.port,
        workers_hub.url,
        workers_hub.store,
    )
    secret = register(store, area_code="370211")
    workers = hub.workers()
    assert len(workers) == 2  # both serve when the service says it is ready

    # Requests are served by both: new connections until each worker holds one (the kernel hands a
    # connection to whichever worker accepts first).
    seen: dict[int, http.client.HTTPConnection] = {}
    opened = []

    def both_serve() -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        opened.append(connection)
        healthz(connection)
        pid = serving_pid(connection, port, workers)
        assert pid in workers
        seen.setdefault(pid, connection)
        return len(seen) == 2

    wait_until(both_serve, what="a connection served by each worker")
    for connection in seen.values():  # and keep serving on them
        healthz(connection)

    # The same batch sent 8 times at once over both workers is stored once.
    with EventLog(tmp_path / "kiosk.db") as log:
        fill_log(log, 40)
        events = list(log.events_after(0))
        answers: list = []
        senders = [
            threading.Thread(target=lambda: answers.append(post_events(url, secret, log.log_id, events)))
            for _ in range(8)
        ]
        for t in senders:
            t.start()
        for t in senders:
            t.join(30)
        assert [a.status_code for a in answers] == [200] * 8
        assert {a.json()["acked_seq"] for a in answers} == {40}
        assert store.log_events(DEVICE, log.log_id) == events

    # 一次一评 across workers: one phone code posted 8 times at once, 4 times to each worker.
    case_no = "370211202611280301"
    token = qr_token(secret, case_no)
    connections = [hub.connection_to(pid) for pid in sorted(workers) for _ in range(4)]
    taps: list[int] = []

    def tap(connection) -> None:
        form = urlencode({"satisfaction": "5"})
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        connection.request("POST", f"/q/{token}", body=form, headers=headers)
        response = connection.getresponse()
        response.read()
        taps.append(response.status)

    tappers = [threading.Thread(target=tap, args=(c,)) for c in connections]
    for t in tappers:
        t.start()
    for t in tappers:
        t.join(30)
    assert taps == [303] * 8  # each told 评价成功
    with store.engine.connect() as conn:
        held = conn.execute(select(func.count()).where(phone_ratings.c.case_no == case_no)).scalar()
    assert held == 1
    for connection in connections:
        connection.close()

    # The service's watchdog is fed while both workers' loops run.
    assert hub.notify.recv(64) == b"STATUS=serving with 2 workers"
    assert hub.notify.recv(64) == b"WATCHDOG=1"

    # A worker that dies is replaced; the other serves meanwhile.
    victim = next(iter(workers))
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(hub.workers() - {victim}) == 2, what="a new worker")
    workers = hub.workers()
    wait_until(lambda: _answers(url), what="the hub answering after a worker died")

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    for connection in opened:
        connection.close()


def _answers(url: str) -> bool:
    connection = http.client.HTTPConnection(
        url.removeprefix("http://").split(":")[0], int(url.rsplit(":")[-1])
    )
    try:
        healthz(connection)
        return True
    except OSError:
        return False
    finally:
        connection.close()


def _listening() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_a_worker_that_exits_before_serving_fails_the_start():
    expected = r"worker \d exited before serving \(exit status 3\)"
    with _listening() as sock, pytest.raises(WorkersFailed, match=expected):
        Supervisor(2, sock, lambda sock, tell, ping: 3).run()


def test_workers_dying_again_and_again_stop_the_service():
    """Replaced after each death, until more than MAX_RESTARTS within the window: then all stop."""

    def serve_then_die(sock, tell, ping) -> int:
        tell(READY)
        return 1

    with _listening() as sock:
        supervisor = Supervisor(2, sock, serve_then_die)
        with pytest.raises(WorkersFailed, match=f"died {MAX_RESTARTS + 1} times"):
            supervisor.run()
        assert supervisor.workers == {}  # every worker reaped


# --- the console across workers: one session key, one login throttle ------------------------------------


def _request(connection, method: str, path: str, cookies: dict[str, str], form: dict | None = None):
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {}
    body = None
    if form is not None:
        body = urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    response.read()
    return response


def _set_cookie(response, name: str) -> str:
    for header in response.headers.get_all("set-cookie") or []:
        if header.startswith(f"{name}="):
            return header.split(";")[0].split("=", 1)[1]
    raise AssertionError(f"no {name} cookie")


def _login(connection, name: str, password: str):
    page = _request(connection, "GET", "/console/login", {})
    csrf = _set_cookie(page, LOGIN_CSRF_COOKIE)
    form = {"csrf": csrf, "name": name, "password": password}
    return _request(connection, "POST", "/console/login", {LOGIN_CSRF_COOKIE: csrf}, form)


@needs_pg
def test_a_session_made_on_one_worker_is_good_on_the_other_and_forgeries_on_none(workers_hub):
    hub = workers_hub
    desk = DeskStore(hub.store.engine, WorkCalendar(frozenset()))
    password = desk.add_user("alice", "admin", None)
    a, b = sorted(hub.workers())
    on_a, on_b = hub.connection_to(a), hub.connection_to(b)

    answer = _login(on_a, "alice", password)
    assert answer.status == 303 and answer.headers["location"] == "/console/password"
    cookie = _set_cookie(answer, COOKIE)

    def page_on_b(session_cookie: str | None) -> tuple[int, str | None]:
        response = _request(
            on_b, "GET", "/console/password", {COOKIE: session_cookie} if session_cookie else {}
        )
        return response.status, response.headers.get("location")

    assert page_on_b(cookie) == (200, None)  # signed by worker A, accepted by worker B
    assert page_on_b(None) == (303, "/console/login")

    # The key is derived from the contact key file both workers read; a cookie under any other key, an
    # expired one, or an altered one is no session.
    key = session_key(bytes(read_key_file(hub.key_file)))
    assert Signer(key).read(cookie) is not None
    _principal, credential = desk.session_principal("alice")
    other, _ = Signer(secrets.token_bytes(32)).issue("alice", False, credential)
    expired, _ = Signer(key, clock=lambda: time.time() - SESSION_S - 1).issue("alice", False, credential)
    data, _, mac = cookie.rpartition(".")
    altered = data[:-2] + ("AA" if not data.endswith("AA") else "BB") + "." + mac
    for forged in (other, expired, altered):
        assert page_on_b(forged) == (303, "/console/login")
    fresh, _ = Signer(key).issue("alice", False, credential)  # both workers sign with the same key
    assert _request(on_b, "GET", "/console/users", {COOKIE: fresh}).status == 200


@needs_pg
def test_failed_logins_spread_over_two_workers_are_throttled_as_one(workers_hub):
    hub = workers_hub
    desk = DeskStore(hub.store.engine, WorkCalendar(frozenset()))
    password = desk.add_user("bob", "admin", None)
    a, b = sorted(hub.workers())
    on = [hub.connection_to(a), hub.connection_to(b)]
    codes = [_login(on[i % 2], "bob", f"guess-{i}").status for i in range(MAX_FAILURES)]
    assert codes == [401] * MAX_FAILURES  # guesses alternate between the workers
    assert [_login(c, "bob", password).status for c in on] == [429, 429]  # both count them all
    with hub.store.engine.connect() as conn:
        subjects = [row.subject for row in conn.execute(select(login_failures))]
    assert subjects and not any("bob" in s or "127.0.0.1" in s for s in subjects)  # no names stored

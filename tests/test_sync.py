"""The sync agent against a real hub on 127.0.0.1: cursor, status, gaps, alarms, backoff, roster, and
``kiosk sync --once``."""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests
from PIL import Image
from test_hub_support import (
    DEVICE,
    agent_env,
    drop_triggers,
    fill_log,
    register,
    thread_hub,
    wait_until,
    write_kiosk_config,
)

from hub.cli import read_roster_csv
from hub.storage import ALL_DEVICES
from kiosk.cli import main as kiosk_main
from kiosk.store import EventLog
from sync.agent import CURSOR_KEY, STATUS_KEY, Backoff, SyncAgent
from sync.client import HubClient, HubUnavailable

STATUS_KEYS = {"state", "last_success_at", "last_error", "pending", "acked_seq", "alarm", "updated_at"}


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


# --- the loop and the command ------------------------------------------------------------------


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
            [sys.executable, "-m", "kiosk.cli", "sync", "--config", str(config)],
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

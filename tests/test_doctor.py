"""``kiosk doctor``: each check alone, then the whole command on a healthy simulated setup (pseudo-terminals,
a real hub on 127.0.0.1, a real log) and on a broken one."""

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import serial
from nacl.public import PrivateKey

from commands import doctor
from commands.cli import main as kiosk_main
from commands.demo import Hub
from core.config import SerialConfig, load_config
from core.store import EventLog, now_iso
from drivers.sim import Simulator
from sync.agent import CURSOR_KEY

DEVICE_ID = "DOC-W01"
NOW = datetime.now().astimezone()


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hub")
    hub = Hub(folder)
    hub.add_device(DEVICE_ID, folder / "device.key")
    hub.start()
    yield hub
    hub.stop()


@pytest.fixture
def sim(tmp_path):
    with Simulator(tmp_path / "devices") as sim:
        yield sim


def write_setup(folder: Path, hub: Hub, sim: Simulator, *, sync_state: dict | None = None) -> Path:
    """A terminal's config, device key and log in ``folder``, as a healthy installation has them."""
    (folder / "device.key").write_bytes((hub.data.parent / "device.key").read_bytes())
    (folder / "device.key").chmod(0o640)
    (folder / "hub.pub").write_text(bytes(PrivateKey.generate().public_key).hex())
    config = folder / "kiosk.toml"
    config.write_text(
        f'[device]\nid = "{DEVICE_ID}"\nwindow = "01"\n\n[store]\npath = "kiosk.db"\n\n'
        f"{sim.config_fragment()}\n"
        f'[hub]\nurl = "{hub.url}"\nsecret_file = "device.key"\npublic_key_file = "hub.pub"\n',
        encoding="utf-8",
    )
    with EventLog(folder / "kiosk.db") as log:
        log.append("staff_signin", {"staff_no": "0101", "staff_name": "测试"})
        log.set_state(CURSOR_KEY, {"log_id": log.log_id, "acked_seq": (sync_state or {}).get("acked_seq", 1)})
        log.set_state(
            "sync",
            sync_state
            or {
                "state": "ok",
                "last_success_at": now_iso(),
                "last_error": None,
                "pending": 0,
                "acked_seq": 1,
                "alarm": None,
                "updated_at": now_iso(),
            },
        )
    return config


def statuses(rows: list[doctor.CheckResult]) -> dict[str, str]:
    return {r.check: r.status for r in rows}


# --- the whole command -------------------------------------------------------------------------------------


def test_healthy_simulated_setup_passes(tmp_path, hub, sim, capsys):
    config = write_setup(tmp_path, hub, sim)
    assert kiosk_main(["doctor", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    rows = doctor.run_checks(config)
    assert statuses(rows) == {
        "config": "ok",
        "roster file": "skip",
        "CJK font": "ok",
        "display": "warn",  # the tests run Qt offscreen
        "screen size": "warn",  # no [ui] screen_diagonal_in in the test configuration
        "voice": "warn",  # and have no sound card
        "serial card": "ok",
        "serial ticket": "ok",
        "serial keypad": "ok",
        "log integrity": "ok",
        "log chain": "ok",
        "free disk": "ok",
        "clock": "ok",
        "time sync": "warn",  # no systemd in the test container: nothing can say
        "device key": "ok",
        "hub public key": "ok",
        "hub reachable": "ok",
        "hub signature": "ok",
        "clock vs hub": "ok",
        "sync": "ok",
    }
    assert "0 failed" in out


def test_key_files_that_cannot_serve_are_failures(tmp_path, hub, sim):
    config = load_config(write_setup(tmp_path, hub, sim))
    (tmp_path / "hub.pub").write_text("not a key")
    (tmp_path / "device.key").write_text("zz-not-hex\n")
    assert doctor.check_hub_public_key(config).status == "FAIL"
    row = doctor.check_device_key(config)
    assert row.status == "FAIL" and "not a hex secret" in row.detail


def test_broken_setup_fails_naming_each_failure(tmp_path, hub, sim, capsys):
    alarm = {
        "state": "alarm",
        "last_success_at": None,
        "last_error": None,
        "pending": 3,
        "acked_seq": 0,
        "alarm": "the hub refuses seq 2 (fork)",
        "updated_at": now_iso(),
    }
    config = write_setup(tmp_path, hub, sim, sync_state=alarm)
    sim.unplug("card")
    (tmp_path / "device.key").write_text(os.urandom(32).hex())
    with sqlite3.connect(tmp_path / "kiosk.db") as db:  # a row slipped in behind the log's back
        db.execute(
            "INSERT INTO events (seq, id, type, at, payload, prev_hash, hash) VALUES (2, ?, 'staff_signout', ?, "
            '\'{"staff_no":"0101"}\', ?, ?)',
            (str(uuid.uuid4()), now_iso(), "0" * 64, "f" * 64),
        )
    assert kiosk_main(["doctor", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    failed = {line.split("  ")[0].strip() for line in out.splitlines() if "  FAIL  " in line}
    assert failed == {"serial card", "log chain", "hub signature", "sync"}
    assert "seq 2" in out and "kiosk hub device add DOC-W01" in out and "fork" in out
    assert "4 failed" in out


def test_invalid_config_is_one_failed_row_and_exit_2(tmp_path, capsys):
    config = tmp_path / "kiosk.toml"
    config.write_text('[device]\nid = "has space"\nwindow = "01"\n', encoding="utf-8")
    assert kiosk_main(["doctor", "--config", str(config)]) == 2
    out = capsys.readouterr().out
    assert "config" in out and "FAIL" in out and "[device] id" in out
    assert not (tmp_path / "kiosk.db").exists()


def test_roster_file_problems_are_named(tmp_path):
    config_file = tmp_path / "kiosk.toml"
    config_file.write_text(
        '[device]\nid = "X"\nwindow = "1"\n\n[roster]\npath = "roster.csv"\n', encoding="utf-8"
    )
    config = load_config(config_file)
    row = doctor.check_roster_file(config)
    assert row.status == "warn" and "cannot read" in row.detail
    (tmp_path / "roster.csv").write_text("card,staff_no,name\n0006102437,0101,王芳\nnot-a-card,0102,李强\n")
    row = doctor.check_roster_file(config)
    assert row.status == "warn" and "1 staff" in row.detail and "line 3" in row.detail


# --- hub and sync ------------------------------------------------------------------------------------------


def test_hub_checks(tmp_path, hub, sim):
    config = load_config(write_setup(tmp_path, hub, sim))
    assert statuses(doctor.check_hub(config, datetime.now(NOW.tzinfo))) == {
        "hub reachable": "ok",
        "hub signature": "ok",
        "clock vs hub": "ok",
    }
    (tmp_path / "device.key").write_text("not hex\n")
    rows = doctor.check_hub(config, NOW)
    assert rows[1].status == "FAIL" and "expected hex" in rows[1].detail
    closed = Hub(tmp_path)  # never started: nothing listens on its port
    rows = doctor.check_hub(replace(config, hub=replace(config.hub, url=closed.url)), NOW)
    assert [r.status for r in rows] == ["FAIL", "skip"] and closed.url in rows[0].detail


def facts(state: dict | None, pending: int, oldest_pending: timedelta | None = None) -> doctor.LogFacts:
    oldest = NOW - oldest_pending if oldest_pending is not None else None
    return doctor.LogFacts(sync=state, pending=pending, oldest_pending_at=oldest)


def agent(state: str, *, succeeded: timedelta | None, reported: timedelta, **more) -> dict:
    """The agent's published status, its last success and last report ``succeeded`` and ``reported`` ago."""
    return {
        "state": state,
        "last_success_at": (NOW - succeeded).isoformat() if succeeded is not None else None,
        "last_error": None,
        "pending": 0,  # what the agent last said: the doctor counts for itself
        "acked_seq": 0,
        "alarm": None,
        "updated_at": (NOW - reported).isoformat(),
    } | more


MINUTE, DAY = timedelta(minutes=1), timedelta(days=1)


@pytest.mark.parametrize(
    ("log_facts", "expected"),
    [
        (facts(None, 0), "warn"),
        (facts(agent("ok", succeeded=MINUTE, reported=MINUTE), 0), "ok"),
        # Idle for days with nothing to send is fine: the agent reports when it has something to do.
        (facts(agent("ok", succeeded=3 * DAY, reported=3 * DAY), 0), "ok"),
        # A new event, the agent not woken yet: fine for a while.
        (facts(agent("ok", succeeded=DAY, reported=DAY), 1, oldest_pending=timedelta(seconds=1)), "ok"),
        (facts(agent("offline", succeeded=MINUTE, reported=MINUTE), 2, MINUTE), "warn"),
        (facts(agent("offline", succeeded=2 * DAY, reported=MINUTE), 2, 2 * DAY), "FAIL"),
        (facts(agent("error", succeeded=None, reported=MINUTE, last_error="HTTP 401"), 0), "FAIL"),
        (facts(agent("alarm", succeeded=MINUTE, reported=MINUTE, alarm="fork"), 9, MINUTE), "FAIL"),
        (
            facts(agent("ok", succeeded=MINUTE, reported=MINUTE, roster_error="roster not refreshed"), 0),
            "warn",
        ),
    ],
)
def test_sync_status(log_facts, expected):
    assert doctor.check_sync(log_facts, NOW).status == expected


def test_a_dead_agent_with_events_piling_up_is_a_warning_then_a_failure():
    """The agent's last word was "ok, 0 pending"; since then it is gone and ratings wait in the log."""
    last_word = agent("ok", succeeded=timedelta(hours=2), reported=timedelta(hours=2))
    row = doctor.check_sync(facts(last_word, 37, oldest_pending=timedelta(hours=1)), NOW)
    assert row.status == "warn" and "37 pending" in row.detail and "not reported for 2 h" in row.detail
    assert "kiosk-sync" in row.fix
    last_word = agent("ok", succeeded=2 * DAY, reported=2 * DAY)
    row = doctor.check_sync(facts(last_word, 37, oldest_pending=DAY + timedelta(hours=1)), NOW)
    assert row.status == "FAIL" and "37 pending" in row.detail
    never = doctor.check_sync(facts(None, 5, oldest_pending=DAY + timedelta(hours=1)), NOW)
    assert never.status == "FAIL" and "5 pending" in never.detail


def test_pending_is_counted_from_the_log_not_taken_from_the_agent(tmp_path):
    with EventLog(tmp_path / "kiosk.db") as log:
        for n in range(5):
            log.append("staff_signin", {"staff_no": f"0{n}", "staff_name": "测试"})
        third_at = log.get(3)["at"]
        log.set_state(CURSOR_KEY, {"log_id": log.log_id, "acked_seq": 2})
        log.set_state("sync", agent("ok", succeeded=MINUTE, reported=MINUTE, pending=0))
    rows, log_facts = doctor.check_log(tmp_path / "kiosk.db")
    assert log_facts.pending == 3 and log_facts.oldest_pending_at == datetime.fromisoformat(third_at)
    assert log_facts.sync["state"] == "ok" and log_facts.newest["seq"] == 5
    with EventLog(tmp_path / "kiosk.db") as log:  # a cursor of another log counts for nothing here
        log.set_state(CURSOR_KEY, {"log_id": str(uuid.uuid4()), "acked_seq": 4})
    assert doctor.check_log(tmp_path / "kiosk.db")[1].pending == 5


# --- the device key ----------------------------------------------------------------------------------------


def key_config(tmp_path: Path, secret: str = "00112233445566778899aabbccddeeff") -> tuple:
    config_file = tmp_path / "kiosk.toml"
    config_file.write_text(
        '[device]\nid = "X"\nwindow = "1"\n[hub]\nurl = "http://127.0.0.1:1"\nsecret_file = "device.key"\n',
        encoding="utf-8",
    )
    key = tmp_path / "device.key"
    key.write_text(secret + "\n")
    key.chmod(0o640)
    return load_config(config_file), key


def test_device_key_readable_by_everyone_is_a_warning(tmp_path):
    config, key = key_config(tmp_path)
    assert doctor.check_device_key(config).status == "ok"
    key.chmod(0o644)  # what a default umask gives a file made by hand
    row = doctor.check_device_key(config)
    assert row.status == "warn" and "every user" in row.detail and "chmod 0640" in row.fix


def test_device_key_the_kiosk_user_cannot_read_is_a_warning(tmp_path, monkeypatch):
    config, key = key_config(tmp_path)
    key.chmod(0o600)  # made by root for root
    if os.geteuid() == 0:  # root reads anything: judge for a user that is neither owner nor group
        monkeypatch.setattr(doctor, "SERVICE_USER", "nobody")
    else:
        key.chmod(0o200)
    row = doctor.check_device_key(config)
    assert row.status == "warn" and "cannot read" in row.detail and "chgrp kiosk" in row.fix


def test_missing_or_placeholder_device_key_fails(tmp_path):
    config, key = key_config(tmp_path, secret="")
    row = doctor.check_device_key(config)
    assert row.status == "FAIL" and "empty" in row.detail and "kiosk hub device add X" in row.fix
    key.unlink()
    row = doctor.check_device_key(config)
    assert row.status == "FAIL" and "does not exist" in row.detail


# --- the log, clock and disk -------------------------------------------------------------------------------


def test_absent_log_is_reported_not_created(tmp_path):
    rows, log_facts = doctor.check_log(tmp_path / "kiosk.db")
    assert [r.status for r in rows] == ["warn"] and log_facts == doctor.LogFacts()
    assert not (tmp_path / "kiosk.db").exists()


def test_clock():
    assert doctor.check_clock(NOW, None).status == "ok"
    assert doctor.check_clock(NOW.replace(year=2020), None).status == "FAIL"
    newest = {"seq": 7, "at": (NOW + timedelta(minutes=5)).isoformat()}
    row = doctor.check_clock(NOW, newest)
    assert row.status == "FAIL" and "seq 7" in row.detail


def test_disk(tmp_path):
    assert doctor.check_disk(tmp_path / "not" / "yet" / "made").status in ("ok", "warn")


# --- serial ------------------------------------------------------------------------------------------------


def test_serial_device_that_opens(sim):
    row = doctor.check_serial(SerialConfig("keypad", sim.paths["keypad"]))
    assert row.status == "ok" and "opens" in row.detail


def test_serial_device_held_by_the_running_kiosk_is_fine(sim):
    with serial.Serial(sim.paths["card"], exclusive=True):
        row = doctor.check_serial(SerialConfig("card", sim.paths["card"]))
    assert row.status == "ok" and "in use" in row.detail


def _published(state: str, **counters) -> dict:
    device = {"name": "card", "port": "/dev/ttyCard", "state": state, "detail": "device lost: EIO"}
    device |= {"frames": 12, "bad_frames": 1, "reconnects": 2, "last_frame_at": time.time() - 90} | counters
    return {"devices": [device], "updated_at": time.time()}


def test_serial_device_held_by_the_kiosk_shows_what_the_kiosk_published(sim):
    card = SerialConfig("card", sim.paths["card"])
    with serial.Serial(sim.paths["card"], exclusive=True):
        healthy = doctor.check_serial(card, _published("connected"))
        lost = doctor.check_serial(card, _published("waiting"))
        stale = doctor.check_serial(card, _published("waiting") | {"updated_at": time.time() - 3600})
    assert healthy.status == "ok" and "12 frames, 1 bad, 2 reconnects, last frame 90 s ago" in healthy.detail
    assert lost.status == "FAIL" and "waiting (device lost: EIO)" in lost.detail
    assert stale.status == "ok" and "no recent status" in stale.detail


def test_unplugged_device_behind_a_stale_link(sim, tmp_path):
    sim.unplug("ticket")
    link = tmp_path / "ttyTicket"
    link.symlink_to("/dev/pts/does-not-exist")
    row = doctor.check_serial(SerialConfig("ticket", str(link)))
    assert row.status == "FAIL" and "link to missing" in row.detail and "udev" in row.fix
    assert doctor.check_serial(SerialConfig("ticket", sim.paths["ticket"])).status == "FAIL"


def test_serial_device_without_permission(sim):
    device = Path(sim.paths["card"]).resolve()  # the pty itself: tmp_path is 0700, closed to nobody
    # Root opens anything, and CI runs as root: there the check runs as an unprivileged user.
    check = check_serial_as_nobody if os.geteuid() == 0 else check_serial_here
    device.chmod(0o666)
    assert check(str(device))[0] == "ok"
    device.chmod(0)
    status, fix = check(str(device))
    assert status == "FAIL" and "dialout" in fix


def check_serial_here(port: str) -> tuple[str, str]:
    row = doctor.check_serial(SerialConfig("card", port))
    return row.status, row.fix


def check_serial_as_nobody(port: str) -> tuple[str, str]:
    """doctor.check_serial run by `nobody` (no supplementary groups) in a child process."""
    script = (
        "import json, sys; from commands import doctor; from core.config import SerialConfig; "
        "row = doctor.check_serial(SerialConfig('card', sys.argv[1])); print(json.dumps([row.status, row.fix]))"
    )
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            sys.executable,
            "-c",
            script,
            port,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
        env={**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1", "HOME": "/"},
    )
    assert result.returncode == 0, result.stderr
    status, fix = json.loads(result.stdout)
    return status, fix


# --- display -----------------------------------------------------------------------------------------------


def test_display_environment_file_beside_the_config_wins(tmp_path):
    config_file = tmp_path / "kiosk.toml"
    config_file.write_text('[device]\nid = "X"\nwindow = "1"\n', encoding="utf-8")
    (tmp_path / "display.env").write_text("# board\nQT_QPA_PLATFORM=eglfs\n", encoding="utf-8")
    env, source = doctor.display_environment(
        load_config(config_file), {"QT_QPA_PLATFORM": "offscreen", "A": "1"}
    )
    assert env["QT_QPA_PLATFORM"] == "eglfs" and env["A"] == "1" and source.endswith("display.env")


def test_eglfs_needs_a_drm_device_and_matching_touch_rotation(tmp_path):
    env = {
        "QT_QPA_PLATFORM": "eglfs",
        "QT_QPA_EGLFS_ROTATION": "90",
        "QT_QPA_EVDEV_TOUCHSCREEN_PARAMETERS": "rotate=90",
    }
    row = doctor.check_display(env, "test", dev=tmp_path)
    assert row.status == "FAIL" and "dri/card" in row.detail
    (tmp_path / "dri").mkdir()
    (tmp_path / "dri" / "card0").touch()
    assert doctor.check_display(env, "test", dev=tmp_path).status == "ok"
    turned = {**env, "QT_QPA_EVDEV_TOUCHSCREEN_PARAMETERS": "/dev/input/event2:rotate=180"}
    row = doctor.check_display(turned, "test", dev=tmp_path)
    assert row.status == "FAIL" and "touch 180" in row.detail


def test_linuxfb_names_its_framebuffer(tmp_path):
    fb = tmp_path / "fb1"
    env = {"QT_QPA_PLATFORM": f"linuxfb:fb={fb}:rotation=0"}
    assert doctor.check_display(env, "test").status == "FAIL"
    fb.touch()
    assert doctor.check_display(env, "test").status == "ok"


def test_x11_needs_a_listening_server():
    number = 4000 + os.getpid() % 1000
    row = doctor.check_display({"DISPLAY": f":{number}"}, "test")
    assert row.status == "FAIL" and "no X server" in row.detail
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(f"\0/tmp/.X11-unix/X{number}")  # the abstract socket an X server also listens on
        server.listen()
        assert doctor.check_display({"DISPLAY": f":{number}"}, "test").status == "ok"


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, "FAIL"), ({"QT_QPA_PLATFORM": "offscreen"}, "warn"), ({"QT_QPA_PLATFORM": "directfb"}, "FAIL")],
)
def test_display_platform(env, expected):
    assert doctor.check_display(env, "test").status == expected


def test_table_gives_a_fix_under_each_failure():
    rows = [doctor.ok("config", "fine"), doctor.fail("serial card", "/dev/ttyCard not found", "plug it in")]
    lines = doctor.format_table(rows).splitlines()
    assert lines[1].startswith("serial card  FAIL") and lines[2].strip() == "fix: plug it in"
    assert lines[-1] == "1 failed, 0 warnings, 2 checks"


def test_the_screen_size_is_a_warning_until_configured(tmp_path):
    path = tmp_path / "kiosk.toml"
    path.write_text('[device]\nid = "W03"\nwindow = "03"\n')
    assert doctor.check_screen_size(load_config(path)).status == "warn"
    path.write_text('[device]\nid = "W03"\nwindow = "03"\n[ui]\nscreen_diagonal_in = 10.1\n')
    row = doctor.check_screen_size(load_config(path))
    assert row.status == "ok" and "10.1" in row.detail

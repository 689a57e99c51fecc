"""The fleet, end to end: 20 devices (sync agent loops with heartbeats, and the kiosk's settings follower)
against one real hub process; what a hub without heartbeats does to the agent; the single-instance lock of
``kiosk sync``."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import requests
from sqlalchemy import select
from test_hub_support import (
    DEVICE,
    ROOT,
    agent_env,
    fill_log,
    free_port,
    register,
    signed_headers,
    thread_hub,
    wait_until,
    write_kiosk_config,
)

from core.config import load_config
from core.store import EventLog
from hub.app import create_app
from hub.desk.settings import AlertTarget, DeskSettings
from hub.desk.tables import alerts as desk_alerts
from hub.routers import fleet as fleet_routes
from hub.storage import HubStore, database_url
from kiosk.remote import RemoteSettings
from sync.agent import SyncAgent
from sync.client import HubClient
from sync.settings import SETTINGS_KEY

PERIOD_S = 5  # [hub] heartbeat_s, the least allowed
DEVICES = 20


def user_token(data: Path, name: str = "fleet", role: str = "admin") -> dict[str, str]:
    """A management API user of the hub in ``data`` (``kiosk hub user add`` / ``token``), as headers."""
    env = agent_env()
    for args in (["add", name, "--role", role], ["token", name]):
        done = subprocess.run(
            [sys.executable, "-m", "commands.cli", "hub", "user", *args, "--data", str(data)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
    return {"Authorization": f"Bearer {done.stdout.strip().splitlines()[-1]}"}


class SimulatedDevice:
    """One window: its log, its sync agent (upload, heartbeat, settings) on a thread, and what the kiosk
    does with settings (kiosk.remote, as Kiosk._check_settings uses it) on another."""

    def __init__(self, folder: Path, hub_url: str, device_id: str, secret: bytes, window: str):
        folder.mkdir()
        self.id = device_id
        config_path = write_kiosk_config(folder, hub_url, secret, device_id)
        self.config = load_config(config_path)
        self.log = EventLog(self.config.store_path)
        fill_log(self.log, 3, seed=int(window))
        self.stop = threading.Event()
        self.hub_url, self.secret, self.window = hub_url, secret, window
        self.agent: SyncAgent | None = None
        self.threads = [
            threading.Thread(target=self._agent, daemon=True),
            threading.Thread(target=self._kiosk, daemon=True),
        ]
        self.started_at = time.time()
        self.applied: list[dict] = []  # every configuration the kiosk took: (version, thanks_s)
        for t in self.threads:
            t.start()

    def _agent(self) -> None:
        with EventLog(self.config.store_path) as own:  # one connection per thread
            client = HubClient(self.hub_url, self.id, self.secret)
            self.agent = SyncAgent(own, client, heartbeat_s=PERIOD_S, window=self.window)
            self.agent.run(self.stop)

    def _kiosk(self) -> None:
        own = EventLog(self.config.store_path)
        remote = RemoteSettings(self.config, own)
        try:
            while not self.stop.wait(0.25):
                cached = remote.newer()
                if cached is not None:
                    config = remote.take(cached)
                    if config is not None:
                        self.applied.append({"version": remote.version, "thanks_s": config.ui.thanks_s})
                remote.publish("ready", self.started_at)
        finally:
            own.close()

    def kill(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)

    def close(self) -> None:
        self.kill()
        self.log.close()


@contextlib.contextmanager
def hub_process(data: Path):
    """``kiosk hub`` as its own process, its log in a file (the alarms are logged there)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = data / "hub.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "commands.cli", "hub", "--data", str(data), "--port", str(port)],
            cwd=ROOT,
            env=agent_env(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )

        def healthy() -> bool:
            assert proc.poll() is None, log_path.read_text()
            try:
                return requests.get(f"{url}/healthz", timeout=1).ok
            except requests.RequestException:
                return False

        try:
            wait_until(healthy, what="hub start")
            yield url, log_path
        finally:
            proc.terminate()
            proc.wait(10)


def eventually(condition, timeout_s: float, what: str) -> None:
    """``wait_until`` at a pace that leaves the hub's two shared cores to the devices (the listing is a
    real query over every device)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


AUTH: dict[str, str] = {}  # the admin user's token, set by the test that starts the hub


def listing(url: str) -> dict[str, dict]:
    r = requests.get(f"{url}/api/v1/manage/devices", headers=AUTH, timeout=10)
    assert r.status_code == 200, r.text
    return {d["id"]: d for d in r.json()["devices"]}


def test_twenty_devices_online_offline_settings(tmp_path):
    data = tmp_path / "hub"
    data.mkdir()
    ids = [f"XHA-W{i:02d}" for i in range(1, DEVICES + 1)]
    secrets = {device_id: register(data, device_id) for device_id in ids}
    AUTH.update(user_token(data))
    with hub_process(data) as (url, hub_log):
        devices = [
            SimulatedDevice(tmp_path / d, url, d, secrets[d], f"{i:02d}") for i, d in enumerate(ids, start=1)
        ]
        try:
            # All online, each with its window, version, pending count and the settings it applied.
            eventually(
                lambda: all(d["online"] and d["settings"]["applied"] for d in listing(url).values()),
                timeout_s=3 * PERIOD_S,
                what="every device online",
            )
            rows = listing(url)
            assert sorted(rows) == ids
            assert rows["XHA-W07"]["window"] == "07" and rows["XHA-W07"]["version"]
            assert rows["XHA-W07"]["heartbeatS"] == PERIOD_S and rows["XHA-W07"]["page"] == "ready"
            eventually(lambda: all(r["pending"] == 0 for r in listing(url).values()), PERIOD_S * 2, "uploads")

            # A settings change reaches every device and is reported applied within 2 periods.
            reasons = [{"code": "A1", "label": "窗口无人", "group": "服务效率"}]
            changed_at = time.time()
            r = requests.put(
                f"{url}/api/v1/manage/settings",
                json={"scope": "*", "settings": {"ui.thanks_s": 7, "reasons": reasons}},
                headers=AUTH,
                timeout=10,
            )
            assert r.status_code == 200, r.text
            wanted = listing(url)["XHA-W01"]["settings"]["wanted"]
            eventually(
                lambda: all(d["settings"]["applied"] == wanted for d in listing(url).values()),
                timeout_s=2 * PERIOD_S + 1,
                what="the new settings applied everywhere",
            )
            # Each device reported the new version in a heartbeat the hub received by its lastSeen (read now,
            # as the test sees every device applied): the hub's clock, not the test's polling. lastSeen is in
            # whole seconds, so the report came before lastSeen + 1 s.
            reported = max(datetime.fromisoformat(d["lastSeen"]).timestamp() for d in listing(url).values())
            elapsed = reported + 1 - changed_at
            assert elapsed <= 2 * PERIOD_S, elapsed
            assert all(d.applied[-1] == {"version": wanted, "thanks_s": 7} for d in devices)

            # A bad setting is refused at the hub with the reason, and never reaches a device.
            r = requests.put(
                f"{url}/api/v1/manage/settings",
                json={"scope": "*", "settings": {"ui.thanks_s": 0}},
                headers=AUTH,
                timeout=10,
            )
            assert r.status_code == 422 and "ui.thanks_s: expected 1 to 60, got 0" in r.json()["detail"]
            assert listing(url)["XHA-W01"]["settings"]["wanted"] == wanted
            wait_until(
                lambda: all(d.agent.heartbeat.answer.get("settings_version") == wanted for d in devices),
                timeout_s=2 * PERIOD_S,
                what="a heartbeat after the refusal",
            )
            for d in devices:
                assert d.log.get_state(SETTINGS_KEY)["settings"]["ui.thanks_s"] == 7
                assert all(a["thanks_s"] != 0 for a in d.applied)

            # One device killed: offline within 3 periods of its last heartbeat, one alert, the rest online.
            victim = devices[4]
            victim.kill()
            killed_at = time.time()
            eventually(
                lambda: not listing(url)[victim.id]["online"],
                timeout_s=3 * PERIOD_S + 2,
                what="the killed device offline",
            )
            assert time.time() - killed_at <= 3 * PERIOD_S + 1
            raised = f"device alarm device_offline raised: {victim.id}"
            eventually(lambda: raised in hub_log.read_text(), PERIOD_S, "the offline alarm")
            rows = listing(url)
            assert [a["event"] for a in rows[victim.id]["alarms"]] == ["device_offline"]
            assert sum(r["online"] for r in rows.values()) == DEVICES - 1
            detail = requests.get(f"{url}/api/v1/manage/devices/{victim.id}", headers=AUTH, timeout=10).json()
            assert [(a["event"], a["state"]) for a in detail["alarmHistory"]] == [
                ("device_offline", "raised")
            ]
            assert hub_log.read_text().count(raised) == 1
            assert "device_offline raised" not in hub_log.read_text().replace(raised, "")
        finally:
            for d in devices:
                d.close()


def test_a_hub_without_heartbeats_never_slows_uploads(tmp_path, caplog, monkeypatch):
    """A hub from before the fleet (its heartbeat and settings paths answer 404): the agent notes it once
    and uploads as fast as ever."""
    monkeypatch.setattr(fleet_routes, "install", lambda app, **options: None)  # the hub without the fleet
    with thread_hub(tmp_path / "hub") as hub, EventLog(tmp_path / "kiosk.db") as log:
        secret = register(hub.store)
        fill_log(log, 50)
        agents: list[SyncAgent] = []
        stop = threading.Event()

        def run() -> None:
            with EventLog(tmp_path / "kiosk.db") as own:
                agents.append(
                    SyncAgent(own, HubClient(hub.url, DEVICE, secret), heartbeat_s=PERIOD_S, batch_events=10)
                )
                agents[0].run(stop)

        thread = threading.Thread(target=run, daemon=True)
        with caplog.at_level("INFO", logger="sync"):
            thread.start()
            try:
                agent = wait_until(lambda: agents and agents[0], what="the agent")
                wait_until(
                    lambda: hub.store.acked_seq(DEVICE, log.log_id) == 50, timeout_s=10, what="the upload"
                )
                wait_until(lambda: agent.heartbeat.hub_lacks_heartbeat, what="the 404 noted")
                wait_until(lambda: agent.settings.hub_lacks_settings, what="the 404 noted")
                fill_log(log, 5, seed=1)
                wait_until(
                    lambda: hub.store.acked_seq(DEVICE, log.log_id) == 55, timeout_s=5, what="new events"
                )
            finally:
                stop.set()
                thread.join(10)
        assert agent.state == "ok" and agent.alarm is None
        notes = [r.getMessage() for r in caplog.records if "HTTP 404" in r.getMessage()]
        assert len(notes) == 2  # once each, not once a period


def test_two_sync_agents_on_one_log(tmp_path):
    """`kiosk sync` holds a lock on its log: a second one exits 1 with one line, the first runs on."""
    config = write_kiosk_config(tmp_path, "http://127.0.0.1:9", b"k" * 16)
    env = {**agent_env(), "KIOSK_CONFIG": str(config)}
    first = subprocess.Popen(
        [sys.executable, "-m", "commands.cli", "sync"], cwd=ROOT, env=env, stderr=subprocess.PIPE
    )
    try:
        wait_until(lambda: (tmp_path / "kiosk.db.sync.lock").exists(), what="the first agent's lock")
        second = subprocess.run(
            [sys.executable, "-m", "commands.cli", "sync"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode == 1
        assert second.stderr.strip().splitlines() == [
            f"kiosk sync: another kiosk sync is already running on {tmp_path / 'kiosk.db'}"
        ]
        assert first.poll() is None
    finally:
        first.terminate()
        first.wait(10)


def test_fleet_routes_refuse_what_they_must(tmp_path, caplog):
    """Heartbeats and settings are signed device requests for the device's own path; the management
    routes need the operator; settings are per scope, checked, and served with their ETag."""
    with thread_hub(tmp_path / "hub") as hub:
        secret = register(hub.store)
        other = register(hub.store, "XHA-W04")
        desk = hub.app_desk
        desk.add_section("S1", "行政审批科")
        desk.set_device_section("XHA-W04", "S1")
        users = {}
        for name, role, dept in (("adm", "admin", None), ("d1", "dept", "S1"), ("v", "viewer", None)):
            desk.add_user(name, role, dept)
            users[name] = {"Authorization": f"Bearer {desk.new_token(name)}"}
        auth = users["adm"]
        target = f"/api/v1/devices/{DEVICE}/heartbeat"
        beat = hub.url + target

        def signed(key: bytes, data: bytes, device: str = DEVICE) -> dict:
            return signed_headers(key, data, device, target=target)

        body = b'{"window": "03", "heartbeat_s": 5, "pending": 0}'
        with caplog.at_level("WARNING", logger="hub"):
            r = requests.post(beat, data=body, headers=signed(b"wrong", body), timeout=5)
        assert r.status_code == 401
        refusal = [m for m in caplog.messages if m.startswith(f"device '{DEVICE}' refused")]
        assert len(refusal) == 1 and "/heartbeat" in refusal[0] and "hub.db" in refusal[0]
        r = requests.post(beat, data=body, headers=signed(other, body, "XHA-W04"), timeout=5)
        assert r.status_code == 403
        r = requests.post(beat, data=b"[1, NaN]", headers=signed(secret, b"[1, NaN]"), timeout=5)
        assert r.status_code == 400
        r = requests.post(beat, data=body, headers=signed(secret, body), timeout=5)
        assert r.status_code == 200 and r.json()["settings_version"]

        manage = f"{hub.url}/api/v1/manage"
        assert requests.get(f"{manage}/devices", timeout=5).status_code == 401
        assert requests.get(f"{manage}/devices", headers=users["v"], timeout=5).status_code == 403
        own = requests.get(f"{manage}/devices", headers=users["d1"], timeout=5).json()["devices"]
        assert [d["id"] for d in own] == ["XHA-W04"]  # a dept user: its own section's devices only
        rows = {
            d["id"]: d for d in requests.get(f"{manage}/devices", headers=auth, timeout=5).json()["devices"]
        }
        assert rows[DEVICE]["online"] and rows[DEVICE]["window"] == "03" and rows[DEVICE]["heartbeatS"] == 5
        assert not rows["XHA-W04"]["online"] and rows["XHA-W04"]["lastSeen"] is None
        assert rows["XHA-W04"]["dept"] == "S1" and rows[DEVICE]["dept"] == ""

        def put(scope, settings, who=auth):
            return requests.put(
                f"{manage}/settings", json={"scope": scope, "settings": settings}, headers=who, timeout=5
            )

        assert put("*", {"ui.thanks_s": 4}, users["d1"]).status_code == 403

        assert (
            requests.put(f"{manage}/settings", json={"scope": "*", "settings": {}}, timeout=5).status_code
            == 401
        )
        assert put("window:3", {}).status_code == 422
        assert put("device:NOPE", {"ui.walkin": True}).status_code == 404
        assert put("*", {"ui.thanks_s": 4}).status_code == 200
        assert put("dept:S1", {"ui.thanks_s": 5, "ui.walkin": True}).status_code == 200
        assert put(f"device:{DEVICE}", {"qr.ttl_s": 300}).status_code == 200

        def settings_of(device, key, path_of=None, **headers):
            path = f"/api/v1/devices/{path_of or device}/settings"
            signature = signed_headers(key, b"", device, method="GET", target=path)
            return requests.get(hub.url + path, headers={**signature, **headers}, timeout=5)

        mine = settings_of(DEVICE, secret)
        assert mine.json()["settings"] == {"ui.thanks_s": 4, "qr.ttl_s": 300}
        assert settings_of("XHA-W04", other).json()["settings"] == {"ui.thanks_s": 5, "ui.walkin": True}
        assert settings_of(DEVICE, secret, **{"If-None-Match": mine.headers["ETag"]}).status_code == 304
        assert settings_of(DEVICE, other).status_code == 401
        assert settings_of("XHA-W04", other, path_of=DEVICE).status_code == 403
        history = requests.get(f"{manage}/settings", params={"scope": "*"}, headers=auth, timeout=5).json()
        assert [v["settings"] for v in history["versions"]] == [{"ui.thanks_s": 4}]
        assert "ui.thanks_s" in history["keys"]


def test_a_new_empty_hub_database_is_announced_loudly(tmp_path, caplog):
    with caplog.at_level("WARNING", logger="hub"):
        HubStore(database_url(tmp_path / "first", None)).close()
        HubStore(database_url(tmp_path / "first", None)).close()
    warnings = [m for m in caplog.messages if m.startswith("NEW EMPTY DATABASE")]
    assert len(warnings) == 1 and str(tmp_path / "first" / "hub.db") in warnings[0]


def test_device_offline_reaches_the_desks_alert_channels(tmp_path):
    """The fleet's device_offline goes into the desk's alert queue ([[alerts]]), once per silence."""
    target = AlertTarget("webhook", "http://127.0.0.1:9/alerts", ("device_offline",))
    store = HubStore(database_url(tmp_path / "hub", None))
    try:
        app = create_app(store, desk=DeskSettings(alerts=(target,)))
        store.add_device(DEVICE)
        clock = [1_800_000_000.0]
        app.state.fleet.clock = lambda: clock[0]
        monitor = app.state.fleet_monitor
        app.state.fleet.record_heartbeat(DEVICE, {"window": "03", "heartbeat_s": 5})
        clock[0] += 16
        monitor.judge()
        monitor.judge()
        with store.engine.connect() as conn:
            queued = conn.execute(select(desk_alerts.c.event, desk_alerts.c.subject)).all()
        assert [(event, subject.split(":")[1]) for event, subject in queued] == [("device_offline", DEVICE)]
    finally:
        store.close()


def test_the_sweep_judges_from_its_copies_what_it_judges_from_a_fresh_read(tmp_path):
    """The sweep reads again only the reports received since it last looked and takes again the
    conditions of devices still online on the same report; alarms raised and cleared over heartbeats,
    silences and new reports are the same as a monitor reading everything every time."""
    clock = [1_800_000_000.0]
    stores = [HubStore(database_url(tmp_path / name, None)) for name in ("copies", "fresh")]
    try:
        monitors = []
        for store in stores:
            app = create_app(store)
            app.state.fleet.clock = lambda: clock[0]
            monitors.append((app.state.fleet, app.state.fleet_monitor))
            for d in range(4):
                store.add_device(f"{DEVICE}-{d}")
        steps = [
            {0: {"heartbeat_s": 5}, 1: {"heartbeat_s": 5}, 2: {"heartbeat_s": 60}},
            {1: {"heartbeat_s": 5, "disk_free_bytes": 1, "disk_total_bytes": 2**34}},
            {},  # 0 and 1 fall silent (5 s period), 2 does not (60 s)
            {0: {"heartbeat_s": 5}, 3: {"heartbeat_s": 5, "clock_offset_s": 900}},
            {1: {"heartbeat_s": 5}},
            {},
        ]
        for step in steps:
            for fleet, _monitor in monitors:
                for d, report in step.items():
                    fleet.record_heartbeat(f"{DEVICE}-{d}", {"window": "03", **report})
            for n, (_fleet, monitor) in enumerate(monitors):
                if n == 1:
                    monitor._seen, monitor._online = {}, {}  # the other reads everything every time
                monitor.judge()
            assert monitors[0][0].raised_alarms() == monitors[1][0].raised_alarms()
            clock[0] += 16
        raised = monitors[0][0].raised_alarms()
        assert set(raised) == {f"{DEVICE}-{d}" for d in (0, 1, 3)}  # 0: offline; 1: offline, disk; 3: clock
    finally:
        for store in stores:
            store.close()

"""The fleet's tables and queries on PostgreSQL (skipped without ``KIOSK_TEST_PG_URL``): heartbeats kept
and bounded, settings merged per scope, alarms raised once, the device list."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import insert, text
from test_hub_support import wipe_database

from hub import fleet as fleet_module
from hub.desk.tables import device_sections, sections
from hub.fleet import Fleet, FleetMonitor
from hub.storage import HubStore

PG_URL = os.environ.get("KIOSK_TEST_PG_URL")
pytestmark = pytest.mark.skipif(not PG_URL, reason="KIOSK_TEST_PG_URL is not set (see .ci/postgres.sh)")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store():
    wipe_database(PG_URL)
    s = HubStore(PG_URL)
    yield s
    s.close()


def test_the_fleet_on_postgresql(store, monkeypatch):
    monkeypatch.setattr(fleet_module, "HISTORY_PER_DEVICE", 3)
    store.add_device("W01")
    store.add_device("W02")
    with store.engine.begin() as conn:  # W01 in section S1, as `kiosk hub device add W01 --dept S1` does
        conn.execute(insert(sections).values(code="S1", name="行政审批科", created_at="2026-11-29T00:00:00Z"))
        conn.execute(insert(device_sections).values(device_id="W01", dept="S1", at="2026-11-29T00:00:00Z"))
    clock = Clock()
    fleet = Fleet(store, clock)
    monitor = FleetMonitor(fleet, sweep_s=1)
    for i in range(5):
        fleet.record_heartbeat("W01", {"window": "01", "heartbeat_s": 5, "pending": i, "version": "0.2.0"})
    assert [h["report"]["pending"] for h in fleet.history("W01")] == [4, 3, 2]  # the newest 3 only
    fleet.set_settings("*", {"ui.thanks_s": 4}, by="test")
    fleet.set_settings("dept:S1", {"ui.walkin": True}, by="test")
    _, merged = fleet.settings_for("W01")
    assert merged == {"ui.thanks_s": 4, "ui.walkin": True}
    assert fleet.settings_for("W02")[1] == {"ui.thanks_s": 4}
    rows = {d["id"]: d for d in fleet.devices()}
    assert rows["W01"]["online"] and not rows["W02"]["online"] and rows["W01"]["pending"] == 4
    assert rows["W01"]["dept"] == "S1" and [d["id"] for d in fleet.devices(dept="S1")] == ["W01"]
    clock.now += 16
    monitor.judge()
    monitor.judge()
    assert [(a.event, a.state, a.device_id) for a in monitor.delivered] == [
        ("device_offline", "raised", "W01")
    ]
    fleet.record_heartbeat("W01", {"window": "01", "heartbeat_s": 5})
    monitor.judge("W01")
    assert [a.state for a in monitor.delivered] == ["raised", "cleared"]
    assert fleet.raised_alarms() == {}


def test_two_hub_processes_judging_at_once_raise_each_alarm_once(store):
    """Two hubs on one PostgreSQL (each its own engine and monitor, as two processes) sweep at the same
    moment, again and again: every offline device gets one alarm row and one alert, not two."""
    import threading

    other = HubStore(PG_URL)
    try:
        clock = Clock()
        fleets = [Fleet(store, clock), Fleet(other, clock)]
        monitors = [FleetMonitor(f, sweep_s=1) for f in fleets]
        for round_ in range(8):
            device = f"W{round_:02d}"
            store.add_device(device)
            fleets[0].record_heartbeat(device, {"window": "01", "heartbeat_s": 5})
            clock.now += 16  # every device seen so far is offline now
            together = threading.Barrier(2)

            def sweep(monitor, together=together):
                together.wait()
                monitor.judge()

            threads = [threading.Thread(target=sweep, args=(m,)) for m in monitors]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        delivered = [(a.device_id, a.state) for m in monitors for a in m.delivered]
        assert sorted(delivered) == [(f"W{i:02d}", "raised") for i in range(8)]
        with store.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT device_id, count(*) FROM device_alarms GROUP BY device_id")
            ).all()
        assert sorted(rows) == [(f"W{i:02d}", 1) for i in range(8)]
    finally:
        other.close()


def test_a_round_held_by_one_process_is_skipped_by_another(store):
    from hub.once import exclusive

    other = HubStore(PG_URL)
    try:
        with (
            exclusive(store.engine, "desk-alerts", wait=False) as first,
            exclusive(other.engine, "desk-alerts", wait=False) as second,
        ):
            assert first and not second
        with exclusive(other.engine, "desk-alerts", wait=False) as again:
            assert again  # released with its transaction
    finally:
        other.close()

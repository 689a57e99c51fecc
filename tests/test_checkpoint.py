"""Start-up from a checkpoint: the kiosk saves its flow state and figures beside the log, a restart from
them equals a restart from the whole log, and a checkpoint that does not match the chain (or cannot be
read) is ignored for a full replay. The flow's own equality under random histories is in
tests/test_flow_stateful.py."""

from __future__ import annotations

import logging
import sqlite3
import time

import pytest
from test_app import CASE_NO, STAFF_CARD, write_config

from core.store import EventLog
from kiosk import checkpoint
from kiosk.app import create_window
from kiosk.flow import DEBOUNCE_S, HISTORY_TYPES, Flow
from kiosk.stats import WindowStats


def run_kiosk(qtbot, config, ratings: int):
    """A kiosk that signs in, rates ``ratings`` cases (the last one left open) and closes."""
    window = create_window(config)
    qtbot.addWidget(window)
    kiosk = window.kiosk
    now = time.monotonic()
    kiosk.flow.swipe(STAFF_CARD, now)
    for i in range(ratings + 1):
        now += 300
        kiosk.flow.call(f"A{i:03d}", now)
        kiosk.flow.rate_request(
            ticket_no=None,
            case_no=f"{CASE_NO}{i}",
            item_code=None,
            item_name="不动产登记",
            source="scanner",
            now=now,
        )
        if i < ratings:
            assert kiosk.flow.press(1 + i % 5, "touch", now + DEBOUNCE_S + 0.1)
            kiosk.flow.tick(now + 100)  # the reasons run out
            kiosk.flow.tick(now + 200)  # and the thanks
    kiosk.close()
    return window


def full_replay(store_path, window_no="03"):
    """What a kiosk without checkpoints rebuilds (on a copy: a restart writes)."""
    with EventLog(store_path) as log:
        events = list(log.events_after(0))
        stats = WindowStats(window_no)
        stats.update_from(log)
    written = []
    flow = Flow(
        record=lambda t, p: written.append((t, p)) or {"seq": events[-1]["seq"] + len(written)},
        find_staff=lambda card: None,
        window=window_no,
        rating_timeout_s=30,
        thanks_s=3,
        now=time.monotonic(),
        history=[e for e in events if e["type"] in HISTORY_TYPES],
    )
    return flow.durable_state(), stats.snapshot(), written


def test_a_restart_from_the_checkpoint_equals_a_full_replay(qtbot, tmp_path):
    config = write_config(tmp_path, None, hub=False)
    first = run_kiosk(qtbot, config, ratings=12)
    store = first.kiosk.config.store_path
    with EventLog(store) as log:
        saved = checkpoint.load(log)
        assert saved is not None and saved.seq == log.head_seq()  # saved when the kiosk closed
    _, expected_stats, expected_writes = full_replay(store)
    assert expected_writes == [
        ("rating_skipped", {"case_seq": saved.flow["open_case"]["seq"], "why": "restart"})
    ]
    window = create_window(config)
    qtbot.addWidget(window)
    try:
        kiosk = window.kiosk
        with EventLog(store) as log:
            restarted = [(e["type"], e["payload"]) for e in log.events_after(saved.seq)]
        assert restarted == expected_writes  # the same restart, from the checkpoint
        replayed_flow, replayed_stats, _ = full_replay(store)  # the log now, restart included
        assert kiosk.flow.durable_state() == replayed_flow
        assert kiosk.stats.snapshot() == replayed_stats == expected_stats
        assert kiosk.stats.month(time.strftime("%Y-%m")).count == 12
    finally:
        window.kiosk.close()


@pytest.mark.parametrize(
    "damage",
    ["bad_hash", "future_seq", "not_json", "bad_flow", "bad_stats", "broken_tail", "old_version"],
)
def test_a_checkpoint_that_does_not_match_is_ignored_for_a_full_replay(qtbot, tmp_path, caplog, damage):
    config = write_config(tmp_path, None, hub=False)
    first = run_kiosk(qtbot, config, ratings=5)
    store = first.kiosk.config.store_path
    expected_flow, expected_stats, _ = full_replay(store)
    with EventLog(store) as log:
        saved = log.get_state(checkpoint.CHECKPOINT_KEY)
        if damage == "bad_hash":
            saved["hash"] = "0" * 64
        elif damage == "future_seq":
            saved["seq"] = log.head_seq() + 5
        elif damage == "bad_flow":
            saved["flow"]["rated"] = [1, 2, 3]
        elif damage == "bad_stats":
            saved["stats"]["months"] = {"2026-11": [1, 5]}  # more satisfied than rated: invented
        elif damage == "old_version":
            saved["version"] = 0
        elif damage == "broken_tail":
            saved["seq"] -= 3  # an earlier anchor, but the events after it are tampered with below
        log.set_state(checkpoint.CHECKPOINT_KEY, saved)
    if damage == "not_json":
        with sqlite3.connect(store) as raw:
            raw.execute("UPDATE state SET value = '{not json' WHERE key = ?", [checkpoint.CHECKPOINT_KEY])
    if damage == "broken_tail":
        with sqlite3.connect(store) as raw:  # rewrite history behind the log's back (triggers off)
            raw.execute("DROP TRIGGER events_no_update")
            raw.execute(
                "UPDATE events SET payload = replace(payload, '不动产', '伪造') WHERE seq = ?",
                [saved["seq"] + 1],
            )
    caplog.set_level(logging.WARNING)
    window = create_window(config)
    qtbot.addWidget(window)
    try:
        assert "checkpoint not used" in caplog.text
        if damage != "broken_tail":  # a rewritten event changes what a full replay says, as it should
            assert window.kiosk.stats.snapshot() == expected_stats
            assert window.kiosk.flow.durable_state()["rated"] == expected_flow["rated"]
    finally:
        window.kiosk.close()
    with EventLog(store) as log:
        assert checkpoint.load(log) is not None or damage == "broken_tail"  # a good one saved again


def test_an_empty_log_needs_no_checkpoint(tmp_path):
    with EventLog(tmp_path / "kiosk.db") as log:
        checkpoint.save(log, 0, {}, {})
        assert checkpoint.load(log) is None

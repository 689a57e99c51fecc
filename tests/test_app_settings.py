"""Remote settings in the running kiosk (Qt offscreen, pseudo-terminal devices, a real log): applied at
the next idle page without a restart, a key written in kiosk.toml kept, a bad set refused with the last
good one kept, and what was applied published for the agent's heartbeat."""

from __future__ import annotations

import os
import subprocess
import sys

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton
from test_app import STAFF_CARD, kiosk, sign_in_and_request, sim, wait_page  # noqa: F401  (fixtures)

from core.settings import settings_version
from core.store import EventLog
from kiosk.remote import KIOSK_KEY, SETTINGS_KEY

NEW_REASONS = [{"code": "A1", "label": "窗口无人", "group": "服务效率"}]


def cache_settings(window, settings: dict) -> str:
    """What the sync agent does with settings it pulled: another process, another connection."""
    version = settings_version(settings)
    with EventLog(window.kiosk.config.store_path) as agent_log:
        agent_log.set_state(SETTINGS_KEY, {"version": version, "etag": f'"{version}"', "settings": settings})
    return version


def published(window) -> dict:
    with EventLog(window.kiosk.config.store_path) as log:
        return log.get_state(KIOSK_KEY) or {}


def test_remote_settings_wait_for_an_idle_page_and_a_file_key_wins(qtbot, kiosk, sim):  # noqa: F811
    window = kiosk
    window.kiosk.roster_timer.setInterval(50)  # the check's work, without waiting a whole period
    sign_in_and_request(qtbot, window, sim)
    settings = {"reasons": NEW_REASONS, "ui.thanks_s": 9, "ui.reasons_timeout_s": 20, "qr.ttl_s": 120}
    version = cache_settings(window, settings)
    qtbot.wait(300)
    # A citizen is rating: nothing changes under them.
    assert window.kiosk.remote.version is None and window.findChild(QPushButton, "reason_A1") is None
    sim.press(1)
    wait_page(qtbot, window, "reasons")
    assert window.findChild(QPushButton, "reason_101") is not None  # the catalogue they started with
    qtbot.mouseClick(window.findChild(QPushButton, "reasons_skip"), Qt.MouseButton.LeftButton)
    wait_page(qtbot, window, "thanks")
    window.kiosk.clock.advance(3.5)  # the file's thanks_s (3)
    wait_page(qtbot, window, "ready")
    qtbot.waitUntil(lambda: window.kiosk.remote.version == version, timeout=5000)
    # Applied without a restart; [ui] thanks_s is written in kiosk.toml, so the file's 3 stays.
    assert window.findChild(QPushButton, "reason_A1") is not None
    assert list(window.pages["reasons"].reason_buttons) == ["A1"]
    qtbot.waitUntil(
        lambda: window.findChild(QPushButton, "reason_101") is None
    )  # the old page, deleted later
    config = window.kiosk.config
    assert (config.ui.thanks_s, config.ui.reasons_timeout_s, config.qr.ttl_s) == (3, 20, 120)
    assert window.kiosk.remote.local == ("ui.thanks_s",)
    state = published(window)
    assert state["settings_version"] == version and state["settings_error"] is None
    assert state["page"] == "ready" and state["settings_local"] == ["ui.thanks_s"]
    assert ("远程设置", f"版本 {version} · 本机配置优先：ui.thanks_s") in window.kiosk.admin_facts()

    # The next 差评 offers the new catalogue and waits the new reasons timeout.
    sim.rate("370211202611280099")
    wait_page(qtbot, window, "rate")
    window.kiosk.clock.advance(1)
    sim.press(2)
    wait_page(qtbot, window, "reasons")
    qtbot.mouseClick(window.findChild(QPushButton, "reason_A1"), Qt.MouseButton.LeftButton)
    window.kiosk.clock.advance(21)
    wait_page(qtbot, window, "thanks")
    with EventLog(config.store_path) as log:
        detail = list(log.events_after(0, types=("rating_detail",)))[-1]
    assert detail["payload"]["reasons"] == ["A1"]


def test_a_bad_remote_set_keeps_the_last_good_one(qtbot, kiosk, sim):  # noqa: F811
    window = kiosk
    window.kiosk.roster_timer.setInterval(50)
    good = cache_settings(window, {"reasons": NEW_REASONS})
    qtbot.waitUntil(lambda: window.kiosk.remote.version == good, timeout=5000)
    bad = cache_settings(window, {"ui.rating_timeout_s": 1, "reasons": []})
    qtbot.waitUntil(lambda: window.kiosk.remote.error is not None, timeout=5000)
    assert bad in window.kiosk.remote.error and "the last good ones stay" in window.kiosk.remote.error
    assert window.kiosk.remote.version == good
    assert window.findChild(QPushButton, "reason_A1") is not None
    state = published(window)
    assert state["settings_version"] == good and bad in state["settings_error"]


def test_kiosk_run_without_a_display_exits_2_with_one_line(tmp_path):
    """Before Qt starts: Qt itself would abort with "xcb-cursor0 is needed", which sends a technician
    hunting for a library."""
    config = tmp_path / "kiosk.toml"
    config.write_text('[device]\nid = "X"\nwindow = "01"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run(
        [sys.executable, "-m", "commands.cli", "run", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DISPLAY is not set" in lines[0] and "kiosk doctor" in lines[0]
    assert not (tmp_path / "kiosk.db").exists()  # nothing started

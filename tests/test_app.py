"""The wired evaluator (``kiosk.app.create_window``) driven through pseudo-terminal devices
(``drivers.sim.Simulator``), a real SQLite event log and Qt offscreen: sign-in, rate requests, touch
and keypad ratings with their OK/NO answers, reasons with a sealed phone number, the QR code, timeouts,
faults, the admin panel, and ``kiosk run`` under a systemd notify socket."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zxingcpp
from nacl.public import PrivateKey
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QPushButton

from core import contact, qrtoken
from core.store import EventLog
from drivers.sim import Simulator
from kiosk.app import EXIT_RESTART, create_window
from kiosk.flow import DEBOUNCE_S

STAFF_CARD = "26DEFAE7"
OTHER_CARD = "0006102437"
CASE_NO = "370211202611280012"
SECRET = bytes(range(32))


class Clock:
    """The flow's monotonic clock, moved by the test: timeouts and the double-tap guard without waiting."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def write_config(folder: Path, sim: Simulator | None, *, walkin: bool = False, hub: bool = True) -> Path:
    (folder / "roster.csv").write_text(
        f"card,staff_no,name,title,photo\n{STAFF_CARD},S007,张三,综合窗口受理员,\n{OTHER_CARD},S008,李四,,\n",
        encoding="utf-8",
    )
    text = (
        '[device]\nid = "XHA-W03"\nwindow = "03"\nhall = "测试大厅"\n'
        '[roster]\npath = "roster.csv"\n'
        f"[ui]\nfullscreen = false\nrating_timeout_s = 30\nthanks_s = 3\nwalkin = {str(walkin).lower()}\n"
    )
    if hub:
        private = PrivateKey.generate()
        (folder / "hub.key").write_text(bytes(private).hex())
        (folder / "hub.pub").write_text(bytes(private.public_key).hex())
        (folder / "device.key").write_text(SECRET.hex() + "\n")
        text += (
            '[hub]\nurl = "http://127.0.0.1:8700"\nsecret_file = "device.key"\npublic_key_file = "hub.pub"\n'
        )
    if sim is not None:
        text += sim.config_fragment()
    path = folder / "kiosk.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def sim(tmp_path):
    with Simulator(tmp_path / "dev") as simulator:
        yield simulator


@pytest.fixture
def kiosk(qtbot, tmp_path, sim):
    window = open_window(qtbot, write_config(tmp_path, sim))
    wait_for_ports(qtbot, window)
    yield window
    window.kiosk.close()


def wait_for_ports(qtbot, window) -> None:
    """Until this kiosk reads from all its ports (its own port states, not whether anyone holds the
    pseudo-terminals); a timeout says what each port is doing."""
    statuses = window.kiosk.devices.status
    try:
        qtbot.waitUntil(lambda: all(s.state == "connected" for s in statuses()), timeout=10_000)
    except Exception:
        pytest.fail("the kiosk's ports: " + "; ".join(f"{s.name} {s.state} ({s.detail})" for s in statuses()))


def open_window(qtbot, config: Path):
    window = create_window(config)
    qtbot.addWidget(window)
    window.kiosk.clock = Clock()
    window.resize(1280, 800)
    window.show()
    qtbot.waitExposed(window)
    return window


def log_types(window) -> list[str]:
    with EventLog(window.kiosk.config.store_path) as log:
        return [e["type"] for e in log.events_after(0)]


def last_event(window, type_: str) -> dict:
    with EventLog(window.kiosk.config.store_path) as log:
        return [e for e in log.events_after(0, types=(type_,))][-1]


def wait_page(qtbot, window, page: str) -> None:
    qtbot.waitUntil(lambda: window.current_page() == page, timeout=5000)


def sign_in_and_request(qtbot, window, sim) -> None:
    sim.swipe(STAFF_CARD)
    wait_page(qtbot, window, "ready")
    sim.rate(CASE_NO, ticket="A012", item_code="11370211MB0001234X", item_name="不动产登记")
    wait_page(qtbot, window, "rate")
    window.kiosk.clock.advance(DEBOUNCE_S + 0.05)  # a press this soon after the page appeared is a stray tap


def keypad_answers(qtbot, sim, count: int) -> list[str]:
    answers: list[str] = []
    qtbot.waitUntil(lambda: answers.extend(sim.keypad_answers()) or len(answers) >= count, timeout=5000)
    return answers


def test_swipe_request_and_keypad_rating_reach_the_log_before_the_thanks_page(qtbot, kiosk, sim):
    window = kiosk
    assert window.current_page() == "paused"
    sign_in_and_request(qtbot, window, sim)
    ready = window.pages["ready"]
    assert ready.name.text() == "张三" and ready.staff_no.text() == "工号 S007"
    rate = window.pages["rate"]
    assert rate.item.text() == "办理事项：不动产登记" and "3702**********0012" in rate.case.text()

    # What the log holds at the moment the thanks page becomes current.
    seen_at_thanks = []
    window.stack.currentChanged.connect(
        lambda _: window.current_page() == "thanks" and seen_at_thanks.append(log_types(window))
    )
    sim.press(5)
    wait_page(qtbot, window, "thanks")
    assert seen_at_thanks[0][-1] == "rating"
    assert keypad_answers(qtbot, sim, 1) == ["OK5"]
    rating = last_event(window, "rating")["payload"]
    assert rating == {
        "case_seq": last_event(window, "case_opened")["seq"],
        "staff_no": "S007",
        "staff_name": "张三",
        "window": "03",
        "ticket_no": "A012",
        "case_no": CASE_NO,
        "item_code": "11370211MB0001234X",
        "item_name": "不动产登记",
        "satisfaction": 5,
        "input": "keypad",
    }
    assert window.pages["thanks"].level.text() == "您的评价：非常满意"
    assert window.pages["ready"].count_value.text() == "1 次"

    # One rating per case: another key is refused.
    window.kiosk.clock.advance(DEBOUNCE_S + 0.05)
    sim.press(4)
    assert keypad_answers(qtbot, sim, 1) == ["NO"]
    assert log_types(window).count("rating") == 1


def test_keypad_without_an_open_case_answers_no(qtbot, kiosk, sim):
    sim.press(3)
    assert keypad_answers(qtbot, sim, 1) == ["NO"]
    assert "rating" not in log_types(kiosk)


def test_bad_touch_rating_asks_for_reasons_and_seals_the_phone(qtbot, kiosk, sim, tmp_path):
    window = kiosk
    sign_in_and_request(qtbot, window, sim)
    qtbot.mouseClick(window.pages["rate"].findChild(QAbstractButton, "rate_2"), Qt.MouseButton.LeftButton)
    wait_page(qtbot, window, "reasons")
    assert last_event(window, "rating")["payload"]["satisfaction"] == 2
    assert last_event(window, "rating")["payload"]["input"] == "touch"
    for name in ("reason_201", "reason_203"):
        qtbot.mouseClick(window.findChild(QPushButton, name), Qt.MouseButton.LeftButton)
    for digit in "13800138000":
        qtbot.mouseClick(window.findChild(QPushButton, f"phone_key_{digit}"), Qt.MouseButton.LeftButton)
    assert window.pages["reasons"].phone.text() == "138 0013 8000"
    qtbot.mouseClick(window.findChild(QPushButton, "reasons_submit"), Qt.MouseButton.LeftButton)
    wait_page(qtbot, window, "thanks")
    assert "整改" in window.pages["thanks"].note.text()  # reasons were given
    detail = last_event(window, "rating_detail")["payload"]
    assert detail["rating_seq"] == last_event(window, "rating")["seq"]
    assert detail["reasons"] == ["201", "203"]
    private = PrivateKey(bytes.fromhex((tmp_path / "hub.key").read_text()))
    assert contact.open_contact(detail["contact_sealed"], private) == "13800138000"
    with EventLog(window.kiosk.config.store_path) as log:
        raw = log.path.read_bytes()
    assert b"13800138000" not in raw  # only the sealed form is stored


def test_skipping_reasons_keeps_the_rating(qtbot, kiosk, sim):
    window = kiosk
    sign_in_and_request(qtbot, window, sim)
    sim.press(1)
    wait_page(qtbot, window, "reasons")
    assert keypad_answers(qtbot, sim, 1) == ["OK1"]
    qtbot.mouseClick(window.findChild(QPushButton, "reasons_skip"), Qt.MouseButton.LeftButton)
    wait_page(qtbot, window, "thanks")
    assert last_event(window, "rating_detail")["payload"] == {
        "rating_seq": last_event(window, "rating")["seq"],
        "reasons": [],
        "contact_sealed": None,
    }
    assert "整改" not in window.pages["thanks"].note.text()  # QA 15: nothing to rectify was named


def test_a_mistapped_bad_rating_is_changed_from_the_reasons_page(qtbot, kiosk, sim):
    """改评价: the 非常不满意 pressed by mistake becomes 满意 by a correction, never a second rating."""
    window = kiosk
    sign_in_and_request(qtbot, window, sim)
    sim.press(1)
    wait_page(qtbot, window, "reasons")
    assert keypad_answers(qtbot, sim, 1) == ["OK1"]
    rating = last_event(window, "rating")
    assert window.pages["ready"].count_value.text() == "1 次"
    qtbot.mouseClick(window.findChild(QPushButton, "reasons_change_rating"), Qt.MouseButton.LeftButton)
    wait_page(qtbot, window, "correct")
    correct = window.pages["correct"]
    assert correct.title.text() == "请重新选择您的评价" and "非常不满意" in correct.item.text()
    assert correct.holds_panel() and not correct.qr_box.isVisible()
    window.kiosk.clock.advance(DEBOUNCE_S + 0.05)
    qtbot.mouseClick(window.findChild(QAbstractButton, "rate_4"), Qt.MouseButton.LeftButton)
    wait_page(qtbot, window, "thanks")
    assert log_types(window)[-3:] == ["rating", "rating_corrected", "rating_detail"]
    assert last_event(window, "rating_corrected")["payload"] == {
        "rating_seq": rating["seq"],
        "satisfaction": 4,
        "input": "touch",
    }
    assert last_event(window, "rating_detail")["payload"]["reasons"] == []
    assert window.pages["thanks"].level.text() == "您的评价：满意"
    assert window.pages["ready"].rate_value.text() == "100.0%"  # the month counts the corrected level


def test_reasons_chosen_before_a_timeout_are_recorded(qtbot, kiosk, sim):
    """QA 7: a reason ticked, an incomplete phone number (submit stays off), then the time runs out."""
    window = kiosk
    sign_in_and_request(qtbot, window, sim)
    sim.press(2)
    wait_page(qtbot, window, "reasons")
    qtbot.mouseClick(window.findChild(QPushButton, "reason_101"), Qt.MouseButton.LeftButton)
    for digit in "12345":
        qtbot.mouseClick(window.findChild(QPushButton, f"phone_key_{digit}"), Qt.MouseButton.LeftButton)
    assert not window.pages["reasons"].submit.isEnabled()
    window.kiosk.clock.advance(window.kiosk.config.ui.reasons_timeout_s + 1)
    wait_page(qtbot, window, "thanks")
    assert last_event(window, "rating_detail")["payload"]["reasons"] == ["101"]
    assert "整改" in window.pages["thanks"].note.text()


def test_a_rate_request_closes_the_admin_pad(qtbot, kiosk, sim):
    """QA 6: five taps on the clock must not hide the rate page from the citizen."""
    window = kiosk
    sim.swipe(STAFF_CARD)
    wait_page(qtbot, window, "ready")
    window.admin.open_pin_pad()
    sim.rate(CASE_NO)
    wait_page(qtbot, window, "rate")
    assert not window.admin.isVisible()


def test_the_qr_code_on_the_rate_page_verifies_and_carries_the_case(qtbot, kiosk, sim, tmp_path):
    window = kiosk
    sign_in_and_request(qtbot, window, sim)
    shot = tmp_path / "rate.png"
    assert window.grab().save(str(shot))
    codes = zxingcpp.read_barcodes(Image.open(shot))
    assert len(codes) == 1
    url = codes[0].text
    base_url = "http://127.0.0.1:8700/q/"
    assert url.startswith(base_url)
    claims = qrtoken.verify_token(url.removeprefix(base_url), {"XHA-W03": SECRET}.get, int(time.time()))
    assert (claims.device_id, claims.window, claims.staff_no) == ("XHA-W03", "03", "S007")
    assert (claims.case_no, claims.item_code) == (CASE_NO, "11370211MB0001234X")

    # A new case gets a new code.
    sim.rate("370211202611280099")
    qtbot.waitUntil(lambda: window.pages["rate"].qr.url != url)
    token = window.pages["rate"].qr.url.removeprefix(base_url)
    assert (
        qrtoken.verify_token(token, {"XHA-W03": SECRET}.get, int(time.time())).case_no == "370211202611280099"
    )
    assert last_event(window, "rating_skipped")["payload"]["why"] == "superseded"


def test_a_rotated_device_secret_signs_the_next_qr_code(qtbot, kiosk, sim, tmp_path):
    window = kiosk
    sign_in_and_request(qtbot, window, sim)
    base_url = "http://127.0.0.1:8700/q/"
    old_url = window.pages["rate"].qr.url
    rotated = bytes(range(100, 132))
    (tmp_path / "device.key").write_text(rotated.hex() + "\n")  # `kiosk hub device add` again
    qtbot.waitUntil(lambda: window.pages["rate"].qr.url != old_url)
    token = window.pages["rate"].qr.url.removeprefix(base_url)
    assert qrtoken.verify_token(token, {"XHA-W03": rotated}.get, int(time.time())).case_no == CASE_NO


def test_the_qr_code_is_renewed_before_it_expires(qtbot, kiosk, sim):
    window = kiosk
    sign_in_and_request(qtbot, window, sim)
    first = window.pages["rate"].qr.url
    ttl = window.kiosk.config.qr.ttl_s
    window.kiosk.wall_clock = lambda: time.time() + ttl - 5  # within the renewal margin
    qtbot.waitUntil(lambda: window.pages["rate"].qr.url != first, timeout=5000)
    token = window.pages["rate"].qr.url.removeprefix("http://127.0.0.1:8700/q/")
    claims = qrtoken.verify_token(token, {"XHA-W03": SECRET}.get, int(time.time()) + ttl - 5)
    assert claims.case_no == CASE_NO and claims.issued_at >= int(time.time()) + ttl - 6


def test_the_rate_page_times_out_without_a_rating(qtbot, kiosk, sim):
    window = kiosk
    sign_in_and_request(qtbot, window, sim)
    window.kiosk.clock.advance(30)
    wait_page(qtbot, window, "ready")  # the tick timer saw the deadline pass
    assert last_event(window, "rating_skipped")["payload"]["why"] == "timeout"
    assert "rating" not in log_types(window)


def test_unknown_card_shows_a_notice_and_changes_nothing(qtbot, kiosk, sim):
    window = kiosk
    sim.swipe("12345678")
    qtbot.waitUntil(lambda: window.notice.isVisible())
    assert window.notice.text() == "未登记的工作人员卡，请联系管理员"
    assert window.current_page() == "paused"
    sim.swipe(OTHER_CARD)
    wait_page(qtbot, window, "ready")
    assert window.pages["ready"].name.text() == "李四"


def test_a_roster_the_agent_caches_reaches_the_running_kiosk(qtbot, kiosk, sim):
    window = kiosk
    new_card = "11223344"
    assert window.kiosk.roster.find(new_card) is None
    window.kiosk.roster_timer.setInterval(50)  # the check's work, without waiting a whole period
    # As the sync agent does after pulling a new roster: another process, another connection.
    with EventLog(window.kiosk.config.store_path) as agent_log:
        agent_log.replace_roster(
            "v2", [{"card": new_card, "staff_no": "S100", "name": "王五", "title": "新同事", "photo": None}]
        )
    qtbot.waitUntil(lambda: window.kiosk.roster.find(new_card) is not None, timeout=5000)
    sim.swipe(new_card)
    wait_page(qtbot, window, "ready")
    assert window.pages["ready"].name.text() == "王五"
    assert last_event(window, "staff_signin")["payload"] == {"staff_no": "S100", "staff_name": "王五"}
    # The local roster file still wins where both know a card, and still works beside the new one.
    assert window.kiosk.roster.find(STAFF_CARD).name == "张三"


def test_pause_resume_and_ticket_call(qtbot, kiosk, sim):
    window = kiosk
    sim.swipe(OTHER_CARD)
    wait_page(qtbot, window, "ready")
    sim.pause()
    wait_page(qtbot, window, "paused")
    sim.resume()
    wait_page(qtbot, window, "ready")
    sim.call("A015")
    qtbot.waitUntil(lambda: window.pages["ready"].called.isVisible())
    assert "A015" in window.pages["ready"].called.text()


def test_a_failing_log_is_shown_and_survived(qtbot, kiosk, sim):
    window = kiosk
    window.kiosk.log.close()  # every append now fails, as with a broken disk
    sim.swipe(STAFF_CARD)
    qtbot.waitUntil(lambda: window.notice.isVisible())
    assert window.notice.text() == "系统故障，请联系工作人员"
    assert window.current_page() == "paused"  # nothing happened that was not recorded
    sim.press(5)
    assert keypad_answers(qtbot, sim, 1) == ["NO"]


def test_admin_panel_facts_and_restart(qtbot, kiosk, sim, monkeypatch):
    facts = dict(kiosk.kiosk.admin_facts())
    assert facts["设备编号"] == "XHA-W03"
    assert facts["串口 card"].startswith("已连接")
    assert facts["串口 keypad"].startswith("已连接")
    assert facts["最近同步"] == "同步程序尚未运行"
    assert facts["待同步事件"].startswith("0")
    assert facts["二维码"] == "已启用"
    exits = []
    monkeypatch.setattr("kiosk.controller.QApplication.exit", exits.append)
    kiosk.restart_requested.emit()
    kiosk.exit_requested.emit()
    assert exits == [EXIT_RESTART, 0]
    assert kiosk.close()  # the admin panel's restart and exit may close the window


def test_the_sync_line_shows_an_error_only_when_sync_is_not_ok(qtbot, kiosk, sim):
    """QA 18: "正常 · … ConnectionError" read as a fault; an old error stays in the state, not on screen."""
    state = {"state": "ok", "last_success_at": "2026-11-28T05:50:00", "last_error": "ConnectionError"}
    kiosk.kiosk.log.set_state("sync", state)
    assert dict(kiosk.kiosk.admin_facts())["最近同步"] == "正常 · 上次成功 2026-11-28T05:50:00"
    kiosk.kiosk.log.set_state("sync", state | {"state": "offline"})
    assert dict(kiosk.kiosk.admin_facts())["最近同步"].endswith("ConnectionError")


def test_walkin_without_devices_or_hub(qtbot, tmp_path):
    window = open_window(qtbot, write_config(tmp_path, None, walkin=True, hub=False))
    try:
        assert window.kiosk.devices.status() == []
        assert not window.pages["reasons"].contact_card.isVisibleTo(window.pages["reasons"])
        assert dict(window.kiosk.admin_facts())["二维码"].startswith("未启用")
        window.kiosk.flow.swipe(STAFF_CARD, window.kiosk.clock())  # as the card reader would
        window.kiosk._render()
        wait_page(qtbot, window, "ready")
        window.kiosk.clock.advance(DEBOUNCE_S + 0.05)
        qtbot.mouseClick(window.pages["ready"].panel.buttons[4], Qt.MouseButton.LeftButton)
        wait_page(qtbot, window, "thanks")
        assert last_event(window, "case_opened")["payload"]["source"] == "walkin"
        assert last_event(window, "rating")["payload"]["satisfaction"] == 4
    finally:
        window.kiosk.close()


def test_kiosk_run_notifies_systemd_and_stops_on_sigterm(tmp_path):
    config = write_config(tmp_path, None)
    notify_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.settimeout(30)
        env = os.environ | {
            "QT_QPA_PLATFORM": "offscreen",
            "NOTIFY_SOCKET": str(notify_path),
            "WATCHDOG_USEC": "400000",  # a ping every 0.2 s
        }
        env.pop("WATCHDOG_PID", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "commands.cli", "run", "--config", str(config), "--windowed"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            messages = set()
            while not {"READY=1", "WATCHDOG=1"} <= messages:
                messages.add(notify.recv(256).decode())
            # A second evaluator on the same log would close the first one's cases: refused.
            second = subprocess.run(
                [sys.executable, "-m", "commands.cli", "run", "--config", str(config), "--windowed"],
                env=env | {"NOTIFY_SOCKET": ""},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert second.returncode == 1
            assert "another kiosk is already running" in second.stderr
            proc.terminate()
            assert proc.wait(timeout=30) == 0
        finally:
            proc.kill()
            proc.communicate()


def test_a_bad_configuration_is_exit_2_even_without_a_display(tmp_path):
    config = tmp_path / "kiosk.toml"
    config.write_text('[device]\nid = "X"\nwindow = "01"\n[ui]\nthanks_s = "three"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run(
        [sys.executable, "-m", "commands.cli", "run", "--config", str(config)],
        env=env | {"QT_QPA_PLATFORM": "xcb"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "[ui] thanks_s: expected an integer" in result.stderr


def test_device_states_are_published_for_the_doctor(qtbot, kiosk, sim):
    sim.swipe(STAFF_CARD)
    wait_page(qtbot, kiosk, "ready")
    kiosk.kiosk._publish_device_status()  # the 10 s timer's work, without waiting for it
    with EventLog(kiosk.kiosk.config.store_path) as log:
        published = log.get_state("devices")
    by_name = {d["name"]: d for d in published["devices"]}
    assert set(by_name) == {"card", "ticket", "keypad"}
    assert by_name["card"]["state"] == "connected" and by_name["card"]["frames"] >= 1
    assert published["updated_at"] <= time.time()


def test_the_citizens_elderly_mode_gives_more_time_and_ends_with_their_visit(qtbot, kiosk, sim):
    window = kiosk
    sign_in_and_request(qtbot, window, sim)
    deadline = window.kiosk.flow.view.deadline
    assert window.rating_panel.buttons[5].text_items()[1].text == "5"  # a keypad is fitted: keys shown
    qtbot.mouseClick(window.findChild(QPushButton, "elderly_toggle"), Qt.MouseButton.LeftButton)
    assert window.elderly and window.metrics().elderly
    assert window.kiosk.flow.view.deadline == pytest.approx(deadline + 15)  # 30 s × 1.5
    qtbot.mouseClick(window.pages["rate"].findChild(QAbstractButton, "rate_5"), Qt.MouseButton.LeftButton)
    wait_page(qtbot, window, "thanks")
    window.kiosk.clock.advance(4)
    wait_page(qtbot, window, "ready")
    assert not window.elderly  # the next citizen starts as configured
    assert window.kiosk.flow.set_timeouts(30, 60, window.kiosk.clock()).page == "ready"


def test_without_a_touch_screen_the_reasons_page_offers_the_qr_code_and_gives_way(qtbot, tmp_path, sim):
    config = write_config(tmp_path, sim)
    config.write_text(config.read_text().replace("[ui]\n", "[ui]\ntouch_screen = false\n"))
    window = open_window(qtbot, config)
    try:
        qtbot.waitUntil(
            lambda: all(sim.is_open(name) for name in ("card", "ticket", "keypad")), timeout=10_000
        )
        sign_in_and_request(qtbot, window, sim)
        sim.press(1)  # 非常不满意 on the keypad: nobody can tick reasons at this window
        wait_page(qtbot, window, "reasons")
        page = window.pages["reasons"]
        assert page.qr_box.isVisible() and page.qr.url  # reasons can be added by phone
        assert not page.reasons_scroll.isVisible() and not page.submit.isVisible()
        sim.rate("370211202611280099", ticket="A013", item_code=None, item_name="户籍迁移")
        wait_page(qtbot, window, "rate")  # the next citizen at once
        assert window.kiosk.flow.view.case.case_no == "370211202611280099"
        assert last_event(window, "rating_detail")["payload"]["reasons"] == []
    finally:
        window.kiosk.close()


def test_a_notify_socket_nobody_reads_never_blocks(tmp_path, monkeypatch):
    """The watchdog ping runs on the GUI thread: a full notify queue loses pings, never freezes it."""
    from core import systemd

    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        start = time.monotonic()
        sent = [systemd.notify("WATCHDOG=1") for _ in range(500)]  # the queue holds far fewer
        assert time.monotonic() - start < 5
        assert sent[0] and not all(sent)


def test_remote_settings_switch_elderly_mode_and_the_voice_at_an_idle_page(qtbot, kiosk, sim):
    window = kiosk
    sim.swipe(STAFF_CARD)
    wait_page(qtbot, window, "ready")
    assert not window.elderly
    with EventLog(window.kiosk.config.store_path) as log:  # as the sync agent caches them
        settings = {"ui.elderly": True, "voice.volume": 30, "ui.reasons_idle_s": 20}
        log.set_state("sync_settings", {"version": "v-elderly", "settings": settings})
    qtbot.waitUntil(lambda: window.elderly, timeout=10_000)  # the next citizen's mode
    qtbot.waitUntil(lambda: window.kiosk.voice.config.volume == 30, timeout=5000)  # on the voice thread
    assert window.kiosk.remote.version == "v-elderly"
    now = window.kiosk.clock()
    window.kiosk.flow.rate_request(
        ticket_no="A1", case_no="R1", item_code=None, item_name="事项", source="queue", now=now
    )
    window.kiosk._render()
    assert window.kiosk.flow.view.deadline == pytest.approx(now + 30 * 1.5)  # 长辈模式's longer time

"""The evaluator's pages, rendered offscreen with sample views: object names, what each page shows, no
clipped text at any reference size, the reasons page's rules, the admin gesture and PIN, fonts, PINs
and ``kiosk screenshot``."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QAbstractButton, QLabel, QPushButton, QStackedWidget

from core.config import load_config
from core.domain import DEFAULT_REASONS, LEVELS, Reason
from hub.qrpage import mask_case_no as hub_mask_case_no
from kiosk import adminpin, fonts
from kiosk.flow import View
from kiosk.screenshot import SAMPLE_CASE, SAMPLE_STAFF, SIZES, render, sample_views
from kiosk.ui import theme
from kiosk.ui.fontsetup import install_cjk_font
from kiosk.ui.pages import ITEM_LINES, Station, mask_case_no
from kiosk.ui.widgets import FitLabel, RatingButton
from kiosk.ui.window import MainWindow

PAGES = ("paused", "ready", "rate", "reasons", "correct", "thanks")
PIN = "2468"


def make_window(
    qtbot,
    *,
    contact=True,
    pin_hash=None,
    size=(1280, 800),
    reasons=DEFAULT_REASONS,
    hall="青岛西海岸新区政务服务大厅",
    diagonal=None,
) -> MainWindow:
    install_cjk_font(None)
    station = Station(
        window="03",
        hall=hall,
        reasons=reasons,
        contact=contact,
        rating_timeout_s=60,
        reasons_timeout_s=60,
        screen_diagonal_in=diagonal,
    )
    check = (lambda pin: adminpin.verify_pin(pin, pin_hash)) if pin_hash else None
    window = MainWindow(station, check_pin=check)
    qtbot.addWidget(window)
    window.set_stats(0.986, 128)
    window.set_qr("https://hub.example/q/TOKEN")
    window.resize(*size)
    window.show()
    qtbot.waitExposed(window)
    return window


def show(window: MainWindow, view: View, qtbot) -> None:
    window.show_view(view, time.monotonic())
    qtbot.waitUntil(lambda: window.current_page() == view.page)


def test_object_names_follow_the_contract(qtbot):
    window = make_window(qtbot)
    stack = window.findChild(QStackedWidget, "pages")
    assert [stack.widget(i).objectName() for i in range(stack.count())] == [f"page_{p}" for p in PAGES]
    rate_page = window.findChild(QStackedWidget, "pages").widget(2)
    for satisfaction, word in LEVELS.items():
        button = rate_page.findChild(QAbstractButton, f"rate_{satisfaction}")
        assert button is not None and button.text() == word
    for reason in DEFAULT_REASONS:
        assert window.findChild(QPushButton, f"reason_{reason.code}").text() == reason.label
    assert window.findChild(QPushButton, "reasons_submit") is not None
    assert window.findChild(QPushButton, "reasons_skip") is not None
    assert window.findChild(object, "qr") is not None


def test_each_page_shows_its_view(qtbot):
    window = make_window(qtbot)
    views = sample_views(time.monotonic())
    show(window, views["paused"], qtbot)
    assert window.pages["paused"].title.text() == "暂停服务"
    assert window.pages["paused"].window_no.text() == "03号窗口"

    show(window, views["ready"], qtbot)
    ready = window.pages["ready"]
    assert ready.name.text() == SAMPLE_STAFF.name
    assert ready.staff_no.text() == f"工号 {SAMPLE_STAFF.staff_no}"
    assert ready.title.text() == SAMPLE_STAFF.title
    assert ready.rate_value.text() == "98.6%" and ready.count_value.text() == "128 次"
    assert "A012" in ready.called.text() and ready.called.isVisible()
    assert not ready.photo.has_photo()  # the drawn placeholder
    assert not ready.panel.isVisible()

    show(window, views["ready-walkin"], qtbot)
    assert ready.panel.isVisible()

    show(window, views["rate"], qtbot)
    rate = window.pages["rate"]
    assert SAMPLE_CASE.item_name in rate.item.text()
    assert "3702**********0012" in rate.case.text() and SAMPLE_CASE.case_no not in rate.case.text()
    assert rate.countdown.remaining == 48  # 47.2 s left, rounded up
    assert rate.qr.isVisible()

    show(window, views["thanks"], qtbot)
    assert window.pages["thanks"].title.text() == "感谢您的评价"
    assert window.pages["thanks"].level.text() == "您的评价：非常满意"


def test_one_set_of_rating_buttons_is_pressable_wherever_it_shows(qtbot):
    """docs/ui.md (For tests and automation): rate_1 … rate_5 are the buttons to press, on the rate page and, in walk-in mode,
    on the ready page; there is never a second set under another name."""
    window = make_window(qtbot)
    views = sample_views(time.monotonic())
    rated = []
    window.rated.connect(rated.append)
    for page, view in (
        ("ready", views["ready-walkin"]),
        ("rate", views["rate"]),
        ("ready", views["ready-walkin"]),
    ):
        show(window, view, qtbot)
        for satisfaction in LEVELS:
            buttons = window.findChildren(QAbstractButton, f"rate_{satisfaction}")
            assert len(buttons) == 1 and buttons[0].isVisible(), (page, satisfaction)
            assert window.pages[page].isAncestorOf(buttons[0])
        assert not [b for b in window.findChildren(QAbstractButton) if "walkin" in b.objectName()]
        qtbot.mouseClick(window.findChild(QAbstractButton, "rate_4"), Qt.MouseButton.LeftButton)
    assert rated == [4, 4, 4]  # each touch reported once
    show(window, views["ready"], qtbot)  # not walk-in: no buttons on the ready page
    assert not window.findChild(QAbstractButton, "rate_4").isVisible()


def test_notice_shows_and_goes_with_the_view(qtbot):
    window = make_window(qtbot)
    views = sample_views(time.monotonic())
    show(window, views["notice"], qtbot)
    assert window.notice.isVisible() and window.notice.text() == views["notice"].notice
    show(window, views["paused"], qtbot)
    assert not window.notice.isVisible()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_a_notice_never_covers_page_text_or_buttons(qtbot, size):
    """QA 15: the notice has a band of its own (over the header), never over what a page shows."""
    window = make_window(qtbot, size=size)
    views = sample_views(time.monotonic())
    for name in ("ready", "ready-walkin", "rate", "reasons", "paused"):
        show(window, replace(views[name], notice="该办件已评价，感谢您的参与"), qtbot)
        qtbot.waitUntil(window.notice.isVisible)
        band = window.notice_band.geometry()
        assert not band.intersects(window.stack.geometry()), name
        assert window.notice.text_fits() and window.notice.font().pixelSize() >= theme.READABLE_PX


def png_bytes(width: int, height: int) -> bytes:
    image = QImage(width, height, QImage.Format.Format_RGB32)
    image.fill(QColor("#336699"))
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(data.data())


def test_staff_photo_is_drawn_when_given(qtbot):
    window = make_window(qtbot)
    ready = sample_views(time.monotonic())["ready"]
    show(window, replace(ready, staff=replace(SAMPLE_STAFF, photo=png_bytes(30, 40))), qtbot)
    assert window.pages["ready"].photo.has_photo()
    # Not an image: the placeholder, never a crash.
    show(window, replace(ready, staff=replace(SAMPLE_STAFF, photo=b"not an image")), qtbot)
    assert not window.pages["ready"].photo.has_photo()


def text_problems(window: MainWindow) -> list[str]:
    """Every visible text that does not fit its widget, and every page squeezed below its minimum."""
    problems = []
    page = window.stack.currentWidget()
    hint = page.minimumSizeHint()
    if hint.width() > page.width() or hint.height() > page.height():
        problems.append(f"{page.objectName()} needs {hint.toTuple()}, has {page.size().toTuple()}")
    for label in window.findChildren(QLabel):
        if label.isVisible() and label.text():
            fits = (
                label.text_fits()
                if isinstance(label, FitLabel)
                else (label.fontMetrics().horizontalAdvance(label.text()) <= label.contentsRect().width())
            )
            if not fits or label.fontMetrics().height() > label.contentsRect().height():
                problems.append(f"label {label.text()!r} in {label.size().toTuple()}")
    for button in window.findChildren(QAbstractButton):
        if not button.isVisible() or not button.text():
            continue
        if isinstance(button, RatingButton):
            fits = button.text_fits()
        else:
            fits = button.fontMetrics().horizontalAdvance(button.text()) + 8 <= button.width()
        if not fits:
            problems.append(f"button {button.text()!r} in {button.size().toTuple()}")
    return problems


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("contact", [True, False], ids=["phone", "nophone"])
def test_no_text_is_clipped_at_any_reference_size(qtbot, size, contact):
    window = make_window(qtbot, contact=contact, size=size)
    assert window.size().toTuple() == size
    for name, view in sample_views(time.monotonic()).items():
        show(window, view, qtbot)
        assert text_problems(window) == [], name
    window.admin.open_pin_pad()  # the admin pad's texts fit too
    assert text_problems(window) == []


LONG_CATALOGUE = tuple(
    Reason(f"{g}{n:02d}", f"{group}问题第{n}项（示例）", group)
    for g, group in enumerate(("服务态度", "服务效率", "服务水平", "办事环境与设施"), start=1)
    for n in range(1, 7)
)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_a_long_reason_catalogue_still_fits(qtbot, size):
    window = make_window(qtbot, size=size, reasons=LONG_CATALOGUE)
    show(window, sample_views(time.monotonic())["reasons"], qtbot)
    assert text_problems(window) == []
    assert all(b.height() >= 28 for b in window.pages["reasons"].reason_buttons.values())


def test_text_shrinks_to_fit_a_long_item_name(qtbot):
    window = make_window(qtbot, size=(1024, 600))
    views = sample_views(time.monotonic())
    long_case = replace(
        SAMPLE_CASE, item_name="企业投资项目备案及建设工程规划许可证核发（含变更、延续、补证）联办"
    )
    show(window, replace(views["rate"], case=long_case), qtbot)
    item = window.pages["rate"].item
    assert item.text_fits() and "…" not in "".join(item.shown_lines())
    assert text_problems(window) == []


# 200 characters: 600 bytes of UTF-8, the most the feed carries.
LONG_ITEM = ("中华人民共和国居民身份证申领换领补领及临时居民身份证办理" * 8)[:200]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_a_200_character_item_name_wraps_at_a_readable_size_then_ends_in_an_ellipsis(qtbot, size):
    """QA 5: never a one-line sliver of 6 px: a few lines at a readable size, then "…"."""
    window = make_window(qtbot, size=size)
    show(
        window,
        replace(sample_views(time.monotonic())["rate"], case=replace(SAMPLE_CASE, item_name=LONG_ITEM)),
        qtbot,
    )
    item = window.pages["rate"].item
    assert item.text() == f"办理事项：{LONG_ITEM}"  # the whole name is kept
    lines = item.shown_lines()
    assert 2 <= len(lines) <= ITEM_LINES and lines[-1].endswith("…")
    assert item.font().pixelSize() >= max(theme.READABLE_PX, theme.Metrics(*size).px(2))
    assert item.text_fits() and text_problems(window) == []


LONG_HALL = "青岛市西海岸新区（黄岛区）行政审批服务局综合政务服务大厅二楼东区（综合服务）"  # 38 characters


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_a_long_hall_name_stays_readable_in_the_header(qtbot, size):
    window = make_window(qtbot, size=size, hall=LONG_HALL)
    show(window, sample_views(time.monotonic())["ready"], qtbot)
    label = window.header.hall
    assert label.text() == LONG_HALL
    assert label.font().pixelSize() >= theme.READABLE_PX
    assert label.text_fits() and text_problems(window) == []
    assert label.geometry().bottom() <= window.header.contentsRect().bottom()


def test_reasons_need_one_choice_and_a_whole_phone_number(qtbot):
    window = make_window(qtbot)
    show(window, sample_views(time.monotonic())["reasons"], qtbot)
    page = window.pages["reasons"]
    submitted = []
    window.reasons_submitted.connect(lambda codes, phone: submitted.append((codes, phone)))
    assert not page.submit.isEnabled()
    assert page.submit.text() == "请先选择原因"  # a greyed button says why
    qtbot.mouseClick(window.findChild(QPushButton, "reason_201"), Qt.MouseButton.LeftButton)
    qtbot.mouseClick(window.findChild(QPushButton, "reason_901"), Qt.MouseButton.LeftButton)
    assert page.submit.isEnabled() and page.submit.text() == "提交评价"
    # A ticked reason says so in words too, not by colour alone.
    assert window.findChild(QPushButton, "reason_201").text() == "✓ 等候时间长"
    assert window.findChild(QPushButton, "reason_202").text() == "多次跑动"
    for digit in "1380013":
        qtbot.mouseClick(window.findChild(QPushButton, f"phone_key_{digit}"), Qt.MouseButton.LeftButton)
    assert page.phone.text() == "138 0013"  # shown as typed, so the citizen can check it
    assert not page.submit.isEnabled()  # an incomplete number is not sent
    assert page.submit.text() == "手机号未填完"
    for digit in "8000":
        qtbot.mouseClick(window.findChild(QPushButton, f"phone_key_{digit}"), Qt.MouseButton.LeftButton)
    assert page.phone.text() == "138 0013 8000"
    assert page.submit.isEnabled()
    qtbot.mouseClick(page.submit, Qt.MouseButton.LeftButton)
    assert submitted == [(["201", "901"], "13800138000")]


def test_on_a_small_screen_the_phone_number_is_a_step_of_its_own(qtbot):
    window = make_window(qtbot, size=(1024, 600), diagonal=7.0)
    show(window, sample_views(time.monotonic())["reasons"], qtbot)
    page = window.pages["reasons"]
    touches = []
    window.reasons_touched.connect(lambda: touches.append(True))
    assert not page.contact_card.isVisible() and page.to_phone.isVisible()
    qtbot.mouseClick(window.findChild(QPushButton, "reason_101"), Qt.MouseButton.LeftButton)
    qtbot.mouseClick(page.to_phone, Qt.MouseButton.LeftButton)
    assert page.contact_card.isVisible() and not page.reasons_scroll.isVisible()
    for digit in "13800138000":
        qtbot.mouseClick(window.findChild(QPushButton, f"phone_key_{digit}"), Qt.MouseButton.LeftButton)
    qtbot.mouseClick(page.back, Qt.MouseButton.LeftButton)  # back to the reasons, the number kept
    assert page.reasons_scroll.isVisible() and page.phone.text() == "138 0013 8000"
    qtbot.mouseClick(window.findChild(QPushButton, "reasons_more_time"), Qt.MouseButton.LeftButton)
    assert len(touches) == 1 + 11 + 1 + 1  # each is a touch that keeps the page: the flow hears it
    submitted = []
    window.reasons_submitted.connect(lambda codes, phone: submitted.append((codes, phone)))
    qtbot.mouseClick(page.submit, Qt.MouseButton.LeftButton)
    assert submitted == [(["101"], "13800138000")]


def test_rate_buttons_show_their_keypad_keys_only_with_a_keypad(qtbot):
    window = make_window(qtbot)
    panel = window.rating_panel
    assert all(len(b.text_items()) == 1 for b in panel.buttons.values())
    panel.show_keys(True)
    assert [b.text_items()[1].text for b in panel.buttons.values()] == ["5", "4", "3", "2", "1"]


def test_the_elderly_toggle_enlarges_text_and_reports_the_citizens_choice(qtbot):
    window = make_window(qtbot, size=(1280, 800))
    show(window, sample_views(time.monotonic())["rate"], qtbot)
    toggle = window.findChild(QPushButton, "elderly_toggle")
    assert toggle.isVisible() and toggle.height() >= window.metrics().target
    labels = [window.pages["rate"].case, window.pages["rate"].staff, window.pages["rate"].item]
    before = [label._max_px for label in labels]  # the size each may take, room permitting
    changes = []
    window.elderly_changed.connect(changes.append)
    qtbot.mouseClick(toggle, Qt.MouseButton.LeftButton)
    assert changes == [True]
    window.set_elderly(True)  # the kiosk answers: the mode is on
    assert toggle.text() == "✓ 长辈模式"
    assert all(label._max_px > px for label, px in zip(labels, before, strict=True))
    show(window, sample_views(time.monotonic())["ready"], qtbot)
    assert not toggle.isVisible()  # staff pages have no toggle


def test_reasons_reset_for_the_next_bad_rating_and_skip_is_always_there(qtbot):
    window = make_window(qtbot, contact=False)
    views = sample_views(time.monotonic())
    show(window, views["reasons"], qtbot)
    page = window.pages["reasons"]
    assert not page.contact_card.isVisible()
    qtbot.mouseClick(window.findChild(QPushButton, "reason_101"), Qt.MouseButton.LeftButton)
    assert page.selected() == ["101"]
    show(window, views["thanks"], qtbot)
    show(window, replace(views["reasons"], case=replace(SAMPLE_CASE, seq=99)), qtbot)
    assert page.selected() == []
    skipped = []
    window.reasons_skipped.connect(lambda: skipped.append(True))
    qtbot.mouseClick(window.findChild(QPushButton, "reasons_skip"), Qt.MouseButton.LeftButton)
    assert skipped == [True]


def test_the_ready_page_says_its_figures_are_the_windows(qtbot):
    """QA 11: a citizen must not read this window's month figures as the staff member's own."""
    window = make_window(qtbot)
    ready = window.pages["ready"]
    assert ready.rate_box.caption.text() == "本窗口本月满意率"
    assert ready.count_box.caption.text() == "本窗口本月评价"
    assert ready.compact_stats.text().startswith("本窗口本月")


def test_thanks_promises_rectification_only_for_reasons_given(qtbot):
    window = make_window(qtbot)
    bad = sample_views(time.monotonic())["thanks-bad"]
    window.set_reasons_given(False)  # 跳过, or the time ran out with nothing chosen
    show(window, bad, qtbot)
    assert "整改" not in window.pages["thanks"].note.text()
    window.set_reasons_given(True)
    show(window, replace(bad, case=replace(SAMPLE_CASE, seq=77)), qtbot)
    assert "整改" in window.pages["thanks"].note.text()


def test_touching_a_reason_reports_the_choice_but_a_reset_does_not(qtbot):
    window = make_window(qtbot)
    views = sample_views(time.monotonic())
    changes = []
    window.reasons_changed.connect(changes.append)
    show(window, views["reasons"], qtbot)
    qtbot.mouseClick(window.findChild(QPushButton, "reason_101"), Qt.MouseButton.LeftButton)
    qtbot.mouseClick(window.findChild(QPushButton, "reason_201"), Qt.MouseButton.LeftButton)
    qtbot.mouseClick(window.findChild(QPushButton, "reason_101"), Qt.MouseButton.LeftButton)
    assert changes == [["101"], ["101", "201"], ["201"]]
    show(window, views["thanks"], qtbot)
    show(window, replace(views["reasons"], case=replace(SAMPLE_CASE, seq=99)), qtbot)  # reset
    assert changes == [["101"], ["101", "201"], ["201"]]


def tap_corner(window: MainWindow, qtbot, times: int = 5) -> None:
    corner = window.admin_corner().center()
    for _ in range(times):
        target = window.childAt(corner) or window
        qtbot.mouseClick(target, Qt.MouseButton.LeftButton, pos=target.mapFrom(window, corner))


def test_admin_panel_stays_locked_without_a_pin_hash(qtbot):
    window = make_window(qtbot)
    tap_corner(window, qtbot, times=4)
    assert not window.admin.isVisible()
    tap_corner(window, qtbot, times=1)
    assert window.admin.isVisible()
    assert "锁定" in window.admin.pin_message.text()
    assert not window.admin.pin_ok.isEnabled()
    qtbot.mouseClick(window.findChild(QPushButton, "admin_cancel"), Qt.MouseButton.LeftButton)
    assert not window.admin.isVisible()


def test_admin_corner_takes_fast_taps(qtbot):
    """QA 16: presses 0.2 s apart; Qt delivers every second one as a double click."""
    window = make_window(qtbot)
    corner = window.admin_corner().center()
    for _ in range(5):  # press, 100 ms, release, 100 ms, press …, through the platform as a finger would
        qtbot.mouseClick(
            window.windowHandle(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, corner, 100
        )
    qtbot.waitUntil(window.admin.isVisible)


@pytest.mark.parametrize("page", ["rate", "reasons"])
def test_the_admin_pad_and_panel_give_way_to_a_citizen(qtbot, page):
    """QA 6: a rate request (or a 差评's reasons page) closes an open PIN pad or panel at once."""
    window = make_window(qtbot, pin_hash=adminpin.hash_pin(PIN, iterations=1000))
    views = sample_views(time.monotonic())
    show(window, views["ready"], qtbot)
    tap_corner(window, qtbot)
    assert window.admin.isVisible()
    show(window, views[page], qtbot)
    assert not window.admin.isVisible()
    show(window, views["ready"], qtbot)
    tap_corner(window, qtbot)
    type_pin(window, qtbot, PIN)
    assert window.admin.is_unlocked()
    show(window, views[page], qtbot)
    assert not window.admin.isVisible()
    # Opened on purpose while a citizen's page already shows: a re-render does not close it.
    tap_corner(window, qtbot)
    window.show_view(views[page], time.monotonic())
    assert window.admin.isVisible()


def type_pin(window: MainWindow, qtbot, pin: str) -> None:
    """Type ``pin`` on the pad, press 确定 and wait for the check (it runs off the GUI thread)."""
    for digit in pin:
        qtbot.mouseClick(window.findChild(QPushButton, f"pin_key_{digit}"), Qt.MouseButton.LeftButton)
    qtbot.mouseClick(window.findChild(QPushButton, "admin_ok"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.admin.checking())


def test_admin_pin_opens_the_panel_and_its_buttons_ask_to_restart_or_exit(qtbot):
    window = make_window(qtbot, pin_hash=adminpin.hash_pin(PIN, iterations=1000))
    window.admin.set_facts(lambda: [("设备编号", "XHA-W03"), ("串口 card", "已连接")])
    tap_corner(window, qtbot)
    assert window.admin.isVisible() and not window.admin.is_unlocked()
    type_pin(window, qtbot, "1111")
    assert not window.admin.is_unlocked() and window.admin.pin_message.text().startswith("密码错误")
    type_pin(window, qtbot, PIN)
    assert window.admin.is_unlocked()
    assert window.admin.fact_texts() == ["设备编号", "XHA-W03", "串口 card", "已连接"]
    with qtbot.waitSignal(window.restart_requested):
        qtbot.mouseClick(window.findChild(QPushButton, "admin_restart"), Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(window.exit_requested):
        qtbot.mouseClick(window.findChild(QPushButton, "admin_exit"), Qt.MouseButton.LeftButton)
    qtbot.mouseClick(window.findChild(QPushButton, "admin_back"), Qt.MouseButton.LeftButton)
    assert not window.admin.isVisible()


def test_wrong_pins_lock_the_pad_for_longer_each_time(qtbot):
    window = make_window(qtbot, pin_hash=adminpin.hash_pin(PIN, iterations=1000))
    clock = [1000.0]
    window.admin.clock = lambda: clock[0]
    window.admin.open_pin_pad()
    for _ in range(adminpin.MAX_PIN_FAILURES - 1):
        type_pin(window, qtbot, "1111")
        assert window.admin.pin_ok.isEnabled()
    type_pin(window, qtbot, "1111")
    first = adminpin.LOCKOUT_BASE_S
    assert not window.admin.pin_ok.isEnabled()
    assert window.admin.pin_message.text() == f"密码错误次数过多，请 {first} 秒后再试"
    type_pin(window, qtbot, PIN)  # the right PIN is not even tried while locked
    assert not window.admin.is_unlocked()
    clock[0] += first - 10
    window.admin.close_panel()
    window.admin.open_pin_pad()  # closing and opening again does not lift it
    qtbot.waitUntil(lambda: window.admin.pin_message.text() == "密码错误次数过多，请 10 秒后再试")
    clock[0] += 10
    qtbot.waitUntil(lambda: window.admin.pin_ok.isEnabled())  # the countdown runs out on its own
    type_pin(window, qtbot, "1111")  # each further failure doubles the wait
    assert window.admin.pin_message.text() == f"密码错误次数过多，请 {2 * first} 秒后再试"
    clock[0] += 2 * first
    qtbot.waitUntil(lambda: window.admin.pin_ok.isEnabled())
    type_pin(window, qtbot, PIN)
    assert window.admin.is_unlocked()
    window.admin.close_panel()
    window.admin.open_pin_pad()  # a right PIN starts the count again
    for _ in range(adminpin.MAX_PIN_FAILURES - 1):
        type_pin(window, qtbot, "1111")
    assert window.admin.pin_ok.isEnabled()


def test_the_pin_is_checked_off_the_gui_thread(qtbot):
    """PBKDF2 (200 000 rounds) takes ~60 ms here and seconds on a slow board: the screen must not freeze."""
    release = threading.Event()
    threads = []

    def slow_check(pin: str) -> bool:
        threads.append(threading.current_thread())
        release.wait(10)
        return pin == PIN

    window = make_window(qtbot)
    window.admin._check_pin = slow_check
    window.admin.open_pin_pad()
    for digit in PIN:
        qtbot.mouseClick(window.findChild(QPushButton, f"pin_key_{digit}"), Qt.MouseButton.LeftButton)
    qtbot.mouseClick(window.findChild(QPushButton, "admin_ok"), Qt.MouseButton.LeftButton)
    # The click returned while the check still runs: the GUI thread is free, the pad says it is checking.
    assert window.admin.checking() and not window.admin.pin_ok.isEnabled()
    assert window.admin.pin_message.text() == "正在验证…"
    release.set()
    qtbot.waitUntil(window.admin.is_unlocked)
    assert threads and threads[0] is not threading.main_thread()


def test_no_key_and_no_close_request_leaves_the_kiosk(qtbot):
    window = make_window(qtbot)
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    qtbot.keyClick(window, Qt.Key.Key_F4, Qt.KeyboardModifier.AltModifier)
    assert not window.close()
    assert window.isVisible()
    window.allow_close()
    assert window.close()


def test_mask_case_no_is_the_phone_pages_rule():
    """QA 15: one masking rule wherever a citizen sees a case number (the kiosk and hub/qrpage.py)."""
    assert mask_case_no("370211202611280012") == "3702**********0012"
    assert mask_case_no("CA202630") == "CA****30"
    assert mask_case_no("A12") == "***"
    assert mask_case_no(None) == "—"
    for n in range(1, 40):
        case_no = "CA2026113012345678901234567890123456789"[:n]
        assert mask_case_no(case_no) == hub_mask_case_no(case_no)


def test_admin_pin_hash_round_trip_and_command(monkeypatch, capsys):
    pin_hash = adminpin.hash_pin(PIN, iterations=1000)
    assert adminpin.verify_pin(PIN, pin_hash)
    assert not adminpin.verify_pin("2469", pin_hash)
    assert not adminpin.verify_pin(PIN, None)
    assert not adminpin.verify_pin(PIN, "pbkdf2_sha256$x$zz$00")
    assert adminpin.hash_pin(PIN) != adminpin.hash_pin(PIN)  # salted

    answers = iter([PIN, PIN])
    monkeypatch.setattr(adminpin.getpass, "getpass", lambda prompt: next(answers))
    assert adminpin.main(None) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith('admin_pin_hash = "pbkdf2_sha256$')
    assert adminpin.verify_pin(PIN, line.split('"')[1])

    for first, second in ((PIN, "1357"), ("12", "12"), ("abcd", "abcd")):
        answers = iter([first, second])
        assert adminpin.main(None) == 2


def test_a_cjk_font_is_found_and_the_configured_one_wins(tmp_path):
    found = fonts.find_cjk_font(None)
    assert found is not None and Path(found).is_file()
    font = tmp_path / "mine.ttf"
    font.write_bytes(b"")
    config_file = tmp_path / "kiosk.toml"
    config_file.write_text(f'[device]\nid = "T"\nwindow = "1"\n[ui]\nfont_path = "{font}"\n')
    assert fonts.find_cjk_font(load_config(config_file)) == str(font)
    font.unlink()  # a missing configured font falls back to the system's
    assert fonts.find_cjk_font(load_config(config_file)) == found


def test_no_cjk_font_is_a_loud_error(monkeypatch, caplog, qapp):
    monkeypatch.setattr("kiosk.ui.fontsetup.find_cjk_font", lambda config: None)
    assert install_cjk_font(None) is None
    assert any(r.levelname == "ERROR" and "NO CHINESE FONT FOUND" in r.message for r in caplog.records)


def test_font_ranking_prefers_simplified_chinese_sans(tmp_path):
    files = {name: tmp_path / name for name in ("serif.ttc", "sans.ttc", "wqy.ttc", "bold.ttc")}
    for f in files.values():
        f.write_bytes(b"")
    listed = [
        (str(files["serif.ttc"]), "Noto Serif CJK SC", "Regular"),
        (str(files["bold.ttc"]), "Noto Sans CJK SC,Noto Sans CJK SC Bold", "Bold"),
        (str(files["wqy.ttc"]), "WenQuanYi Zen Hei", "Regular"),
        (str(files["sans.ttc"]), "Noto Sans CJK JP,Noto Sans CJK SC", "Regular"),
        ("/nonexistent.ttc", "Noto Sans CJK SC", "Regular"),
    ]
    assert fonts._best_system_font(listed) == str(files["sans.ttc"])
    assert fonts._best_system_font([]) is None


def test_screenshot_renders_every_page_at_a_size(qtbot, tmp_path):
    config_file = tmp_path / "kiosk.toml"
    config_file.write_text('[device]\nid = "T"\nwindow = "03"\nhall = "测试大厅"\n')
    written = render(config_file, tmp_path / "shots", sizes=((1024, 600),), audit=True)  # checks pass
    expected = [f"{name}{mode}-1024x600.png" for name in sample_views(0) for mode in ("", "-elderly")]
    assert sorted(p.name for p in written) == sorted(expected)
    image = QImage(str(written[0]))
    assert (image.width(), image.height()) == (1024, 600)

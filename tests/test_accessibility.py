"""The 适老化 figures checked on what every page draws, at every reference size in both modes: touch
targets of 9.5 mm, text of 18 dp (30 dp for main-function text in 长辈模式), contrast from the rendered
pixels (4.5:1, 3:1 for large text, 3:1 for button boundaries). A failing page fails the test; the
problems are listed one a line."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QRect
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QApplication

from core.domain import DEFAULT_REASONS
from kiosk.screenshot import REFERENCE_DIAGONALS, SIZES, sample_views, tick_and_type
from kiosk.ui import audit, theme
from kiosk.ui.fontsetup import install_cjk_font
from kiosk.ui.pages import Station
from kiosk.ui.window import MainWindow


def make_window(
    qtbot, size, *, elderly=False, contact=True, keypad=True, touch_screen=True, diagonal=True, start=None
) -> MainWindow:
    install_cjk_font(None)
    station = Station(
        window="03",
        hall="青岛西海岸新区政务服务大厅",
        reasons=DEFAULT_REASONS,
        contact=contact,
        rating_timeout_s=60,
        reasons_timeout_s=60,
        screen_diagonal_in=REFERENCE_DIAGONALS[size] if diagonal else None,
        keypad=keypad,
        touch_screen=touch_screen,
    )
    window = MainWindow(station)
    qtbot.addWidget(window)
    window.set_stats(0.986, 128)
    window.set_qr("https://hub.example/q/TOKEN")
    window.set_reasons_given(True)
    window.resize(*(start or size))
    window.set_elderly(elderly)
    window.show()
    qtbot.waitExposed(window)
    if start:
        window.resize(*size)
        qtbot.waitUntil(lambda: (window.width(), window.height()) == size)
    return window


def page_problems(window: MainWindow, qtbot) -> list[str]:
    problems = []
    now = time.monotonic()
    for name, view in sample_views(now).items():
        window.show_view(view, now)
        if name == "reasons-ticked":
            tick_and_type(window.pages["reasons"])  # ✓ marks, and the phone step where it has one
        window.tick(now)
        qtbot.waitUntil(lambda v=view: window.current_page() == v.page)
        QApplication.processEvents()  # the layout settles, as before the next frame is on screen
        problems += [f"{name}: {p}" for p in audit.audit(window, window.metrics())]
    return problems


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
@pytest.mark.parametrize("elderly", [False, True], ids=["normal", "elderly"])
def test_every_page_meets_the_figures(qtbot, size, elderly):
    window = make_window(qtbot, size, elderly=elderly)
    problems = page_problems(window, qtbot)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("size", [(1024, 600), (800, 1280)], ids=["1024x600", "800x1280"])
def test_every_page_meets_the_figures_without_a_phone_number_or_touch_screen(qtbot, size):
    window = make_window(qtbot, size, contact=False, keypad=False, touch_screen=False)
    problems = page_problems(window, qtbot)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_every_page_fits_a_window_that_started_smaller_on_a_screen_of_unknown_size(qtbot, size):
    """As `kiosk demo` shows it: no screen size configured (the screen's own DPI), the window shown at
    another size first. The reasons page once kept the grouped layout chosen while its labels still had
    the small window's heights, and its panel ran 12 px under the bottom buttons at 1280×800."""
    window = make_window(qtbot, size, diagonal=False, start=(640, 480))
    problems = page_problems(window, qtbot)
    assert not problems, "\n".join(problems)


def test_the_checks_catch_a_page_that_runs_over(qtbot):
    window = make_window(qtbot, (1024, 600))
    window.show_view(sample_views(time.monotonic())["reasons"], time.monotonic())
    page = window.pages["reasons"]
    from PySide6.QtWidgets import QWidget

    tall = QWidget()
    tall.setFixedHeight(page.height() // 2)  # content taller than the page can hold
    page.outer.insertWidget(1, tall)
    QApplication.processEvents()
    assert any("page_reasons" in p and "runs over" in p for p in audit.audit(window, window.metrics()))


def test_contrast_is_measured_from_pixels():
    image = QImage(200, 60, QImage.Format.Format_RGB32)
    image.fill(QColor("#ffffff"))
    p = QPainter(image)
    p.fillRect(20, 20, 40, 10, QColor("#d99400"))  # the old 基本满意 amber as ink on white
    p.end()
    ratio, ink, background = audit.rendered_contrast(audit.to_pil(image), QRect(0, 0, 200, 60))
    assert (ink.name(), background.name()) == ("#d99400", "#ffffff")
    assert ratio == pytest.approx(2.57, abs=0.01)


def test_the_checks_catch_what_falls_short(qtbot):
    """The audit fails a page it should: a tiny button with pale text on a 7-inch screen."""
    from PySide6.QtWidgets import QPushButton

    window = make_window(qtbot, (1024, 600))
    window.show_view(sample_views(time.monotonic())["rate"], time.monotonic())
    tiny = QPushButton("清空", window)
    tiny.setStyleSheet("color: #c0c0c0; background: white; border: 1px solid #eeeeee;")
    tiny.setFont(theme.font("", 12))
    tiny.setGeometry(10, 200, 40, 30)
    tiny.show()
    found = [p for p in audit.audit(window, window.metrics()) if "清空" in p]
    assert any("touch target" in p for p in found)
    assert any("dp, needs" in p for p in found)
    assert any("contrast" in p for p in found)
    assert any("boundary" in p for p in found)

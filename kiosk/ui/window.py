"""The main window: the header (好差评 title, hall, window number, clock), the page stack, the
transient notice (a band over the header, so it never hides page text or buttons), the hidden admin
gesture and the admin overlay.

It shows what it is given (``show_view``, ``set_stats``, ``set_qr``) and reports what the citizen did
through signals; ``kiosk.controller`` connects those to the flow. No key closes it, and ``closeEvent`` is
refused unless ``allow_close()`` was called (the admin panel's restart and exit).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QObject, QRect, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFontMetrics, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QHBoxLayout,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from . import theme
from .admin import AdminOverlay
from .pages import CorrectPage, PausedPage, RatePage, ReadyPage, ReasonsPage, Station, ThanksPage
from .widgets import RatingPanel, layout_of, make_label

NOTICE_MS = 5000
ADMIN_TAPS = 5
ADMIN_TAP_WINDOW_S = 3.0
WEEKDAYS = "一二三四五六日"
CITIZEN_PAGES = ("rate", "reasons", "correct")  # pages a citizen is using: the admin panel closes for them
ELDERLY_PAGES = ("rate", "reasons", "correct", "thanks")  # where the citizen's 长辈模式 toggle shows
ELDERLY_LABEL = "长辈模式"


class Emblem(QWidget):
    """The 好差评 mark in the header: a red disc with a white five-pointed star ring."""

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        side = min(self.width(), self.height())
        x, y = (self.width() - side) / 2, (self.height() - side) / 2
        p.setPen(QPen(QColor(theme.GOLD), max(1.5, side * 0.06)))
        p.setBrush(QColor(theme.GOV_RED))
        p.drawEllipse(int(x + side * 0.04), int(y + side * 0.04), int(side * 0.92), int(side * 0.92))
        f = self.font()
        f.setPixelSize(max(theme.MIN_FONT_PX, int(side * 0.52)))
        f.setBold(True)
        p.setFont(f)
        p.setPen(QColor("white"))
        p.drawText(QRect(int(x), int(y), side, side), int(Qt.AlignmentFlag.AlignCenter), "评")
        p.end()


class Header(QWidget):
    def __init__(self, station: Station):
        super().__init__()
        self.setObjectName("header")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        lay = QHBoxLayout(self)
        self.lay = lay
        self.emblem = Emblem()
        self.title = make_label("政务服务“好差评”", bold=True)
        self.hall = make_label(station.hall or "政务服务大厅")
        self.hall.setObjectName("header_sub")
        titles = QVBoxLayout()
        titles.setSpacing(0)
        titles.addWidget(self.title)
        titles.addWidget(self.hall)
        lay.addWidget(self.emblem)
        lay.addLayout(titles, 1)
        # 长辈模式: large, in the header where every citizen page shows it, and pressable by the citizen.
        self.elderly = QPushButton(ELDERLY_LABEL)
        self.elderly.setObjectName("elderly_toggle")
        self.elderly.setProperty("class", "toggle")
        self.elderly.setCheckable(True)
        self.elderly.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.elderly.toggled.connect(lambda on: self.elderly.setText(("✓ " if on else "") + ELDERLY_LABEL))
        lay.addWidget(self.elderly)
        self.window_no = make_label(station.window_label, bold=True, align=Qt.AlignmentFlag.AlignRight)
        self.clock = make_label("", bold=True, align=Qt.AlignmentFlag.AlignRight)
        self.date = make_label("", align=Qt.AlignmentFlag.AlignRight)
        self.date.setObjectName("header_sub")
        right = QVBoxLayout()
        right.setSpacing(0)
        right.addWidget(self.clock)
        right.addWidget(self.date)
        lay.addWidget(self.window_no)
        lay.addLayout(right)
        self.update_clock()

    def apply_metrics(self, m: theme.Metrics) -> None:
        self.setFixedHeight(m.px(theme.HEADER_UNITS))
        self.lay.setContentsMargins(m.px(2), m.px(0.5), m.px(2), m.px(0.6))
        self.lay.setSpacing(m.px(1.5))
        self.emblem.setFixedSize(m.px(4.6), m.px(4.6))
        toggle_h = max(m.target, m.px(5.6))
        self.elderly.setFixedHeight(toggle_h)
        toggle_px = max(m.dp(m.min_dp(True)), int(toggle_h * 0.36))
        self.elderly.setFont(theme.font("", toggle_px, bold=True))
        self.elderly.setFixedWidth(
            QFontMetrics(self.elderly.font()).horizontalAdvance("✓ " + ELDERLY_LABEL) + m.px(2.4)
        )
        title_px = max(m.dp(theme.BODY_DP), m.px(2.2 if m.portrait else 2.5))
        self.title.set_max_px(title_px)
        # A long hall name wraps onto the lines the header has room for at a readable size, then elides.
        inner_h = m.px(theme.HEADER_UNITS) - m.px(0.5) - m.px(0.6)
        title_h = QFontMetrics(theme.font("", title_px, bold=True)).height()
        line_h = QFontMetrics(theme.font("", theme.READABLE_PX)).lineSpacing()
        body = m.dp(theme.BODY_DP)
        self.hall.set_fit(
            max_px=max(body, m.px(1.6)), min_px=body, max_lines=max(1, (inner_h - title_h) // line_h)
        )
        self.window_no.set_fit(max_px=max(body, m.px(2.8)), min_px=body)
        self.window_no.setFixedWidth(m.px(8 if m.portrait else 11))
        self._short_date = m.portrait  # no weekday: the room goes to the title and the toggle
        self.clock.set_fit(max_px=max(body, m.px(2.6)), min_px=body)
        self.date.set_fit(max_px=max(body, m.px(1.6)), min_px=body)
        for w in (self.clock, self.date):
            longest = "12月30日" if m.portrait else "12月30日 星期三"
            w.setFixedWidth(QFontMetrics(theme.font("", body)).horizontalAdvance(longest) + 4)
        self.update_clock()

    def update_clock(self) -> None:
        t = time.localtime()
        self.clock.setText(time.strftime("%H:%M", t))
        weekday = "" if getattr(self, "_short_date", False) else f" 星期{WEEKDAYS[t.tm_wday]}"
        self.date.setText(f"{t.tm_mon}月{t.tm_mday}日{weekday}")


class MainWindow(QWidget):
    rated = Signal(int)  # a rating button was touched (satisfaction code)
    reasons_submitted = Signal(list, str)  # reason codes, phone digits or ""
    reasons_skipped = Signal()
    reasons_changed = Signal(list)  # the reason codes chosen so far, after each touch
    reasons_touched = Signal()  # another touch on the reasons page: the citizen is still there
    correction_requested = Signal()  # 改评价 on the reasons page
    restart_requested = Signal()
    exit_requested = Signal()
    first_painted = Signal()  # once, when the first page is on screen (systemd READY=1)
    elderly_changed = Signal(bool)  # the citizen pressed the 长辈模式 toggle
    # The controller (kiosk.controller.Kiosk), set by kiosk.app once both exist; the window never uses
    # it (it only emits signals), the app and the demo reach the controller through it.
    kiosk: Any

    def __init__(
        self,
        station: Station,
        *,
        check_pin: Callable[[str], bool] | None = None,
    ):
        super().__init__()
        self.setObjectName("main")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        self.setWindowTitle("好差评评价器")
        self.station = station
        self._elderly = False
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        self.header = Header(station)
        lay.addWidget(self.header)
        self.stack = QStackedWidget()
        self.stack.setObjectName("pages")
        # The pages fit themselves to whatever size the window gets; they never hold it open.
        self.stack.setMinimumSize(1, 1)
        self.header.setMinimumWidth(1)
        lay.addWidget(self.stack, 1)
        # One set of rating buttons (docs/ui.md "For tests and automation"), moved to whichever page shows them.
        self.rating_panel = RatingPanel()
        self.pages: dict[str, Any] = {
            "paused": PausedPage(station),
            "ready": ReadyPage(station, self.rating_panel),
            "rate": RatePage(station, self.rating_panel),
            "reasons": ReasonsPage(station),
            "correct": CorrectPage(station, self.rating_panel),
            "thanks": ThanksPage(station),
        }
        for page in self.pages.values():
            self.stack.addWidget(page)
        self.rating_panel.rated.connect(self.rated)
        self.pages["reasons"].submitted.connect(self.reasons_submitted)
        self.pages["reasons"].skipped.connect(self.reasons_skipped)
        self.pages["reasons"].changed.connect(self.reasons_changed)
        self.pages["reasons"].correction.connect(self.correction_requested)
        self.header.elderly.clicked.connect(lambda on: self.elderly_changed.emit(bool(on)))
        self.rating_panel.show_keys(station.keypad)
        self.pages["reasons"].touched.connect(self.reasons_touched)

        # The notice band lies over the header: pages keep their room, nothing of theirs is covered.
        self.notice_band = QFrame(self)
        self.notice_band.setObjectName("notice_band")
        band = QVBoxLayout(self.notice_band)
        self.notice = make_label("", bold=True, align=Qt.AlignmentFlag.AlignHCenter)
        self.notice.setObjectName("notice")
        band.addWidget(self.notice)
        self.notice_band.hide()
        self._notice_timer = QTimer(self)
        self._notice_timer.setSingleShot(True)
        self._notice_timer.timeout.connect(self.notice_band.hide)
        self._view_notice: str | None = None

        self.admin = AdminOverlay(check_pin, self)
        self.admin.restart_requested.connect(self.restart_requested)
        self.admin.exit_requested.connect(self.exit_requested)
        self._taps: list[float] = []
        self._last_press_at = -1
        self._may_close = False
        self._painted = False
        self._view: Any = None
        self._metrics: theme.Metrics | None = None
        app = QApplication.instance()
        if app is not None:  # every window here lives in an application; the type says it may not
            app.installEventFilter(self)

    # --- what is shown

    @property
    def view(self) -> Any:
        return self._view

    def current_page(self) -> str:
        page = self.stack.currentWidget()
        return page.objectName().removeprefix("page_") if page is not None else ""

    def show_view(self, view: Any, now: float) -> None:
        previous, self._view = self._view, view
        if view.page in CITIZEN_PAGES and self._screen_of(previous) != self._screen_of(view):
            self.admin.close_panel()  # a citizen needs the screen now: the admin pad or panel gives way
        page = self.pages[view.page]
        # The citizen's pages, and the welcome page where it offers the rating buttons (walk-in).
        self.header.elderly.setVisible(view.page in ELDERLY_PAGES or view.page == "ready" and view.walkin)
        page.show_view(view, now)
        if self.stack.currentWidget() is not page:
            self.stack.setCurrentWidget(page)
        self._follow_notice(view.notice)

    @staticmethod
    def _screen_of(view: Any) -> tuple:
        return (None, None) if view is None else (view.page, view.case.seq if view.case else None)

    def tick(self, now: float) -> None:
        """Once a second: the clock and the current page's countdown."""
        self.header.update_clock()
        if self._view is not None:
            self.pages[self._view.page].tick(self._view, now)

    def set_stats(self, rate: float | None, count: int) -> None:
        self.pages["ready"].set_stats(rate, count)

    def set_qr(self, url: str | None) -> None:
        self.pages["rate"].set_qr(url)
        self.pages["reasons"].set_qr(url)

    def set_reasons_given(self, given: bool) -> None:
        """Whether the 差评 just detailed named reasons: only then does the thanks page promise 整改."""
        self.pages["thanks"].reasons_given = given

    def _follow_notice(self, text: str | None) -> None:
        """The flow's notice shows while the view carries it (the flow lets it fade)."""
        if text == self._view_notice:
            return
        self._view_notice = text
        if text:
            self.flash_notice(text)
        else:
            self.notice_band.hide()

    def flash_notice(self, text: str) -> None:
        """Show ``text`` for a few seconds in a band over the header, where no page text or button is."""
        self.notice.setText(text)
        self._place_notice()
        self.notice_band.show()
        self.notice_band.raise_()
        self.notice_band.stackUnder(self.admin)  # never over the admin panel
        self._notice_timer.start(NOTICE_MS)

    def _place_notice(self) -> None:
        if self._metrics is None:
            return
        m = self._metrics
        layout_of(self.notice_band).setContentsMargins(m.px(2), 0, m.px(2), 0)
        self.notice.set_fit(max_px=max(m.px(3), m.dp(theme.BODY_DP)), min_px=m.dp(theme.BODY_DP), max_lines=2)
        self.notice_band.setGeometry(0, 0, m.width, m.px(theme.HEADER_UNITS))

    def set_station(self, station: Station) -> None:
        """Remote settings applied at an idle page: every page reads the new station, and a new reasons
        catalogue gets a reasons page built for it."""
        old = self.station
        self.station = station
        for page in self.pages.values():
            page.station = station
        self.rating_panel.show_keys(station.keypad)
        if station.reasons == old.reasons and station.touch_screen == old.touch_screen:
            return
        previous = self.pages["reasons"]
        page = ReasonsPage(station)
        self.stack.insertWidget(self.stack.indexOf(previous), page)
        self.stack.removeWidget(previous)
        previous.deleteLater()
        self.pages["reasons"] = page
        page.submitted.connect(self.reasons_submitted)
        page.skipped.connect(self.reasons_skipped)
        page.changed.connect(self.reasons_changed)
        page.touched.connect(self.reasons_touched)
        page.correction.connect(self.correction_requested)
        page.set_qr(self.pages["rate"].qr.url)
        if self._metrics is not None:
            page.apply_metrics(self._metrics)

    # --- layout

    def paintEvent(self, event) -> None:  # noqa: N802
        super().paintEvent(event)
        if not self._painted:
            self._painted = True
            self.first_painted.emit()

    @property
    def elderly(self) -> bool:
        return self._elderly

    def set_elderly(self, on: bool) -> None:
        """长辈模式 on or off: larger text, fewer reasons per screen (the kiosk lengthens the times)."""
        self._elderly = on
        self.header.elderly.setChecked(on)
        self._relayout()

    def metrics(self) -> theme.Metrics:
        """The metrics for the window's size, its screen's pixels per inch and the mode."""
        screen = self.screen()
        screen_ppi = screen.physicalDotsPerInch() if screen is not None else None
        ppi = theme.ppi_for(self.width(), self.height(), self.station.screen_diagonal_in, screen_ppi)
        return theme.Metrics(self.width(), self.height(), ppi, self._elderly)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._relayout()

    def _relayout(self) -> None:
        m = self.metrics()
        if m == self._metrics:
            return
        self._metrics = m
        self.setStyleSheet(theme.stylesheet(m))
        self.header.apply_metrics(m)
        for page in self.pages.values():
            page.apply_metrics(m)
        self.admin.apply_metrics(m)
        self.admin.setGeometry(self.rect())
        self._place_notice()

    # --- kiosk behaviour: no way out, the hidden admin gesture

    def allow_close(self) -> None:
        self._may_close = True

    def closeEvent(self, event) -> None:  # noqa: N802
        if self._may_close:
            event.accept()
        else:
            event.ignore()

    def keyPressEvent(self, event) -> None:  # noqa: N802
        event.accept()  # swallow every key: nothing typed at the kiosk does anything

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if (
            # Qt turns the second of two quick presses into a double click: a tap all the same.
            event.type() in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonDblClick)
            and isinstance(event, QMouseEvent)
            and isinstance(watched, QWidget)
            and watched.window() is self
            # One press reaches the filter again for each parent it propagates to; count it once.
            and event.timestamp() != self._last_press_at
        ):
            self._last_press_at = event.timestamp()
            self._admin_tap(watched.mapTo(self, event.position().toPoint()))
        return False

    def admin_corner(self) -> QRect:
        """Where the five taps open the admin panel: the top-right corner, over the clock."""
        side = self.header.height()
        return QRect(self.width() - side * 2, 0, side * 2, side)

    def _admin_tap(self, pos) -> None:
        if self.admin.isVisible() or not self.admin_corner().contains(pos):
            return
        now = time.monotonic()
        self._taps = [t for t in self._taps if now - t < ADMIN_TAP_WINDOW_S] + [now]
        if len(self._taps) >= ADMIN_TAPS:
            self._taps = []
            self.admin.open_pin_pad()

"""The pages of the main stack: paused, ready, rate, reasons, correct (the rate page again to change a
差评: 改评价), thanks.

Each page renders the parts of a ``kiosk.flow.View`` it shows (``show_view``) and lays itself out for
the window's ``Metrics`` (``apply_metrics``); none of them decides anything. Object names follow
docs/ui.md "For tests and automation": there is one ``RatingPanel`` (``rate_1`` … ``rate_5``), held by the rate page and, in
walk-in mode, moved to the ready page while it shows (``PanelHolder``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QEvent, QSize, Qt, Signal
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QBoxLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QPushButton,
    QScrollArea,
    QScroller,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from core.contact import valid_phone
from core.domain import LEVELS, Reason, is_bad

from .. import prompts
from . import theme
from .widgets import (
    CountdownRing,
    FitLabel,
    Keypad,
    Mark,
    PhotoView,
    QrView,
    RatingPanel,
    layout_of,
    make_label,
    orient,
)

CENTER = Qt.AlignmentFlag.AlignHCenter
PHONE_DIGITS = 11
MAX_REASON_COLUMNS = 4
READABLE_REASON_UNITS = 2  # more columns only while reason labels stay this large
GROUP_LABEL_UNITS = 9
ITEM_LINES = 3  # a long item name wraps onto this many lines before it ends in "…"
CONTACT_TITLE = "留下手机号便于回访（选填，加密保存）"
CONTACT_INCOMPLETE = "请输入完整的 11 位手机号码"
CHECK = "✓ "
SUBMIT = "提交评价"
CHANGE_RATING = "改评价"
SUBMIT_NEEDS_REASON = "请先选择原因"
SUBMIT_NEEDS_PHONE = "手机号未填完"


@dataclass(frozen=True)
class Station:
    """What the pages show about this kiosk, fixed for its run."""

    window: str
    hall: str
    reasons: tuple[Reason, ...]
    contact: bool  # offer the optional phone number (hub.public_key_file is set)
    rating_timeout_s: float
    reasons_timeout_s: float
    screen_diagonal_in: float | None = None  # sizes in millimetres from it; None: the screen's DPI
    keypad: bool = False  # a rating keypad is fitted: the rate buttons show their keys
    touch_screen: bool = True  # without one the reasons page only offers the QR code

    @property
    def window_label(self) -> str:
        return f"{self.window}号窗口"


def mask_case_no(case_no: str | None) -> str:
    """3702**********0012, CA****30: enough to recognise one's own case, not enough to read someone else's.
    The same rule as the phone page (hub/qrpage.py), so a citizen sees one form everywhere."""
    if not case_no:
        return "—"
    if len(case_no) <= 4:
        return "*" * len(case_no)
    keep = 4 if len(case_no) >= 12 else 2
    return case_no[:keep] + "*" * (len(case_no) - 2 * keep) + case_no[-keep:]


def seconds_left(deadline: float | None, now: float) -> int:
    return 0 if deadline is None else max(0, math.ceil(deadline - now))


def card() -> QFrame:
    """A white rounded panel (the style sheet's ``.card``)."""
    frame = QFrame()
    frame.setProperty("class", "card")
    return frame


class Page(QWidget):
    def __init__(self, name: str, station: Station):
        super().__init__()
        self.setObjectName(name)
        self.station = station

    def apply_metrics(self, m: theme.Metrics) -> None:
        raise NotImplementedError

    def show_view(self, view: Any, now: float) -> None:
        raise NotImplementedError

    def tick(self, view: Any, now: float) -> None:
        """Once a second while shown: countdowns."""


class PanelHolder(Page):
    """A page that shows the window's one rating panel when it takes it (``take_panel``), last in its
    ``outer`` layout and fitted to the page (``fit_panel``)."""

    outer: QVBoxLayout
    panel: RatingPanel

    def __init__(self, name: str, station: Station, panel: RatingPanel):
        super().__init__(name, station)
        self.panel = panel
        self._m: theme.Metrics | None = None

    def holds_panel(self) -> bool:
        return self.panel.parentWidget() is self

    def take_panel(self) -> None:
        if not self.holds_panel():
            holder = self.panel.parentWidget()
            holder_layout = holder.layout() if holder is not None else None
            if holder_layout is not None:
                holder_layout.removeWidget(self.panel)
            self.outer.addWidget(self.panel, 1)
            if self._m is not None:
                self.fit_panel(self._m)
        self.panel.show()

    def apply_metrics(self, m: theme.Metrics) -> None:
        self._m = m
        if self.holds_panel():
            self.fit_panel(m)

    def fit_panel(self, m: theme.Metrics) -> None:
        self.panel.set_metrics(m, vertical=m.portrait)


class PausedPage(Page):
    def __init__(self, station: Station):
        super().__init__("page_paused", station)
        outer = QVBoxLayout(self)
        self.box = card()
        outer.addStretch(1)
        outer.addWidget(self.box)
        outer.addStretch(1)
        inner = QVBoxLayout(self.box)
        self.mark = Mark("pause", "#8a97a8")
        self.title = make_label("暂停服务", bold=True, css_class="red", align=CENTER)
        self.title.setProperty("main", True)
        self.window_no = make_label(station.window_label, bold=True, css_class="accent", align=CENTER)
        self.hall = make_label(station.hall, css_class="muted", align=CENTER)
        self.hint = make_label(
            "本窗口暂停服务，请到其他窗口办理，给您带来不便敬请谅解", css_class="muted", align=CENTER
        )
        inner.addWidget(self.mark, 0, CENTER)
        for w in (self.title, self.window_no, self.hall, self.hint):
            inner.addWidget(w)
        self.hall.setVisible(bool(station.hall))
        self.outer = outer

    def apply_metrics(self, m: theme.Metrics) -> None:
        side = m.px(3 if m.portrait else 4)
        self.outer.setContentsMargins(side, m.px(2), side, m.px(2))
        layout_of(self.box).setContentsMargins(m.px(3), m.px(3), m.px(3), m.px(3))
        layout_of(self.box).setSpacing(m.px(1.2))
        self.mark.setFixedSize(m.px(9), m.px(9))
        body = m.dp(theme.BODY_DP)
        self.title.set_fit(max_px=m.text(8, main=True), min_px=m.dp(m.min_dp(True)))
        self.window_no.set_fit(max_px=m.text(4.5), min_px=body)
        self.hall.set_fit(max_px=m.text(2.6), min_px=body, max_lines=2)
        self.hint.set_fit(max_px=m.text(2.2), min_px=body, max_lines=2)

    def show_view(self, view: Any, now: float) -> None:
        pass


class StatBox(QFrame):
    """One published figure on a card: a caption over a large value."""

    def __init__(self, caption: str):
        super().__init__()
        self.setProperty("class", "card")
        self.lay = QVBoxLayout(self)
        self.caption = make_label(caption, css_class="muted", align=CENTER)
        self.value = make_label("—", bold=True, css_class="accent", align=CENTER)
        self.lay.addWidget(self.caption)
        self.lay.addWidget(self.value)

    def apply_metrics(self, m: theme.Metrics) -> None:
        self.lay.setContentsMargins(m.px(1), m.px(0.8), m.px(1), m.px(0.8))
        body = m.dp(theme.BODY_DP)
        self.caption.set_fit(max_px=m.text(2.2), min_px=body, max_lines=2)
        self.value.set_fit(max_px=m.text(3.6), min_px=body)


class ReadyPage(PanelHolder):
    """The staff member serving, this window's record, and (walk-in) the rating buttons."""

    def __init__(self, station: Station, panel: RatingPanel):
        super().__init__("page_ready", station, panel)
        outer = QVBoxLayout(self)
        self.outer = outer
        self.staff_row = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        # Spacing items around the staff block: landscape lets the block fill the page, a stacked
        # portrait block stays together in the middle of it (see apply_metrics).
        outer.addStretch(0)
        outer.addLayout(self.staff_row, 1)
        outer.addStretch(0)

        self.photo = PhotoView()
        self.staff_row.addWidget(self.photo, 0, Qt.AlignmentFlag.AlignCenter)

        info = QVBoxLayout()
        self.info = info
        self.staff_row.addLayout(info, 1)
        self.greeting = make_label(prompts.WELCOME_CAPTION, css_class="muted")
        self.name = make_label(bold=True)
        self.staff_no = make_label(css_class="accent")
        self.title = make_label(css_class="muted")
        info.addStretch(1)
        for w in (self.greeting, self.name, self.staff_no, self.title):
            info.addWidget(w)

        stats = QHBoxLayout()
        self.stats = stats
        self.rate_box = StatBox("本窗口本月满意率")
        self.count_box = StatBox("本窗口本月评价")
        self.rate_value, self.count_value = self.rate_box.value, self.count_box.value
        stats.addWidget(self.rate_box, 1)
        stats.addWidget(self.count_box, 1)
        info.addLayout(stats)
        # Walk-in mode needs the room for the buttons: the figures go on one line instead.
        self.compact_stats = make_label(css_class="muted")
        info.addWidget(self.compact_stats)
        info.addStretch(1)

        self.called = make_label(css_class="banner", bold=True, align=CENTER)
        outer.addWidget(self.called)
        self.hint = make_label("办理完毕后，请对我的服务进行评价", css_class="muted", align=CENTER)
        self.hint.setProperty("main", True)
        outer.addWidget(self.hint)
        self._set_walkin(False)
        self.called.setVisible(False)

    def apply_metrics(self, m: theme.Metrics) -> None:
        super().apply_metrics(m)
        side = m.px(3 if m.portrait else 4)
        self.outer.setContentsMargins(side, m.px(2), side, m.px(2))
        self.outer.setSpacing(m.px(1.5))
        # Portrait stacks photo over text, unless walk-in needs the height for the buttons.
        stacked = m.portrait and not self._walkin
        orient(self.staff_row, vertical=stacked)
        self.staff_row.setSpacing(m.px(3))
        self.info.setSpacing(m.px(0.6))
        # Walk-in gives every spare pixel to the buttons.
        stretches = (0, 0, 0) if self._walkin else (1, 0, 1) if stacked else (0, 1, 0)
        for index, stretch in enumerate(stretches):
            self.outer.setStretch(index, stretch)
        align = (
            Qt.AlignmentFlag.AlignHCenter if stacked else Qt.AlignmentFlag.AlignLeft
        ) | Qt.AlignmentFlag.AlignVCenter
        for label in (self.greeting, self.name, self.staff_no, self.title, self.compact_stats):
            label.setAlignment(align)
        body_h = m.height - m.px(theme.HEADER_UNITS)
        if m.portrait:
            photo_w = int(m.width * (0.24 if self._walkin else 0.40))
        else:
            photo_w = int(body_h * (0.36 if self._walkin else 0.62) * 0.78)
        self.photo.setFixedSize(photo_w, int(photo_w / 0.78))
        body = m.dp(theme.BODY_DP)
        self.greeting.set_fit(max_px=m.text(2.4), min_px=body, max_lines=2)
        self.name.set_fit(max_px=m.text(6 if not self._walkin else 5), min_px=body, max_lines=2)
        self.staff_no.set_fit(max_px=m.text(3.2), min_px=body)
        self.title.set_fit(max_px=m.text(2.8), min_px=body, max_lines=2)
        self.compact_stats.set_fit(max_px=m.text(2.4), min_px=body, max_lines=2)
        for box in (self.rate_box, self.count_box):
            box.apply_metrics(m)
        self.stats.setSpacing(m.px(1.5))
        self.called.set_fit(max_px=m.text(3.2, main=True), min_px=m.dp(m.min_dp(True)), max_lines=2)
        self.called.setContentsMargins(m.px(1), 0, m.px(1), 0)
        self.hint.set_fit(max_px=m.text(2.6, main=True), min_px=m.dp(m.min_dp(True)), max_lines=2)

    def fit_panel(self, m: theme.Metrics) -> None:
        super().fit_panel(m)
        self.panel.setMinimumHeight(m.px(14))

    def _set_walkin(self, walkin: bool) -> None:
        self._walkin = walkin
        self.greeting.setVisible(not walkin)
        self.rate_box.setVisible(not walkin)
        self.count_box.setVisible(not walkin)
        self.compact_stats.setVisible(walkin)

    def set_stats(self, rate: float | None, count: int) -> None:
        rate_text = "—" if rate is None else f"{rate * 100:.1f}%"
        self.rate_value.setText(rate_text)
        self.count_value.setText(f"{count} 次")
        self.compact_stats.setText(f"本窗口本月：满意率 {rate_text}　评价 {count} 次")

    def show_view(self, view: Any, now: float) -> None:
        staff = view.staff
        if staff is not None:
            self.name.setText(staff.name)
            self.staff_no.setText(f"工号 {staff.staff_no}")
            self.title.setText(staff.title)
            self.title.setVisible(bool(staff.title))
            self.photo.set_photo(staff.photo)
        self.called.setText(
            f"请 {view.called_ticket} 号到{self.station.window_label}办理" if view.called_ticket else ""
        )
        self.called.setVisible(bool(view.called_ticket))
        self.hint.setVisible(not view.called_ticket)  # the call is the more useful line
        if view.walkin:
            self.take_panel()
        elif self.holds_panel():
            self.panel.hide()
        if view.walkin != self._walkin:
            self._set_walkin(view.walkin)
            if self._m is not None:
                self.apply_metrics(self._m)
        self.hint.setText(
            "请点击下方按钮，对我的服务进行评价" if view.walkin else "办理完毕后，请对我的服务进行评价"
        )


class RatePage(PanelHolder):
    """The five levels, what is being rated, the countdown and the QR code."""

    caption = prompts.RATE_CAPTION

    def __init__(self, station: Station, panel: RatingPanel, name: str = "page_rate"):
        super().__init__(name, station, panel)
        outer = QVBoxLayout(self)
        self.outer = outer
        self.head = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        outer.addLayout(self.head)
        text = QVBoxLayout()
        self.text = text
        self.title = make_label(self.caption, bold=True, max_lines=2)
        self.title.setProperty("main", True)
        self.item = make_label(max_lines=ITEM_LINES)
        self.case = make_label(css_class="muted")
        self.staff = make_label(css_class="muted")
        for w in (self.title, self.item, self.case, self.staff):
            text.addWidget(w)
        self.head.addLayout(text, 1)
        side = QHBoxLayout()
        self.side = side
        self.countdown = CountdownRing()
        side.addStretch(0)  # centre the pair in portrait (see apply_metrics)
        side.addWidget(self.countdown, 0, Qt.AlignmentFlag.AlignCenter)
        self.qr_box = card()
        qr_lay = QVBoxLayout(self.qr_box)
        self.qr = QrView()
        self.qr_caption = make_label("手机扫码评价", css_class="muted", align=CENTER)
        qr_lay.addWidget(self.qr, 0, CENTER)
        qr_lay.addWidget(self.qr_caption)
        side.addWidget(self.qr_box)
        side.addStretch(0)
        self.head.addLayout(side)
        if name == "page_rate":  # the panel starts here; the correct page takes it when it shows
            self.take_panel()
        self.qr_box.setVisible(False)

    def apply_metrics(self, m: theme.Metrics) -> None:
        super().apply_metrics(m)
        margin = m.px(3 if m.portrait else 3.5)
        self.outer.setContentsMargins(margin, m.px(2), margin, m.px(2.5))
        self.outer.setSpacing(m.px(2))
        orient(self.head, vertical=m.portrait)
        self.head.setSpacing(m.px(1.5))
        self.text.setSpacing(m.px(0.6))
        self.side.setSpacing(m.px(4 if m.portrait else 2.5))
        for index, stretch in enumerate((1, 0, 0, 1) if m.portrait else (0, 0, 0, 0)):
            self.side.setStretch(index, stretch)
        body = m.dp(theme.BODY_DP)
        self.title.set_fit(max_px=m.text(5, main=True), min_px=m.dp(m.min_dp(True)))
        self.item.set_fit(max_px=m.text(3), min_px=max(body, m.px(2)))
        self.case.set_fit(max_px=m.text(2.5), min_px=body, max_lines=2)
        self.staff.set_fit(max_px=m.text(2.5), min_px=body, max_lines=2)
        ring = max(m.px(9), m.mm(13))
        self.countdown.setFixedSize(ring, ring)
        self.countdown.set_min_px(body)
        qr_side = m.px(13)
        self.qr.setFixedSize(qr_side, qr_side)
        layout_of(self.qr_box).setContentsMargins(m.px(0.8), m.px(0.8), m.px(0.8), m.px(0.5))
        layout_of(self.qr_box).setSpacing(m.px(0.3))
        self.qr_caption.set_fit(max_px=max(body, m.px(1.9)), min_px=body)
        self.qr_box.setFixedWidth(
            max(
                qr_side + m.px(1.6),
                QFontMetrics(theme.font("", body)).horizontalAdvance("手机扫码评价") + m.px(1.6),
            )
        )

    def fit_panel(self, m: theme.Metrics) -> None:
        super().fit_panel(m)
        self.panel.setMinimumHeight(0)

    def set_qr(self, url: str | None) -> None:
        self.qr.set_url(url)
        self.qr_box.setVisible(bool(url))

    def show_view(self, view: Any, now: float) -> None:
        self.take_panel()
        case = view.case
        item = case.item_name if case is not None and case.item_name else None
        self.item.setText(f"办理事项：{item}" if item else "办理事项：—")
        ticket = f"　票号 {case.ticket_no}" if case is not None and case.ticket_no else ""
        self.case.setText(f"办件编号：{mask_case_no(case.case_no if case else None)}{ticket}")
        staff = view.staff
        self.staff.setText(
            f"工作人员：{staff.name}（工号 {staff.staff_no}）　{self.station.window_label}" if staff else ""
        )
        self.tick(view, now)

    def tick(self, view: Any, now: float) -> None:
        self.countdown.set_remaining(seconds_left(view.deadline, now), int(self.station.rating_timeout_s))


class CorrectPage(RatePage):
    """The rate page again for a 差评 on its reasons page (改评价): the same case, the level given so far,
    the five levels to choose from again. No QR code: the case is rated already."""

    caption = prompts.CORRECT_CAPTION

    def __init__(self, station: Station, panel: RatingPanel):
        super().__init__(station, panel, "page_correct")

    def set_qr(self, url: str | None) -> None:
        super().set_qr(None)

    def show_view(self, view: Any, now: float) -> None:
        super().show_view(view, now)
        if view.satisfaction is not None:
            self.item.setText(f"您刚才的评价：{LEVELS[view.satisfaction]}（选择相同的评价即返回）")


class ReasonButton(QPushButton):
    """A reason to tick. Its text fits the column it gets, so it asks for no width of its own: all
    columns stay equal whatever the labels."""

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(1, super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(1, super().minimumSizeHint().height())


def format_phone(digits: str) -> str:
    """The digits typed so far, grouped 3-4-4 as a citizen reads their number, so they can check it."""
    return " ".join(part for part in (digits[:3], digits[3:7], digits[7:11]) if part)


class ReasonsPage(Page):
    """Why a 差评: reason buttons by group (at least one to submit), optionally a phone number.

    The phone number is a step of its own (留手机号) where the keypad does not fit beside the reasons
    at full touch size; without a touch screen the page only offers the QR code."""

    submitted = Signal(list, str)  # reason codes, phone digits ("" for none)
    skipped = Signal()
    changed = Signal(list)  # the citizen ticked or unticked a reason: the codes now chosen
    touched = Signal()  # any other touch (a key of the phone pad, 更多时间): the citizen is still here
    correction = Signal()  # 改评价: back to the five levels for the same case
    _phone: str  # the digits typed so far (set below, after the keypad that changes it)

    def __init__(self, station: Station):
        super().__init__("page_reasons", station)
        outer = QVBoxLayout(self)
        self.outer = outer
        head = QHBoxLayout()
        self.head = head
        titles = QVBoxLayout()
        self.title = make_label(prompts.REASONS_CAPTION, bold=True, max_lines=2)
        self.title.setProperty("main", True)
        subtitle = (
            "请选择不满意的原因（可多选），我们将认真整改"
            if station.touch_screen
            else "请用手机扫描二维码，告诉我们不满意的原因"
        )
        self.subtitle = make_label(subtitle, css_class="muted", max_lines=2)
        titles.addWidget(self.title)
        titles.addWidget(self.subtitle)
        head.addLayout(titles, 1)
        self.more_time = QPushButton("更多时间")
        self.more_time.setObjectName("reasons_more_time")
        self.more_time.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.more_time.clicked.connect(self.touched.emit)
        self.more_time.setVisible(station.touch_screen)
        head.addWidget(self.more_time, 0, Qt.AlignmentFlag.AlignVCenter)
        self.countdown = CountdownRing()
        head.addWidget(self.countdown, 0, Qt.AlignmentFlag.AlignVCenter)
        outer.addLayout(head)

        self.body = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        outer.addLayout(self.body, 1)
        self.reasons_card = card()
        self._reason_px = 20
        self.grid = QGridLayout(self.reasons_card)
        # A catalogue too long for the screen scrolls rather than shrinking the buttons below a finger.
        self.reasons_scroll = QScrollArea()
        self.reasons_scroll.setWidgetResizable(True)
        self.reasons_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.reasons_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.reasons_scroll.viewport().setAutoFillBackground(False)
        self.reasons_scroll.setWidget(self.reasons_card)
        QScroller.grabGesture(self.reasons_scroll.viewport(), QScroller.ScrollerGestureType.TouchGesture)
        self.body.addWidget(self.reasons_scroll, 3)
        self.group_labels: dict[str, FitLabel] = {
            group: make_label(group, bold=True, css_class="accent")
            for group in dict.fromkeys(r.group for r in station.reasons)
        }
        self.reason_buttons: dict[str, QPushButton] = {}
        self._labels: dict[str, str] = {}
        for reason in station.reasons:
            button = ReasonButton(reason.label)
            button.setObjectName(f"reason_{reason.code}")
            button.setProperty("class", "reason")
            button.setCheckable(True)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
            button.toggled.connect(lambda on, b=button, label=reason.label: self._mark(b, label, on))
            # Only a touch reports the choice (a reset for the next case is not the citizen's).
            button.clicked.connect(lambda _=False: self.changed.emit(self.selected()))
            button.installEventFilter(self)
            self.reason_buttons[reason.code] = button
            self._labels[reason.code] = reason.label
        self._columns: tuple[int, bool] | None = None

        # Without a touch screen: the QR code, where the citizen's phone takes the reasons.
        self.qr_box = card()
        qr_lay = QVBoxLayout(self.qr_box)
        self.qr = QrView()
        self.qr_caption = make_label("手机扫码填写原因", css_class="muted", align=CENTER)
        qr_lay.addWidget(self.qr, 0, CENTER)
        qr_lay.addWidget(self.qr_caption)
        self.body.addWidget(self.qr_box, 0, Qt.AlignmentFlag.AlignCenter)
        self.qr_box.setVisible(False)
        self.reasons_scroll.setVisible(station.touch_screen)

        self.contact_card = card()
        contact = QVBoxLayout(self.contact_card)
        self.contact_title = make_label(CONTACT_TITLE, bold=True, max_lines=2)
        self.phone = make_label("", bold=True, css_class="accent", align=CENTER)
        self.phone.setObjectName("phone_display")
        self.keypad = Keypad("phone")
        self.keypad.digit.connect(self._digit)
        self.keypad.delete.connect(lambda: self._set_phone(self._phone[:-1]))
        self.keypad.clear.connect(lambda: self._set_phone(""))
        for key in self.keypad.keys:
            key.clicked.connect(self.touched.emit)
        for w in (self.contact_title, self.phone):
            contact.addWidget(w)
        contact.addWidget(self.keypad, 1)
        self.body.addWidget(self.contact_card, 2)

        buttons = QHBoxLayout()
        self.buttons_row = buttons
        self.change = QPushButton(CHANGE_RATING)
        self.change.setObjectName("reasons_change_rating")
        self.skip = QPushButton("跳过")
        self.skip.setObjectName("reasons_skip")
        self.to_phone = QPushButton("留手机号")
        self.to_phone.setObjectName("reasons_phone_step")
        self.back = QPushButton("返回选择原因")
        self.back.setObjectName("reasons_back")
        self.submit = QPushButton("提交评价")
        self.submit.setObjectName("reasons_submit")
        self.submit.setProperty("class", "primary")
        for b in (self.change, self.skip, self.to_phone, self.back, self.submit):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        buttons.addWidget(self.change, 3)  # first: as far from 提交评价 as the row allows
        buttons.addWidget(self.skip, 2)
        buttons.addWidget(self.back, 4)
        buttons.addWidget(self.to_phone, 3)
        buttons.addWidget(self.submit, 4)
        outer.addLayout(buttons)
        self.skip.clicked.connect(self.skipped.emit)
        self.change.clicked.connect(self.correction.emit)
        self.submit.clicked.connect(self._submit)
        self.to_phone.clicked.connect(lambda: self._step_touched("phone"))
        self.back.clicked.connect(lambda: self._step_touched("reasons"))
        self._phone = ""
        self._shown_for: object = None
        self._two_steps = False
        self._step = "reasons"
        self._m: theme.Metrics | None = None
        self._set_step("reasons")
        self._update_submit()

    # --- steps

    def _set_step(self, step: str) -> None:
        """``reasons`` (with the keypad beside them when it fits) or, in two steps, ``phone``."""
        self._step = step
        touch = self.station.touch_screen
        phone_step = self._two_steps and step == "phone"
        self.reasons_scroll.setVisible(touch and not phone_step)
        self.contact_card.setVisible(touch and self.station.contact and (phone_step or not self._two_steps))
        self.to_phone.setVisible(touch and self.station.contact and self._two_steps and not phone_step)
        self.back.setVisible(touch and phone_step)
        self.skip.setVisible(touch and not phone_step)
        self.change.setVisible(touch and not phone_step)
        self.submit.setVisible(touch)
        # The phone step in a short landscape space: the keypad in two rows of six.
        wide = phone_step and self._m is not None and not self._m.portrait
        self.keypad.set_columns(6 if wide else 3)
        self.subtitle.setVisible(not phone_step)

    @property
    def step(self) -> str:
        return self._step

    def _step_touched(self, step: str) -> None:
        self._set_step(step)
        self.touched.emit()

    # --- layout

    def _layout_reasons(self, columns: int, grouped: bool = True) -> None:
        """Grouped: one row per group (its name, then its reasons), wrapping after ``columns`` reasons.
        Otherwise the reasons in catalogue order (group by group), ``columns`` a row, without the names."""
        if (columns, grouped) == self._columns:
            return
        self._columns = (columns, grouped)
        while self.grid.count():
            self.grid.takeAt(0)
        for label in self.group_labels.values():
            label.setVisible(grouped)
        if grouped:
            row = 0
            for group, label in self.group_labels.items():
                self.grid.addWidget(label, row, 0, Qt.AlignmentFlag.AlignTop)
                codes = [r.code for r in self.station.reasons if r.group == group]
                for i, code in enumerate(codes):
                    if i and i % columns == 0:
                        row += 1
                    self.grid.addWidget(self.reason_buttons[code], row, 1 + i % columns)
                row += 1
        else:
            for i, reason in enumerate(self.station.reasons):
                self.grid.addWidget(self.reason_buttons[reason.code], i // columns, 1 + i % columns)
        self.grid.setColumnMinimumWidth(0, self._group_w if grouped else 0)
        self.grid.setColumnStretch(0, 0)
        for c in range(1, MAX_REASON_COLUMNS + 1):
            self.grid.setColumnStretch(c, 1 if c <= columns else 0)

    def apply_metrics(self, m: theme.Metrics) -> None:
        self._m = m
        margin = m.px(3 if m.portrait else 3.5)
        self.outer.setContentsMargins(margin, m.px(1.5), margin, m.px(2))
        self.outer.setSpacing(m.px(1.2))
        self.head.setSpacing(m.px(1.5))
        orient(self.body, vertical=m.portrait)
        self.body.setSpacing(m.px(1.5))
        self.title.set_fit(max_px=m.text(3.6, main=True), min_px=m.dp(m.min_dp(True)))
        self.subtitle.set_fit(max_px=m.text(2.2), min_px=m.dp(theme.BODY_DP))
        ring = max(m.px(7), m.mm(13))
        self.countdown.setFixedSize(ring, ring)
        self.countdown.set_min_px(m.dp(theme.BODY_DP))
        self.more_time.setFont(theme.font("", m.text(2.2, main=True), bold=True))
        self.more_time.setFixedHeight(m.touch(5))
        self.more_time.setMinimumWidth(
            QFontMetrics(self.more_time.font()).horizontalAdvance(self.more_time.text()) + m.px(3)
        )
        pad = m.px(1.2)
        self.grid.setContentsMargins(pad, pad, pad, pad)
        spacing = max(m.px(0.7), m.mm(1.5))  # a gap a finger can tell apart
        self.grid.setSpacing(spacing)
        group_px = m.text(2.3)
        longest = max(self.group_labels, key=len, default="")
        group_w = QFontMetrics(theme.font("", group_px, bold=True)).horizontalAdvance(longest) + m.px(1)
        self.grid.setColumnMinimumWidth(0, group_w)
        for label in self.group_labels.values():
            label.set_fit(max_px=group_px, min_px=group_px)
            label.setFixedWidth(group_w)
            label.setMinimumHeight(m.touch(4.2))
        self._group_w = group_w
        self._reason_px = m.text(2.5, main=True)
        for b in self.reason_buttons.values():
            b.setMinimumHeight(m.touch(4.2 if m.portrait else 4.0))
        contact = layout_of(self.contact_card)
        contact.setContentsMargins(pad, pad, pad, pad)
        contact.setSpacing(m.px(0.6))
        self.contact_title.set_fit(max_px=m.text(2.4), min_px=m.dp(theme.BODY_DP))
        self.phone.set_fit(max_px=m.text(3.2, main=True), min_px=m.dp(m.min_dp(True)))
        self.keypad.set_metrics(m, m.touch(4.6 if m.portrait else 4.0))
        self.buttons_row.setSpacing(m.px(2))
        # Each bottom button's words fit its share of the row (stretches 3:2:4:3:4, three or four shown).
        row_w = m.width - 2 * margin
        shares = {self.change: 3, self.skip: 2, self.back: 4, self.to_phone: 3, self.submit: 4}
        for b, share in shares.items():
            b.setMinimumHeight(m.touch(6))
            shown_total = 3 + 2 + 3 + 4 if self.station.contact else 3 + 2 + 4
            room = int((row_w - 2 * m.px(2)) * share / shown_total) - m.px(2)
            texts = [SUBMIT, SUBMIT_NEEDS_REASON, SUBMIT_NEEDS_PHONE] if b is self.submit else [b.text()]
            want = m.text(2.8, main=True)
            px = theme.fitted_px(theme.font("", want, bold=True), texts, room, want)
            b.setFont(theme.font("", max(px, m.dp(m.min_dp(True))), bold=True))
        qr_side = max(m.px(20), m.mm(30))
        self.qr.setFixedSize(qr_side, qr_side)
        layout_of(self.qr_box).setContentsMargins(m.px(0.8), m.px(0.8), m.px(0.8), m.px(0.5))
        self.qr_caption.set_fit(max_px=m.text(2.2), min_px=m.dp(theme.BODY_DP))
        self.qr_box.setFixedWidth(qr_side + m.px(1.6))
        self._choose_layout(m)
        self._fit_reasons()

    def _choose_layout(self, m: theme.Metrics) -> None:
        """The keypad beside (or under) the reasons when both fit at full touch size, else the phone number
        in a step of its own; as few reason columns as fit, as long as their labels keep the figure's
        size (长辈模式: fewer, larger choices per screen). A catalogue longer than that scrolls."""
        page_h = m.height - m.px(theme.HEADER_UNITS)
        # 长辈模式: fewer, larger choices per screen.
        first, last = (1, 2) if m.elderly else (2, MAX_REASON_COLUMNS)
        arrangements = [
            (two, grouped, c)
            for two in ((False, True) if self.station.contact else (True,))
            for grouped in (True, False)
            for c in range(first, last + 1)
        ]
        usable = [
            (two, grouped, c)
            for two, grouped, c in arrangements
            if self._label_px(
                m, c, beside_keypad=self.station.contact and not two and not m.portrait, grouped=grouped
            )
            >= self._reason_px
        ] or [(True, False, 1)]
        for two_steps, grouped, columns in usable:
            self._two_steps = two_steps or not self.station.contact
            self._set_step("reasons")
            self._layout_reasons(columns, grouped)
            self.reasons_scroll.setMinimumHeight(self.reasons_card.minimumSizeHint().height())
            if self.minimumSizeHint().height() <= page_h:
                return
        # Nothing fits whole: two steps, and the reasons scroll.
        self._two_steps = self.station.contact
        self._set_step("reasons")
        self.reasons_scroll.setMinimumHeight(0)
        self.reasons_scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)

    def _label_px(self, m: theme.Metrics, columns: int, *, beside_keypad: bool, grouped: bool) -> int:
        """The label size ``columns`` columns would allow, from the page's proportions."""
        body_w = m.width - 2 * m.px(3 if m.portrait else 3.5)
        area_w = (body_w - m.px(1.5)) * 3 / 5 if beside_keypad else body_w
        spacing = max(m.px(0.7), m.mm(1.5))
        group_w = self._group_w if grouped else 0
        button_w = (area_w - 2 * m.px(1.2) - group_w - columns * spacing) / columns
        labels = [CHECK + b for b in self._labels.values()]
        room = int(button_w) - self.reason_padding()
        return theme.fitted_px(theme.font("", self._reason_px), labels, room, self._reason_px)

    def _fit_reasons(self) -> None:
        """Every reason label gets the size at which the longest (with its ✓) fits the narrowest button."""
        buttons = list(self.reason_buttons.values())
        room = min(b.width() for b in buttons) - self.reason_padding()
        labels = [CHECK + label for label in self._labels.values()]
        px = theme.fitted_px(theme.font("", self._reason_px), labels, room, self._reason_px)
        for b in buttons:
            if b.font().pixelSize() != px:
                b.setFont(theme.font("", px))

    def reason_padding(self) -> int:
        """Horizontal room a reason button's frame and padding take from its text."""
        return max(8, self._reason_px // 2)

    def eventFilter(self, watched, event) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Resize:  # a reason button got its size
            self._fit_reasons()
        return False

    # --- the citizen's choices

    def _mark(self, button: QPushButton, label: str, on: bool) -> None:
        """A ticked reason says so with a ✓ as well as its colour."""
        button.setText(CHECK + label if on else label)
        self._update_submit()

    def _digit(self, d: str) -> None:
        if len(self._phone) < PHONE_DIGITS:
            self._set_phone(self._phone + d)

    def _set_phone(self, phone: str) -> None:
        self._phone = phone
        # Shown as typed, grouped, so the citizen can check it; sealed before it is written anywhere.
        self.phone.setText(format_phone(phone) if phone else "— 未填写 —")
        incomplete = bool(phone) and not valid_phone(phone)
        self.contact_title.setText(CONTACT_INCOMPLETE if incomplete else CONTACT_TITLE)
        self._update_submit()

    def _update_submit(self) -> None:
        chosen = any(b.isChecked() for b in self.reason_buttons.values())
        phone_ok = not self._phone or valid_phone(self._phone)
        self.submit.setEnabled(chosen and phone_ok)
        # A greyed button says why.
        self.submit.setText(
            SUBMIT if chosen and phone_ok else SUBMIT_NEEDS_REASON if not chosen else SUBMIT_NEEDS_PHONE
        )

    def selected(self) -> list[str]:
        return [code for code, b in self.reason_buttons.items() if b.isChecked()]

    def _submit(self) -> None:
        if self.submit.isEnabled():
            self.submitted.emit(self.selected(), self._phone if self.station.contact else "")

    def reset(self) -> None:
        for b in self.reason_buttons.values():
            b.setChecked(False)
        self._set_phone("")
        self._set_step("reasons")
        self.reasons_scroll.verticalScrollBar().setValue(0)

    def set_qr(self, url: str | None) -> None:
        self.qr.set_url(url)
        self.qr_box.setVisible(bool(url) and not self.station.touch_screen)

    def show_view(self, view: Any, now: float) -> None:
        # A new 差评 starts with nothing chosen; re-rendering the same one keeps the citizen's choices.
        # A 差评 changed to another bad level (改评价) is the same one: its choices stay.
        key = view.case.seq if view.case else None
        if key != self._shown_for:
            self._shown_for = key
            self.reset()
        self.tick(view, now)

    def tick(self, view: Any, now: float) -> None:
        self.countdown.set_remaining(seconds_left(view.deadline, now), int(self.station.reasons_timeout_s))


class ThanksPage(Page):
    def __init__(self, station: Station):
        super().__init__("page_thanks", station)
        outer = QVBoxLayout(self)
        self.outer = outer
        outer.addStretch(1)
        self.mark = Mark("check", "#138a53")
        outer.addWidget(self.mark, 0, CENTER)
        self.title = make_label(prompts.THANKS_CAPTION, bold=True, css_class="accent", align=CENTER)
        self.title.setProperty("main", True)
        self.level = make_label(bold=True, align=CENTER)
        self.note = make_label(css_class="muted", align=CENTER)
        for w in (self.title, self.level, self.note):
            outer.addWidget(w)
        outer.addStretch(1)
        self.reasons_given = False  # the last 差评's detail named reasons (set from what was recorded)

    def apply_metrics(self, m: theme.Metrics) -> None:
        self.outer.setContentsMargins(m.px(4), m.px(2), m.px(4), m.px(2))
        self.outer.setSpacing(m.px(1.5))
        self.mark.setFixedSize(m.px(14), m.px(14))
        body = m.dp(theme.BODY_DP)
        self.title.set_fit(max_px=m.text(8, main=True), min_px=m.dp(m.min_dp(True)))
        self.level.set_fit(max_px=m.text(3.6), min_px=body)
        self.note.set_fit(max_px=m.text(2.6), min_px=body, max_lines=2)

    def show_view(self, view: Any, now: float) -> None:
        satisfaction = view.satisfaction
        if satisfaction is None:
            self.level.setText("")
            self.note.setText("祝您生活愉快")
            return
        self.level.setText(f"您的评价：{LEVELS[satisfaction]}")
        self.level.setStyleSheet(f"color: {theme.LEVEL_COLOURS[satisfaction]};")
        # 整改 is promised only for reasons the citizen gave; a skipped or empty choice is just thanked.
        if is_bad(satisfaction) and self.reasons_given:
            self.note.setText("您的意见我们将认真核实整改")
        elif is_bad(satisfaction):
            self.note.setText("感谢您的参与，祝您生活愉快")
        else:
            self.note.setText("祝您生活愉快，欢迎再次光临")

"""The admin panel: a PIN pad first, then device facts and restart / exit.

It sits over the whole window. The PIN is checked by a callable (``kiosk.adminpin.verify_pin`` with the
configured hash) on a thread of its own: PBKDF2 takes ~60 ms on a desktop CPU and far longer on a slow
board, and the screen must not freeze meanwhile. Wrong PINs lock the pad for a growing time
(``kiosk.adminpin.PinGuard``), shown as a countdown on it. Without a hash the pad says the panel is
locked and never opens it. The facts come from a callable returning (label, value) rows, re-read each
time the panel opens or is refreshed.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QPushButton, QStackedWidget, QVBoxLayout, QWidget

from kiosk.adminpin import MAX_PIN_FAILURES, PinGuard

from . import theme
from .widgets import FitLabel, Keypad, make_label

log = logging.getLogger(__name__)

IDLE_CLOSE_MS = 60_000  # an unattended panel closes itself
LOCK_COUNTDOWN_MS = 1000
MAX_PIN_DIGITS = 12
CENTER = Qt.AlignmentFlag.AlignHCenter


class AdminOverlay(QWidget):
    restart_requested = Signal()
    exit_requested = Signal()
    _pin_checked = Signal(bool)  # from the checking thread to the GUI thread

    def __init__(self, check_pin: Callable[[str], bool] | None, parent=None):
        super().__init__(parent)
        self.setObjectName("admin_overlay")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        self._check_pin = check_pin
        self._facts: Callable[[], list[tuple[str, str]]] = list
        self._pin = ""
        # Monotonic seconds for the lock-out; tests replace it to pass a lock without waiting.
        self.clock: Callable[[], float] = time.monotonic
        self._guard = PinGuard()
        self._checking = False
        self._pin_checked.connect(self._on_pin_checked, Qt.ConnectionType.QueuedConnection)
        self._lock_timer = QTimer(self)
        self._lock_timer.setInterval(LOCK_COUNTDOWN_MS)
        self._lock_timer.timeout.connect(self._show_pad_state)
        self.stack = QStackedWidget(self)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.stack)
        self._idle = QTimer(self)
        self._idle.setSingleShot(True)
        self._idle.setInterval(IDLE_CLOSE_MS)
        self._idle.timeout.connect(self.close_panel)

        # --- PIN pad
        self.pin_page = QWidget()
        self.pin_page.setObjectName("admin_pin")
        pin = QVBoxLayout(self.pin_page)
        self.pin_layout = pin
        self.pin_title = make_label("管理员登录", bold=True, css_class="accent", align=CENTER)
        self.pin_display = make_label("", bold=True, align=CENTER)
        self.pin_message = make_label("", css_class="red", align=CENTER)
        self.pin_keypad = Keypad("pin")
        self.pin_keypad.digit.connect(self._pin_digit)
        self.pin_keypad.delete.connect(lambda: self._set_pin(self._pin[:-1]))
        self.pin_keypad.clear.connect(lambda: self._set_pin(""))
        row = QHBoxLayout()
        self.pin_cancel = QPushButton("返回")
        self.pin_cancel.setObjectName("admin_cancel")
        self.pin_ok = QPushButton("确定")
        self.pin_ok.setObjectName("admin_ok")
        self.pin_ok.setProperty("class", "primary")
        row.addWidget(self.pin_cancel)
        row.addWidget(self.pin_ok)
        self.pin_cancel.clicked.connect(self.close_panel)
        self.pin_ok.clicked.connect(self._try_pin)
        for w in (self.pin_title, self.pin_display, self.pin_message):
            pin.addWidget(w)
        pin.addWidget(self.pin_keypad, 1)
        pin.addLayout(row)
        self.stack.addWidget(self.pin_page)

        # --- panel
        self.panel_page = QWidget()
        self.panel_page.setObjectName("admin_panel")
        panel = QVBoxLayout(self.panel_page)
        self.panel_layout = panel
        self.panel_title = make_label("设备管理", bold=True, css_class="accent")
        panel.addWidget(self.panel_title)
        self.facts_grid = QGridLayout()
        panel.addLayout(self.facts_grid)
        panel.addStretch(1)
        actions = QHBoxLayout()
        self.refresh_button = QPushButton("刷新")
        self.refresh_button.setObjectName("admin_refresh")
        self.restart_button = QPushButton("重启程序")
        self.restart_button.setObjectName("admin_restart")
        self.restart_button.setProperty("class", "primary")
        self.exit_button = QPushButton("退出程序")
        self.exit_button.setObjectName("admin_exit")
        self.exit_button.setProperty("class", "danger")
        self.back_button = QPushButton("返回")
        self.back_button.setObjectName("admin_back")
        for b in (self.back_button, self.refresh_button, self.restart_button, self.exit_button):
            actions.addWidget(b)
        panel.addLayout(actions)
        self.refresh_button.clicked.connect(self.refresh)
        self.restart_button.clicked.connect(self.restart_requested.emit)
        self.exit_button.clicked.connect(self.exit_requested.emit)
        self.back_button.clicked.connect(self.close_panel)
        self.stack.addWidget(self.panel_page)
        self._fact_labels: list[FitLabel] = []
        self._m: theme.Metrics | None = None
        self.hide()

    def _buttons(self) -> list[QPushButton]:
        return [
            self.pin_cancel,
            self.pin_ok,
            self.refresh_button,
            self.restart_button,
            self.exit_button,
            self.back_button,
        ]

    def apply_metrics(self, m: theme.Metrics) -> None:
        self._m = m
        side = m.px(12 if not m.portrait else 4)
        self.pin_layout.setContentsMargins(side, m.px(2), side, m.px(2))
        self.pin_layout.setSpacing(m.px(1))
        self.panel_layout.setContentsMargins(m.px(3), m.px(2), m.px(3), m.px(2))
        self.pin_title.set_max_px(m.px(4))
        self.pin_display.set_max_px(m.px(4))
        self.pin_message.set_max_px(m.px(2.2))
        self.pin_keypad.set_metrics(m, m.px(6))
        self.panel_title.set_max_px(m.px(3.6))
        for b in self._buttons():
            b.setMinimumHeight(m.px(6))
            b.setFont(theme.font("", m.px(2.6), bold=True))
        self._style_facts()

    def _style_facts(self) -> None:
        if self._m is None:
            return
        self.facts_grid.setHorizontalSpacing(self._m.px(2))
        self.facts_grid.setVerticalSpacing(self._m.px(0.5))
        self.facts_grid.setColumnStretch(1, 1)
        for i, label in enumerate(self._fact_labels):
            label.set_max_px(self._m.px(2.2))
            if i % 2 == 0:
                label.setFixedWidth(self._m.px(16))

    def set_facts(self, facts: Callable[[], list[tuple[str, str]]]) -> None:
        """Where the panel reads its (label, value) rows from each time it opens or is refreshed."""
        self._facts = facts

    # --- opening and the PIN

    def open_pin_pad(self) -> None:
        self._set_pin("")
        self._show_pad_state()
        self.stack.setCurrentWidget(self.pin_page)
        parent = self.parentWidget()
        if parent is not None:
            self.setGeometry(parent.rect())
        self.show()
        self.raise_()
        self._idle.start()

    def close_panel(self) -> None:
        self._set_pin("")
        self._idle.stop()
        self._lock_timer.stop()
        self.hide()

    def checking(self) -> bool:
        """A PIN is being checked (确定 waits for the answer)."""
        return self._checking

    def _show_pad_state(self) -> None:
        """The pad's message and whether 确定 may be pressed: no hash, checking, locked out, or free."""
        wait = self._guard.wait_s(self.clock())
        if wait > 0 and not self._checking:
            if not self._lock_timer.isActive():
                self._lock_timer.start()  # the countdown on the pad
        else:
            self._lock_timer.stop()
        if self._check_pin is None:
            message = "未设置管理员密码（[ui] admin_pin_hash），管理面板已锁定"
        elif self._checking:
            message = "正在验证…"
        elif wait > 0:
            message = f"密码错误次数过多，请 {math.ceil(wait)} 秒后再试"
        elif self._guard.failures == 0:
            message = ""
        elif self._guard.failures < MAX_PIN_FAILURES:
            message = f"密码错误，还可尝试 {MAX_PIN_FAILURES - self._guard.failures} 次"
        else:
            message = "密码错误，再错一次将锁定更久"
        self.pin_message.setText(message)
        self.pin_ok.setEnabled(self._check_pin is not None and not self._checking and wait <= 0)

    def _pin_digit(self, d: str) -> None:
        if len(self._pin) < MAX_PIN_DIGITS:
            self._set_pin(self._pin + d)

    def _set_pin(self, pin: str) -> None:
        self._pin = pin
        self.pin_display.setText("●" * len(pin) if pin else "请输入管理员密码")
        self._idle.start()

    def _try_pin(self) -> None:
        pin, check = self._pin, self._check_pin
        self._set_pin("")
        if check is None or self._checking or self._guard.wait_s(self.clock()) > 0:
            return
        self._checking = True
        self._show_pad_state()
        threading.Thread(target=self._check, args=(check, pin), name="pin-check", daemon=True).start()

    def _check(self, check: Callable[[str], bool], pin: str) -> None:
        """On the checking thread: the answer goes back to the GUI thread through a queued signal."""
        try:
            right = bool(check(pin))
        except Exception:
            log.exception("the admin PIN check failed; taken as a wrong PIN")
            right = False
        with contextlib.suppress(RuntimeError):  # the window went away meanwhile
            self._pin_checked.emit(right)

    def _on_pin_checked(self, right: bool) -> None:
        self._checking = False
        if right:
            self._guard.succeeded()
        else:
            self._guard.failed(self.clock())
        self._show_pad_state()
        if right and self.isVisible() and self.stack.currentWidget() is self.pin_page:
            self.refresh()
            self.stack.setCurrentWidget(self.panel_page)

    def is_unlocked(self) -> bool:
        return self.isVisible() and self.stack.currentWidget() is self.panel_page

    def refresh(self) -> None:
        self._idle.start()
        rows = self._facts()
        while self.facts_grid.count():
            item = self.facts_grid.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self._fact_labels = []
        for r, (name, value) in enumerate(rows):
            name_label = make_label(name, css_class="muted")
            value_label = make_label(value, bold=True)
            self.facts_grid.addWidget(name_label, r, 0)
            self.facts_grid.addWidget(value_label, r, 1)
            self._fact_labels += [name_label, value_label]
        self._style_facts()

    def fact_texts(self) -> list[str]:
        return [label.text() for label in self._fact_labels]

    def mousePressEvent(self, event) -> None:  # noqa: N802
        self._idle.start()
        super().mousePressEvent(event)

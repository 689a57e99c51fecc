"""The controller: device events and touches go to the flow, the flow's view goes to the window, the voice
and the QR code follow the page.

Serial events arrive on reader threads and cross into the GUI thread through a queued Qt signal; the
GUI thread never waits on serial or network I/O. The one synchronous write is the event log's append
(a local fsync): it is the durability point, done before any page or keypad answer. The roster is
watched on a timer and reloaded on a worker thread (kiosk/rosterwatch.py).
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from nacl.public import PublicKey
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication

from core import contact, qrtoken, systemd
from core.config import Config, file_stamp
from core.store import EventLog
from drivers.devices import (
    CardSwiped,
    DeviceEvent,
    Devices,
    KeyPressed,
    RateRequested,
    TicketCalled,
    WindowPaused,
    WindowResumed,
)

from . import checkpoint, prompts
from .adminfacts import admin_facts
from .flow import HISTORY_TYPES, Flow
from .keys import read_secret
from .remote import RemoteSettings
from .roster import Roster
from .rosterwatch import RosterWatch, load_roster
from .stats import WindowStats
from .ui.pages import Station
from .ui.window import MainWindow
from .voice import Voice

log = logging.getLogger(__name__)

EXIT_RESTART = 3  # the admin panel's 重启程序: non-zero, so systemd restarts the unit (exit 0 stays down)
TICK_MS = 200  # timeouts, countdowns and the clock follow within this
DEVICE_STATUS_MS = 10_000  # how often the serial devices' state is published for `kiosk doctor`
ROSTER_CHECK_MS = 2000  # how often the roster cache and file are looked at for a change
QR_RENEW_MARGIN_S = 10  # a new code this long before the shown one expires, so no scan lands on a dead one
IDLE_PAGES = ("paused", "ready")  # where remote settings may change what the window does


class Kiosk(QObject):
    """Drives the window: device events and touches go to the flow, the flow's view goes to the window."""

    device_event = Signal(object)

    def __init__(
        self,
        config: Config,
        window: MainWindow,
        event_log: EventLog,
        *,
        public_key: PublicKey | None,
        secret: bytes | None,
        remote: RemoteSettings | None = None,
    ):
        """``remote``: the hub's settings as already laid over ``config`` (None: none applied yet)."""
        super().__init__(window)
        self.config = config
        self.remote = remote or RemoteSettings(config, event_log)
        self.started_at = time.time()
        self.window = window
        self.log = event_log
        self.public_key = public_key
        self.secret = secret
        self._secret_stamp = file_stamp(config.hub.secret_file) if config.hub else None
        # The flow's monotonic time and the QR tokens' wall time; tests replace them to pass timeouts
        # and token expiry without waiting for them.
        self.clock: Callable[[], float] = time.monotonic
        self.wall_clock: Callable[[], float] = time.time
        self._roster_watch = RosterWatch(event_log, config.roster_path)  # before the load: no change missed
        self.roster = load_roster(config)
        self._roster_loading: Future[Roster] | None = None
        self._roster_loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="roster-load")
        self.stats = WindowStats(config.device.window)
        self._since_checkpoint = 0  # events written since the last checkpoint
        self.flow = self._rebuild(event_log)
        self._qr_case: int | None = None
        self._qr_expires_at = 0.0
        self._last_second = -1
        # Reader threads emit; the queued connection runs the handler on the GUI thread.
        self.device_event.connect(self._on_device_event, Qt.ConnectionType.QueuedConnection)
        self.devices = Devices(config.serial, self.device_event.emit)
        self._answers = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keypad-answer")
        self.voice = Voice(config.voice)
        self._spoken_for: tuple | None = None
        self._closed = False
        window.rated.connect(self._touch)
        window.reasons_submitted.connect(self._submit_reasons)
        window.reasons_skipped.connect(self._skip_reasons)
        window.reasons_changed.connect(self._note_reasons)
        window.reasons_touched.connect(self._touch_reasons)
        window.correction_requested.connect(self._correct)
        window.elderly_changed.connect(self.set_elderly)
        self._elderly = config.ui.elderly
        window.set_elderly(self._elderly)
        self._apply_timeouts()
        window.restart_requested.connect(lambda: self.quit(EXIT_RESTART))
        window.exit_requested.connect(lambda: self.quit(0))
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.status_timer = QTimer(self)
        self.status_timer.setInterval(DEVICE_STATUS_MS)
        self.status_timer.timeout.connect(self._publish_device_status)
        self.roster_timer = QTimer(self)
        self.roster_timer.setInterval(ROSTER_CHECK_MS)
        self.roster_timer.timeout.connect(self._check_roster)
        self.roster_timer.timeout.connect(self._check_settings)
        self.watchdog = QTimer(self)
        interval = systemd.watchdog_interval_s()
        if interval:
            self.watchdog.setInterval(int(interval * 1000))
            self.watchdog.timeout.connect(lambda: systemd.notify("WATCHDOG=1"))
        self._update_stats()
        self._render()

    def _rebuild(self, event_log: EventLog) -> Flow:
        """The flow and the figures from the checkpoint and the events after it, or from the whole log."""
        saved = checkpoint.load(event_log)
        if saved is not None:
            try:
                self.stats.restore(saved.stats, saved.seq)
                self.stats.update_from(event_log)  # before the flow writes (a restart closes its case)
                return self._make_flow(event_log, saved)
            except ValueError as e:
                log.warning("checkpoint not used (%s): replaying the whole log", e)
                self.stats = WindowStats(self.config.device.window)
        self.stats.update_from(event_log)
        flow = self._make_flow(event_log, None)
        # Saved at the first tick, so that the next start is quick.
        self._since_checkpoint = checkpoint.CHECKPOINT_EVERY
        return flow

    def _make_flow(self, event_log: EventLog, saved: checkpoint.Checkpoint | None) -> Flow:
        config = self.config
        return Flow(
            record=self._record,
            # Through self.roster, so that a reloaded roster takes over at once.
            find_staff=lambda card: self.roster.find(card),
            staff_by_no=lambda staff_no: self.roster.by_staff_no(staff_no),
            window=config.device.window,
            rating_timeout_s=config.ui.rating_timeout_s,
            thanks_s=config.ui.thanks_s,
            reasons_timeout_s=config.ui.reasons_timeout_s,
            reasons_idle_s=config.ui.reasons_idle_s,
            touch_screen=config.ui.touch_screen,
            walkin=config.ui.walkin,
            walkin_interval_s=config.ui.walkin_interval_s,
            now=self.clock(),
            history=event_log.events_after(saved.seq if saved else 0, types=HISTORY_TYPES),
            checkpoint=saved.flow if saved else None,
        )

    def save_checkpoint(self) -> None:
        """The flow's state and the figures as of the log's head (between inputs, never inside one)."""
        try:
            checkpoint.save(self.log, self.log.head_seq(), self.flow.durable_state(), self.stats.snapshot())
        except sqlite3.Error as e:
            log.warning("checkpoint not saved: %s", e)
            return
        self._since_checkpoint = 0

    # --- lifecycle

    def start(self) -> None:
        self.devices.start()
        self.timer.start()
        self.roster_timer.start()
        self.status_timer.start()  # also without serial devices: the page and settings for the heartbeat
        self._publish_device_status()
        if self.watchdog.interval() > 0:
            self.watchdog.start()

    def close(self) -> None:
        """Stop the devices and timers and close the log; device events still queued are dropped."""
        if self._closed:
            return
        self._closed = True
        self.timer.stop()
        if self._since_checkpoint:
            self.save_checkpoint()
        self.status_timer.stop()
        self.roster_timer.stop()
        self.watchdog.stop()
        self.devices.stop()
        self._answers.shutdown(wait=True)
        self._roster_loader.shutdown(wait=True)
        self.voice.close()
        self.log.close()

    def quit(self, code: int) -> None:
        log.info("admin panel: %s", "restart" if code == EXIT_RESTART else "exit")
        self.window.allow_close()
        QApplication.exit(code)

    def _publish_device_status(self) -> None:
        """The devices' state and counters, where `kiosk doctor` (another process) reads them."""
        statuses = [dataclasses.asdict(s) for s in self.devices.status()]
        try:
            if statuses:
                self.log.set_state("devices", {"devices": statuses, "updated_at": time.time()})
            self.remote.publish(self.flow.view.page, self.started_at)
        except sqlite3.Error as e:
            log.warning("device status not published: %s", e)

    def _check_settings(self) -> None:
        """Remote settings the agent cached, applied at an idle page (nobody is rating): never in the
        middle of a citizen's rating, and without a restart."""
        if self.flow.view.page not in IDLE_PAGES:
            return
        try:
            cached = self.remote.newer()
        except sqlite3.Error as e:
            log.warning("settings not checked: %s", e)
            return
        if cached is None:
            return
        config = self.remote.take(cached)
        if config is not None:
            self._apply_config(config)
        self._publish_device_status()

    def _apply_config(self, config: Config) -> None:
        self.config = config
        ui = config.ui
        self.flow.configure(
            rating_timeout_s=ui.rating_timeout_s,
            thanks_s=ui.thanks_s,
            reasons_timeout_s=ui.reasons_timeout_s,
            walkin=ui.walkin,
            reasons_idle_s=ui.reasons_idle_s,
        )
        self.window.set_station(station_for(config, self.public_key))
        self._apply_timeouts()  # 长辈模式 lengthens the new times too
        self.voice.reconfigure(config.voice)
        if config.ui.elderly != self._elderly:
            self.set_elderly(config.ui.elderly)  # at an idle page: the next citizen's mode
        self._qr_case = None  # a new QR lifetime holds from the next code
        self._render()

    def _check_roster(self) -> None:
        """Swap in a roster read on the loader thread; start a read when the roster may have changed."""
        loading = self._roster_loading
        if loading is not None:
            if not loading.done():
                return
            self._roster_loading = None
            try:
                self.roster = loading.result()
            except Exception:
                log.exception("roster not reloaded; the previous one stays in use")
            else:
                log.info("roster reloaded: %d staff", len(self.roster))
            return
        try:
            changed = self._roster_watch.changed()
        except sqlite3.Error as e:
            log.warning("roster not checked: %s", e)
            return
        if changed:
            self._roster_loading = self._roster_loader.submit(load_roster, self.config)

    # --- inputs

    def _record(self, type_: str, payload: dict) -> dict:
        event = self.log.append(type_, payload)
        self._since_checkpoint += 1
        self.stats.add(event)
        if type_ in ("rating", "rating_corrected"):
            self._update_stats()
        elif type_ == "rating_detail":
            self.window.set_reasons_given(bool(payload["reasons"]))  # what the thanks page may promise
        return event

    def _guarded(self, what: str, action) -> Any:
        """Run one flow input; a failure (e.g. the disk is full) is logged and shown, never a crash."""
        try:
            return action()
        except Exception:
            log.exception("%s failed; nothing was recorded", what)
            self.window.flash_notice("系统故障，请联系工作人员")
            return None

    def _on_device_event(self, event: DeviceEvent) -> None:
        if self._closed:
            return
        now = self.clock()
        flow = self.flow
        if isinstance(event, KeyPressed):
            taken = self._guarded("keypad rating", lambda: flow.press(event.satisfaction, "keypad", now))
            self._render()
            # Only after the rating is committed (press returned True) does the keypad hear OK; the
            # write goes through the answer thread, in order, so a stalled port never stalls the screen.
            self._answers.submit(self.devices.answer_keypad, event.satisfaction if taken else None)
            return
        if isinstance(event, CardSwiped):
            self._guarded("card swipe", lambda: flow.swipe(event.card, now))
        elif isinstance(event, TicketCalled):
            self._guarded("ticket call", lambda: flow.call(event.ticket, now))
        elif isinstance(event, RateRequested):
            self._guarded(
                "rate request",
                lambda: flow.rate_request(
                    ticket_no=event.ticket,
                    case_no=event.case_no,
                    item_code=event.item_code,
                    item_name=event.item_name,
                    source=event.source,
                    now=now,
                ),
            )
        elif isinstance(event, WindowPaused):
            self._guarded("pause", lambda: flow.pause(now))
        elif isinstance(event, WindowResumed):
            self._guarded("resume", lambda: flow.resume(now))
        self._render()

    def _touch(self, satisfaction: int) -> None:
        now = self.clock()
        self._guarded("touch rating", lambda: self.flow.press(satisfaction, "touch", now))
        self._render()

    def _submit_reasons(self, reasons: list, phone: str) -> None:
        now = self.clock()

        def submit() -> None:
            sealed = contact.seal_contact(phone, self.public_key) if phone and self.public_key else None
            self.flow.submit_reasons(reasons, sealed, now)

        self._guarded("reasons", submit)
        self._render()

    def _note_reasons(self, reasons: list) -> None:
        """The choice so far, kept by the flow so that a timeout records it."""
        now = self.clock()
        self._guarded("reasons choice", lambda: self.flow.note_reasons(reasons, now))
        self._render()

    def _touch_reasons(self) -> None:
        now = self.clock()
        self._guarded("reasons touch", lambda: self.flow.touch_reasons(now))
        self._render()

    def _correct(self) -> None:
        """改评价 on the reasons page: the rate page again, for the same case."""
        now = self.clock()
        self._guarded("change rating", lambda: self.flow.correct(now))
        self._render()

    def _skip_reasons(self) -> None:
        now = self.clock()
        self._guarded("skip reasons", lambda: self.flow.skip_reasons(now))
        self._render()

    def set_elderly(self, on: bool) -> None:
        """长辈模式 on or off (the citizen's toggle, or a setting): larger pages and longer times."""
        self._elderly = on
        self.window.set_elderly(on)
        self._guarded("elderly mode", lambda: self._apply_timeouts())
        self._render()

    def _apply_timeouts(self) -> None:
        ui = self.config.ui
        factor = ui.elderly_time_factor if self._elderly else 1.0
        rating_s, reasons_s = ui.rating_timeout_s * factor, ui.reasons_timeout_s * factor
        self.flow.set_timeouts(rating_s, reasons_s, self.clock())
        # The countdown rings show the share of the time the page now has.
        station = self.window.station
        self.window.set_station(
            dataclasses.replace(station, rating_timeout_s=rating_s, reasons_timeout_s=reasons_s)
        )

    def _tick(self) -> None:
        if self._since_checkpoint >= checkpoint.CHECKPOINT_EVERY:
            self.save_checkpoint()
        now = self.clock()
        view = self._guarded("tick", lambda: self.flow.tick(now))
        if view is not None and view != self.window.view:
            self._render()
        else:
            self._update_qr(self.flow.view)  # a code about to expire is renewed on the page
        second = int(now)
        if second != self._last_second:
            self._last_second = second
            self.window.tick(now)
            if second % 60 == 0:
                self._update_stats()  # a new month starts from zero

    # --- output

    def _render(self) -> None:
        view = self.flow.view
        previous = self.window.view
        if (
            previous is not None
            and previous.page in ("rate", "reasons", "correct", "thanks")
            and view.page in ("ready", "paused")
            and self._elderly != self.config.ui.elderly
        ):
            self.set_elderly(self.config.ui.elderly)  # the next citizen starts as configured
            return
        self._update_qr(view)
        self.window.show_view(view, self.clock())
        self._speak(previous, view)

    def _speak(self, previous, view) -> None:
        """A new page (or a new case on it) cuts the prompt playing and starts its own; queued after the
        page is shown, played on the voice thread."""
        screen = (view.page, view.case.seq if view.case else None, view.satisfaction, view.staff)
        if screen == self._spoken_for:
            return
        self._spoken_for = screen
        signed_in_now = previous is not None and view.staff is not None and previous.staff != view.staff
        self.voice.cue(
            prompts.prompt_for(
                view.page,
                touch_screen=self.config.ui.touch_screen,
                signed_in_now=signed_in_now,
                welcome=self.config.voice.welcome,
            )
        )

    def _update_stats(self) -> None:
        month = self.stats.month(time.strftime("%Y-%m"))
        self.window.set_stats(month.satisfaction_rate, month.count)

    def _follow_secret_file(self) -> None:
        """A secret rotated with `kiosk hub device add` signs the next token without a restart."""
        stamp = file_stamp(self.config.hub.secret_file) if self.config.hub else None
        if stamp != self._secret_stamp:
            self._secret_stamp = stamp
            self.secret = read_secret(self.config)
            self._qr_case = None  # the shown token was signed with the old secret

    def _update_qr(self, view) -> None:
        """A new token per case, and again before the shown one expires; no code without a secret."""
        if view.page in ("rate", "reasons"):  # not on the correct page: its case is rated already
            self._follow_secret_file()
        # Without a touch screen the reasons page offers the same code: reasons are added by phone.
        qr_page = view.page == "rate" or view.page == "reasons" and not self.config.ui.touch_screen
        if not qr_page or view.case is None or self.secret is None or self.config.qr is None:
            if not qr_page:
                self._qr_case = None
            return
        wall = self.wall_clock()
        if view.case.seq == self._qr_case and wall < self._qr_expires_at - QR_RENEW_MARGIN_S:
            return
        qr = self.config.qr
        issued_at = int(wall)
        try:
            token = qrtoken.issue_token(
                self.secret,
                device_id=self.config.device.id,
                window=self.config.device.window,
                staff_no=view.staff.staff_no if view.staff else None,
                case_no=view.case.case_no,
                item_code=view.case.item_code,
                issued_at=issued_at,
                ttl_s=qr.ttl_s,
            )
        except ValueError as e:
            log.warning("no QR code for this case: %s", e)
            self.window.set_qr(None)
        else:
            self.window.set_qr(qrtoken.qr_url(qr.base_url, token))
        self._qr_case = view.case.seq
        self._qr_expires_at = issued_at + qr.ttl_s

    def admin_facts(self) -> list[tuple[str, str]]:
        return admin_facts(self)


def station_for(config: Config, public_key: PublicKey | None) -> Station:
    """What the pages show about this kiosk; the phone number is offered only with the hub's key."""
    return Station(
        window=config.device.window,
        hall=config.device.hall,
        reasons=config.reasons,
        contact=public_key is not None,
        rating_timeout_s=config.ui.rating_timeout_s,
        reasons_timeout_s=config.ui.reasons_timeout_s,
        screen_diagonal_in=config.ui.screen_diagonal_in,
        keypad=config.serial_device("keypad") is not None,
        touch_screen=config.ui.touch_screen,
    )

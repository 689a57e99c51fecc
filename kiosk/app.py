"""``kiosk run``: the evaluator window wired to the flow, the event log, the serial devices and the QR code.

``create_window(config_path)`` builds everything and returns the main window, not yet shown; its
``kiosk`` attribute is the ``Kiosk`` that drives it (``kiosk.close()`` stops the devices and closes the
log). Serial events arrive on reader threads and cross into the GUI thread through a queued Qt
signal; the GUI thread never waits on serial or network I/O. The one synchronous write is the event
log's append (a local fsync): it is the durability point, done before any page or keypad answer.

The roster the sync agent caches in the log (and the local roster file) are watched on a timer: a cheap
look at whether anything changed, and only then a reload, read on a worker thread with its own
connection and swapped in on the GUI thread, so new staff can sign in without a restart.
"""

from __future__ import annotations

import array
import dataclasses
import fcntl
import logging
import os
import signal
import socket
import sqlite3
import struct
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from nacl.public import PublicKey
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import QApplication

from core import __version__, contact, qrtoken, systemd
from core.config import Config, ConfigError, default_config_path, file_stamp, load_config, read_device_secret
from core.lock import hold_lock, lock_path
from core.store import EventLog, StoreError
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

from . import adminpin
from .flow import HISTORY_TYPES, Flow
from .fonts import find_cjk_font
from .remote import RemoteSettings
from .roster import Roster
from .stats import WindowStats
from .ui.pages import Station
from .ui.window import MainWindow

log = logging.getLogger(__name__)

EXIT_RESTART = 3  # the admin panel's 重启程序: non-zero, so systemd restarts the unit (exit 0 stays down)
TICK_MS = 200  # timeouts, countdowns and the clock follow within this
DEVICE_STATUS_MS = 10_000  # how often the serial devices' state is published for `kiosk doctor`
ROSTER_CHECK_MS = 2000  # how often the roster cache and file are looked at for a change
IDLE_PAGES = ("paused", "ready")  # where remote settings may change what the window does
QR_RENEW_MARGIN_S = 10  # a new code this long before the shown one expires, so no scan lands on a dead one
WINDOWED_SIZE = (1280, 800)
DEVICE_STATES = {"connected": "已连接", "waiting": "未连接（重试中）", "error": "故障"}
SYNC_STATES = {"ok": "正常", "offline": "离线", "error": "出错", "alarm": "告警"}

_loaded_fonts: dict[str, str | None] = {}


def install_cjk_font(config: Config | None) -> str | None:
    """Make a Chinese-capable font the application's default; the family, or None (logged loudly)."""
    if config is not None and config.ui.font_path is not None and not config.ui.font_path.is_file():
        log.error("[ui] font_path %s does not exist; looking for a system font instead", config.ui.font_path)
    path = find_cjk_font(config)
    if path is None:
        log.error(
            "NO CHINESE FONT FOUND: the evaluator will show empty boxes instead of text. "
            "Install fonts-noto-cjk or set [ui] font_path in the configuration."
        )
        return None
    if path not in _loaded_fonts:
        families = QFontDatabase.applicationFontFamilies(QFontDatabase.addApplicationFont(path))
        # A collection holds several regional variants: prefer Simplified Chinese.
        preferred = [f for f in families if f.endswith(" SC")] or families
        _loaded_fonts[path] = preferred[0] if preferred else None
        if not families:
            log.error("cannot load font %s; text may not render", path)
    family = _loaded_fonts[path]
    if family:
        font = QFont(family)
        font.setHintingPreference(QFont.HintingPreference.PreferNoHinting)
        QApplication.setFont(font)
    return family


def read_secret(config: Config) -> bytes | None:
    """The device secret for QR tokens, or None (no QR code) when there is none to read."""
    if config.hub is None or config.qr is None:
        return None
    try:
        return read_device_secret(config.path, config.hub.secret_file)
    except ConfigError as e:
        # Absent is a setup not finished yet; present but unusable is a mistake.
        level = logging.ERROR if config.hub.secret_file.exists() else logging.WARNING
        log.log(level, "%s: the rate page shows no QR code", e)
        return None


def read_public_key(config: Config) -> PublicKey | None:
    if config.hub is None or config.hub.public_key_file is None:
        return None
    try:
        return contact.load_public_key(config.hub.public_key_file)
    except (OSError, contact.ContactError) as e:
        log.error("cannot use the hub public key (%s): the reasons page offers no phone number", e)
        return None


def load_roster(config: Config) -> Roster:
    """The local roster file and the hub roster cached in the log, read on whichever thread calls it."""
    with EventLog(config.store_path) as event_log:
        cached = event_log.roster()
    roster = Roster.load(config.roster_path, cached)
    for problem in roster.problems:
        log.warning("roster: %s", problem)
    return roster


class RosterWatch:
    """Says whether the roster may have changed since the last look, cheaply enough for a GUI timer:
    SQLite's data_version moves only when another connection (the agent) commits, and only then are
    the cached roster's size and version read; the local file is judged by its size and mtime."""

    def __init__(self, event_log: EventLog, csv_path: Path | None):
        self._log = event_log
        self._csv_path = csv_path
        self._data_version: int | None = None
        self._cache: tuple = ()
        self._seen: tuple = self._fingerprint()

    def _fingerprint(self) -> tuple:
        data_version = self._log.data_version()
        if data_version != self._data_version:
            self._data_version = data_version
            self._cache = self._log.roster_version()
        try:
            st = self._csv_path.stat() if self._csv_path is not None else None
            csv = (st.st_size, st.st_mtime_ns) if st else None
        except OSError:
            csv = None
        return (self._cache, csv)

    def changed(self) -> bool:
        seen, self._seen = self._seen, self._fingerprint()
        return seen != self._seen


def ip_addresses() -> list[str]:
    """This machine's IPv4 addresses per interface (loopback left out), read from the kernel; no network I/O."""
    siocgifaddr = 0x8915
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _index, name in socket.if_nameindex():
            if name == "lo":
                continue
            request = array.array("B", struct.pack("256s", name.encode()[:15]))
            try:
                fcntl.ioctl(s.fileno(), siocgifaddr, request)
            except OSError:
                continue  # an interface without an IPv4 address
            found.append(f"{name} {socket.inet_ntoa(request.tobytes()[20:24])}")
    return found


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
        self.stats.update_from(event_log)
        self.flow = Flow(
            record=self._record,
            # Through self.roster, so that a reloaded roster takes over at once.
            find_staff=lambda card: self.roster.find(card),
            staff_by_no=lambda staff_no: self.roster.by_staff_no(staff_no),
            window=config.device.window,
            rating_timeout_s=config.ui.rating_timeout_s,
            thanks_s=config.ui.thanks_s,
            reasons_timeout_s=config.ui.reasons_timeout_s,
            walkin=config.ui.walkin,
            walkin_interval_s=config.ui.walkin_interval_s,
            now=self.clock(),
            history=event_log.events_after(0, types=HISTORY_TYPES),
        )
        self._qr_case: int | None = None
        self._qr_expires_at = 0.0
        self._last_second = -1
        # Reader threads emit; the queued connection runs the handler on the GUI thread.
        self.device_event.connect(self._on_device_event, Qt.ConnectionType.QueuedConnection)
        self.devices = Devices(config.serial, self.device_event.emit)
        self._answers = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keypad-answer")
        self._closed = False
        window.rated.connect(self._touch)
        window.reasons_submitted.connect(self._submit_reasons)
        window.reasons_skipped.connect(self._skip_reasons)
        window.reasons_changed.connect(self._note_reasons)
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
        self.status_timer.stop()
        self.roster_timer.stop()
        self.watchdog.stop()
        self.devices.stop()
        self._answers.shutdown(wait=True)
        self._roster_loader.shutdown(wait=True)
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
        )
        self.window.set_station(station_for(config, self.public_key))
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
        self.stats.add(event)
        if type_ == "rating":
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

    def _skip_reasons(self) -> None:
        now = self.clock()
        self._guarded("skip reasons", lambda: self.flow.skip_reasons(now))
        self._render()

    def _tick(self) -> None:
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
        self._update_qr(view)
        self.window.show_view(view, self.clock())

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
        if view.page == "rate":
            self._follow_secret_file()
        if view.page != "rate" or view.case is None or self.secret is None or self.config.qr is None:
            if view.page != "rate":
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

    # --- the admin panel

    def admin_facts(self) -> list[tuple[str, str]]:
        cfg = self.config
        rows = [
            ("设备编号", cfg.device.id),
            ("软件版本", __version__),
            ("窗口", f"{cfg.device.window}号窗口 {cfg.device.hall}".strip()),
        ]
        for status in self.devices.status():
            state = DEVICE_STATES.get(status.state, status.state)
            text = f"{state} · {status.port} · 帧 {status.frames} · 错误帧 {status.bad_frames} · 重连 {status.reconnects}"
            rows.append((f"串口 {status.name}", text + (f" · {status.detail}" if status.detail else "")))
        if not cfg.serial:
            rows.append(("串口", "未配置串口设备"))
        sync = self.log.get_state("sync") or {}
        head = self.log.head_seq()
        rows.append(("待同步事件", f"{max(0, head - int(sync.get('acked_seq') or 0))}（日志共 {head} 条）"))
        if sync:
            result = SYNC_STATES.get(sync.get("state"), str(sync.get("state")))
            last = sync.get("last_success_at") or "从未成功"
            # An old error beside 正常 would read as a current fault: problems only when not ok.
            problem = None if sync.get("state") == "ok" else sync.get("alarm") or sync.get("last_error")
            rows.append(("最近同步", f"{result} · 上次成功 {last}" + (f" · {problem}" if problem else "")))
        else:
            rows.append(("最近同步", "同步程序尚未运行"))
        remote = self.remote
        if remote.error:
            rows.append(("远程设置", remote.error))
        else:
            kept = f" · 本机配置优先：{'，'.join(remote.local)}" if remote.local else ""
            rows.append(("远程设置", (f"版本 {remote.version}" if remote.version else "未收到") + kept))
        rows.append(("IP 地址", "，".join(ip_addresses()) or "无网络"))
        rows.append(("二维码", "已启用" if self.secret else "未启用（无设备密钥或 [qr] 配置）"))
        return rows


def station_for(config: Config, public_key: PublicKey | None) -> Station:
    """What the pages show about this kiosk; the phone number is offered only with the hub's key."""
    return Station(
        window=config.device.window,
        hall=config.device.hall,
        reasons=config.reasons,
        contact=public_key is not None,
        rating_timeout_s=config.ui.rating_timeout_s,
        reasons_timeout_s=config.ui.reasons_timeout_s,
    )


def create_window(config_path: Path | str) -> MainWindow:
    """The fully wired main window, not yet shown; ``window.kiosk`` drives it (already started)."""
    return _window_for(load_config(config_path))


def _window_for(config: Config) -> MainWindow:
    install_cjk_font(config)
    public_key = read_public_key(config)
    event_log = EventLog(config.store_path)
    remote = RemoteSettings(config, event_log)
    cached = remote.newer()
    if cached is not None:  # the hub's settings from the start, before the first page
        config = remote.take(cached) or config
    station = station_for(config, public_key)
    pin_hash = config.ui.admin_pin_hash
    window = MainWindow(
        station, check_pin=(lambda pin: adminpin.verify_pin(pin, pin_hash)) if pin_hash else None
    )
    kiosk = Kiosk(config, window, event_log, public_key=public_key, secret=read_secret(config), remote=remote)
    window.admin.set_facts(kiosk.admin_facts)
    window.kiosk = kiosk
    if config.ui.hide_cursor:
        window.setCursor(Qt.CursorShape.BlankCursor)
    kiosk.start()
    return window


def _hold_single_instance(config: Config) -> int | None:
    """An open descriptor locking this kiosk's log for the process's lifetime; None when another kiosk
    holds it. Two evaluators on one log would each close the other's cases."""
    return hold_lock(lock_path(config.store_path))


def display_problem(env: dict[str, str] | os._Environ) -> str | None:
    """Why Qt could open no screen here, before Qt tries (it would abort with a misleading message about
    xcb-cursor0); None when a display is set or the platform needs none (eglfs, linuxfb, offscreen…)."""
    platform = (env.get("QT_QPA_PLATFORM") or "").split(":")[0]
    if not platform and (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        return None
    if platform in ("", "xcb") and not env.get("DISPLAY"):
        return f"no display: DISPLAY is not set (Qt platform {platform or 'xcb, the default'})"
    if platform.startswith("wayland") and not env.get("WAYLAND_DISPLAY"):
        return f"no display: WAYLAND_DISPLAY is not set (Qt platform {platform})"
    return None


def main(args) -> int:
    """``kiosk run [--windowed]``."""
    config_path = Path(args.config) if getattr(args, "config", None) else default_config_path()
    # Before Qt: a bad configuration is exit 2 with its message even where no display can be opened.
    config = load_config(config_path)
    problem = display_problem(os.environ)
    if problem:
        print(
            f"kiosk run: {problem}; set DISPLAY=:0, or QT_QPA_PLATFORM=eglfs or linuxfb "
            "(deploy/display/*.env), or offscreen to test; `kiosk doctor` checks the display",
            file=sys.stderr,
        )
        return 2
    try:
        lock = _hold_single_instance(config)
    except OSError as e:
        print(f"kiosk run: cannot lock {config.store_path}: {e.strerror}", file=sys.stderr)
        return 1
    if lock is None:
        print(f"kiosk run: another kiosk is already running on {config.store_path}", file=sys.stderr)
        return 1
    app = QApplication.instance() or QApplication([sys.argv[0]])
    try:
        window = _window_for(config)
    except StoreError as e:
        print(f"kiosk run: {e}", file=sys.stderr)
        return 1
    windowed = getattr(args, "windowed", False) or not config.ui.fullscreen
    if windowed:
        window.resize(*WINDOWED_SIZE)
        window.show()
    else:
        window.setWindowFlag(Qt.WindowType.FramelessWindowHint)
        window.setWindowFlag(Qt.WindowType.WindowStaysOnTopHint)
        window.showFullScreen()
    window.first_painted.connect(lambda: systemd.notify("READY=1"))
    # systemd stops the service with SIGTERM: leave the event loop cleanly (the tick timer lets Python run).
    signal.signal(signal.SIGTERM, lambda *_: QApplication.exit(0))
    code = app.exec()
    window.kiosk.close()
    return code

"""``kiosk run``: the evaluator window wired to the flow, the event log, the serial devices, the voice
and the QR code.

``create_window(config_path)`` builds everything and returns the main window, not yet shown; its
``kiosk`` attribute is the ``Kiosk`` (kiosk/controller.py) that drives it (``kiosk.close()`` stops the
devices and closes the log). The parts each have a module of their own: the font (kiosk/ui/fontsetup.py),
the key files (kiosk/keys.py), the roster and its watch (kiosk/rosterwatch.py), the admin panel's facts
(kiosk/adminfacts.py, kiosk/netinfo.py), the hub's remote settings (kiosk/remote.py).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from core import systemd
from core.config import Config, default_config_path, load_config
from core.lock import hold_lock, lock_path
from core.store import EventLog, StoreError

from . import adminpin
from .controller import EXIT_RESTART, Kiosk, station_for
from .keys import read_public_key, read_secret
from .remote import RemoteSettings
from .ui.fontsetup import install_cjk_font
from .ui.window import MainWindow

__all__ = ["EXIT_RESTART", "create_window", "main", "station_for"]

WINDOWED_SIZE = (1280, 800)


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

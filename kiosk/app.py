"""``kiosk run``: the evaluator window wired to the flow, the event log, the serial devices, the voice
and the QR code.

``create_window(config_path)`` builds everything and returns the main window, not yet shown; its
``kiosk`` attribute is the ``Kiosk`` (kiosk/controller.py) that drives it (``kiosk.close()`` stops the
devices and closes the log). The parts each have a module of their own: the font (kiosk/ui/fontsetup.py),
the key files (kiosk/keys.py), the roster and its watch (kiosk/rosterwatch.py), the admin panel's facts
(kiosk/adminfacts.py, kiosk/netinfo.py), the one-evaluator lock (kiosk/lock.py).
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from nacl.public import PublicKey
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from core import systemd
from core.config import Config, default_config_path, load_config
from core.store import EventLog, StoreError

from . import adminpin
from .controller import EXIT_RESTART, Kiosk
from .keys import read_public_key, read_secret
from .lock import hold_single_instance
from .ui.fontsetup import install_cjk_font
from .ui.pages import Station
from .ui.window import MainWindow

__all__ = ["EXIT_RESTART", "create_window", "main", "station_for"]

WINDOWED_SIZE = (1280, 800)


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


def create_window(config_path: Path | str) -> MainWindow:
    """The fully wired main window, not yet shown; ``window.kiosk`` drives it (already started)."""
    return _window_for(load_config(config_path))


def _window_for(config: Config) -> MainWindow:
    install_cjk_font(config)
    public_key = read_public_key(config)
    station = station_for(config, public_key)
    pin_hash = config.ui.admin_pin_hash
    event_log = EventLog(config.store_path)
    window = MainWindow(
        station, check_pin=(lambda pin: adminpin.verify_pin(pin, pin_hash)) if pin_hash else None
    )
    kiosk = Kiosk(config, window, event_log, public_key=public_key, secret=read_secret(config))
    window.admin.set_facts(kiosk.admin_facts)
    window.kiosk = kiosk
    if config.ui.hide_cursor:
        window.setCursor(Qt.CursorShape.BlankCursor)
    kiosk.start()
    return window


def main(args) -> int:
    """``kiosk run [--windowed]``."""
    config_path = Path(args.config) if getattr(args, "config", None) else default_config_path()
    # Before Qt: a bad configuration is exit 2 with its message even where no display can be opened.
    config = load_config(config_path)
    try:
        lock = hold_single_instance(config)
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

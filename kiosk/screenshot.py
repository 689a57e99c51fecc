"""``kiosk screenshot --config C --out DIR``: every page with a sample staff member and case, at each
reference screen size, as PNG files (``<page>-<width>x<height>.png``), rendered offscreen.

The kiosk's own configuration supplies the hall, window, reasons and whether the phone keypad is
offered; the staff, case, figures and QR code are samples. Nothing is written to the event log.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from core.config import default_config_path, load_config

from .flow import Case, Staff, View

SIZES = ((1024, 600), (1280, 800), (1920, 1080), (800, 1280))
SAMPLE_STAFF = Staff(staff_no="0312", name="王晓敏", title="综合受理窗口 · 首席代办员")
SAMPLE_CASE = Case(
    seq=42,
    ticket_no="A012",
    case_no="370211202611280012",
    item_code="11370211MB0001234X",
    item_name="不动产登记（二手房转移登记）",
    source="queue",
)
SAMPLE_SECRET = b"sample secret, not a device's"
SAMPLE_BASE_URL = "https://hub.example.gov.cn/q/"


def sample_views(now: float) -> dict[str, View]:
    """One view per screenshot, named as its file will be."""

    def view(page: str, **changes: Any) -> View:
        base: dict[str, Any] = dict(
            page=page,
            staff=SAMPLE_STAFF,
            case=None,
            satisfaction=None,
            deadline=None,
            notice=None,
            called_ticket=None,
            walkin=False,
        )
        return View(**(base | changes))

    return {
        "paused": view("paused", staff=None),
        "ready": view("ready", called_ticket="A012"),
        "ready-walkin": view("ready", walkin=True),
        "rate": view("rate", case=SAMPLE_CASE, deadline=now + 47.2),
        "reasons": view("reasons", case=SAMPLE_CASE, satisfaction=2, deadline=now + 52.5),
        "thanks": view("thanks", case=SAMPLE_CASE, satisfaction=5, deadline=now + 3),
        "thanks-bad": view("thanks", case=SAMPLE_CASE, satisfaction=1, deadline=now + 3),
        "notice": view("paused", staff=None, notice="未登记的工作人员卡，请联系管理员"),
    }


def render(
    config_path: Path, out: Path, sizes: tuple[tuple[int, int], ...] = SIZES, *, token_at: int | None = None
) -> list[Path]:
    """Every sample view at each size, as PNG files in ``out``. ``token_at`` fixes the QR token's time and
    nonce, so the same code renders the same picture (docs/screenshots/ is compared with it)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    config = load_config(config_path)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    # The offscreen platform warns about every shown window; nothing a reader of the output can act on.
    previous = qInstallMessageHandler(_without_offscreen_noise)
    try:
        return _render_all(app, config, out, sizes, token_at)
    finally:
        qInstallMessageHandler(previous)


def _without_offscreen_noise(mode, context, message: str) -> None:
    if "propagateSizeHints" not in message:
        print(message, file=sys.stderr)


def _render_all(
    app: Any, config: Any, out: Path, sizes: tuple[tuple[int, int], ...], token_at: int | None
) -> list[Path]:
    from core import qrtoken

    from .app import install_cjk_font, read_public_key, read_secret, station_for
    from .ui.window import MainWindow

    install_cjk_font(config)
    station = station_for(config, read_public_key(config))
    token = qrtoken.issue_token(
        read_secret(config) or SAMPLE_SECRET,
        device_id=config.device.id,
        window=config.device.window,
        staff_no=SAMPLE_STAFF.staff_no,
        case_no=SAMPLE_CASE.case_no,
        item_code=SAMPLE_CASE.item_code,
        issued_at=int(time.time()) if token_at is None else token_at,
        ttl_s=config.qr.ttl_s if config.qr else 600,
        nonce=None if token_at is None else bytes(qrtoken.NONCE_BYTES),
    )
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for width, height in sizes:
        window = MainWindow(station)
        window.set_stats(0.986, 128)
        window.set_qr(qrtoken.qr_url(config.qr.base_url if config.qr else SAMPLE_BASE_URL, token))
        window.set_reasons_given(True)  # thanks-bad: the citizen named reasons
        window.resize(width, height)
        window.show()
        now = time.monotonic()
        for name, view in sample_views(now).items():
            window.show_view(view, now)
            window.tick(now)
            app.processEvents()
            path = out / f"{name}-{width}x{height}.png"
            if not window.grab().save(str(path)):
                raise OSError(f"cannot write {path}")
            written.append(path)
        window.allow_close()
        window.close()
        window.deleteLater()
        app.processEvents()
    return written


def main(args) -> int:
    config_path = Path(args.config) if getattr(args, "config", None) else default_config_path()
    written = render(config_path, Path(args.out))
    print(f"{len(written)} screenshots in {args.out}")
    return 0

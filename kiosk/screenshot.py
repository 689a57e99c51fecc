"""``kiosk screenshot --config C --out DIR``: every page with a sample staff member and case, at each
reference screen size, in both modes, as PNG files (``<page>-<width>x<height>.png`` and, in 长辈模式,
``<page>-elderly-<width>x<height>.png``), rendered offscreen. ``--audit`` also prints what the
accessibility checks (kiosk/ui/audit.py) find on each, and exits 1 if anything.

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
# The screens those sizes come on, by diagonal in inches (a 7-inch panel, a 10.1-inch tablet in either
# orientation, the smallest common 1080p monitor): the pixels per inch the figures are checked at.
REFERENCE_DIAGONALS = {(1024, 600): 7.0, (1280, 800): 10.1, (1920, 1080): 15.6, (800, 1280): 10.1}
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
        "reasons-ticked": view("reasons", case=SAMPLE_CASE, satisfaction=2, deadline=now + 52.5),
        "correct": view("correct", case=SAMPLE_CASE, satisfaction=1, deadline=now + 47.2),
        "thanks": view("thanks", case=SAMPLE_CASE, satisfaction=5, deadline=now + 3),
        "thanks-bad": view("thanks", case=SAMPLE_CASE, satisfaction=1, deadline=now + 3),
        "notice": view("paused", staff=None, notice="未登记的工作人员卡，请联系管理员"),
    }


# Two reasons ticked and a phone number being typed (in its own step where it has one).
TICKED = ("201", "203")
TYPED = "1380013"


def render(
    config_path: Path,
    out: Path,
    sizes: tuple[tuple[int, int], ...] = SIZES,
    *,
    token_at: int | None = None,
    audit: bool = False,
) -> list[Path]:
    """Every sample view at each size in both modes, as PNG files in ``out``. ``token_at`` fixes the QR
    token's time and nonce, so the same code renders the same picture (docs/screenshots/ is compared
    with it); ``audit`` runs the accessibility checks on each (AuditFailed when they find anything)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    config = load_config(config_path)
    app = QApplication.instance() or QApplication([sys.argv[0]])
    # The offscreen platform warns about every shown window; nothing a reader of the output can act on.
    previous = qInstallMessageHandler(_without_offscreen_noise)
    try:
        return _render_all(app, config, out, sizes, token_at, audit)
    finally:
        qInstallMessageHandler(previous)


def _without_offscreen_noise(mode, context, message: str) -> None:
    if "propagateSizeHints" not in message:
        print(message, file=sys.stderr)


def _render_all(
    app: Any, config: Any, out: Path, sizes: tuple[tuple[int, int], ...], token_at: int | None, audit: bool
) -> list[Path]:
    from dataclasses import replace

    from core import qrtoken

    from .app import station_for
    from .keys import read_public_key, read_secret
    from .ui import audit as checks
    from .ui.fontsetup import install_cjk_font
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
    problems = 0
    for (width, height), elderly in ((size, elderly) for elderly in (False, True) for size in sizes):
        # The configured screen, else the reference screen of that size.
        diagonal = config.ui.screen_diagonal_in or REFERENCE_DIAGONALS.get((width, height))
        window = MainWindow(replace(station, screen_diagonal_in=diagonal))
        window.set_stats(0.986, 128)
        window.set_qr(qrtoken.qr_url(config.qr.base_url if config.qr else SAMPLE_BASE_URL, token))
        window.set_reasons_given(True)  # thanks-bad: the citizen named reasons
        window.resize(width, height)
        window.set_elderly(elderly)
        window.show()
        now = time.monotonic()
        for name, view in sample_views(now).items():
            window.show_view(view, now)
            if name == "reasons-ticked":
                tick_and_type(window.pages["reasons"])
            window.tick(now)
            app.processEvents()
            path = out / f"{name}{'-elderly' if elderly else ''}-{width}x{height}.png"
            if not window.grab().save(str(path)):
                raise OSError(f"cannot write {path}")
            written.append(path)
            if audit:
                for problem in checks.audit(window, window.metrics()):
                    print(f"{path.name}: {problem}")
                    problems += 1
        window.allow_close()
        window.close()
        window.deleteLater()
        app.processEvents()
    if audit and problems:
        raise AuditFailed(problems)
    return written


class AuditFailed(Exception):
    """The accessibility checks found something on a rendered page."""


def tick_and_type(page) -> None:
    for code in TICKED:
        if code in page.reason_buttons:
            page.reason_buttons[code].setChecked(True)
    if page.station.contact:
        if page.to_phone.isVisible():
            page.to_phone.click()
        for digit in TYPED:
            page.keypad.digit.emit(digit)


def main(args) -> int:
    config_path = Path(args.config) if getattr(args, "config", None) else default_config_path()
    try:
        written = render(config_path, Path(args.out), audit=getattr(args, "audit", False))
    except AuditFailed as e:
        print(f"accessibility checks: {e.args[0]} problems", file=sys.stderr)
        return 1
    print(f"{len(written)} screenshots in {args.out}")
    return 0

"""Window posters (第十条): an A4 page per window with its number, its section and a QR code leading to a
configured URL (the province's app page for the hall, or this hub's page), from the device registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import segno
from sqlalchemy import select

from ..schema import devices
from .reports import environment, to_pdf
from .store import FigureStore, read_labels, read_sections


@dataclass(frozen=True)
class PosterWindow:
    device_id: str
    window: str  # the number the evaluator reports, or the device id
    dept: str
    dept_name: str


def windows_for_posters(figures: FigureStore) -> list[PosterWindow]:
    """Every registered device as a window, with its current section, ordered by window number."""
    figures.refresh()  # the window numbers come from the ratings folded so far
    with figures.engine.connect() as conn:
        ids: Any = conn.execute(select(devices.c.id).order_by(devices.c.id)).scalars().all()
        names = read_labels(conn)
        history, section_names = read_sections(conn)
    out = []
    for device_id in ids:
        dept = history[device_id][-1][1] if history.get(device_id) else ""
        out.append(
            PosterWindow(
                device_id, names.name("windows", device_id) or device_id, dept, section_names.get(dept, dept)
            )
        )
    return sorted(out, key=lambda w: (w.window.zfill(8), w.device_id))


def poster_url(template: str, window: PosterWindow) -> str:
    return template.replace("{window}", quote(window.window, safe="")).replace(
        "{device}", quote(window.device_id, safe="")
    )


def qr_svg(url: str) -> str:
    """The QR code as inline SVG (error correction M, a quiet zone of 4 modules), no file, no network."""
    return segno.make(url, error="m").svg_inline(scale=10, border=4, dark="#000", light="#fff")


def posters_html(windows: list[PosterWindow], url_template: str, hall: str) -> str:
    pages = [
        {
            "window": w,
            "title": f"{w.window}号窗口" if w.window.isdigit() else w.window,
            "url": poster_url(url_template, w),
            "qr": qr_svg(poster_url(url_template, w)),
        }
        for w in windows
    ]
    return environment().get_template("posters.html").render(pages=pages, hall=hall)


def poster_pdf(windows: list[PosterWindow], url_template: str, hall: str) -> bytes:
    return to_pdf(posters_html(windows, url_template, hall))

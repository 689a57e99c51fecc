"""The look: colours, the size unit that scales everything with the window, the style sheet, text fitting.

Every size is a multiple of one unit ``u`` (a sixtieth of the window's shorter side), so the same
layout works from 1024×600 to 1920×1080 and in portrait. Fonts are pixel sizes set on widgets, never
in the style sheet, so that text fitting can shrink them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PySide6.QtGui import QColor, QFont, QFontMetrics

# A calm government-service palette: deep blue header, light paper body, the national red for 好差评.
NAVY = "#0b3a75"
NAVY_DARK = "#082b57"
GOV_RED = "#c8161d"
PAPER = "#f2f5fa"
CARD = "#ffffff"
INK = "#1c2733"
MUTED = "#5b6776"
LINE = "#d8dfe9"
GOLD = "#e8b44a"

# One colour per satisfaction code (5 = 非常满意): green through blue, amber and orange to red.
LEVEL_COLOURS: dict[int, str] = {
    5: "#138a53",
    4: "#2a72c9",
    3: "#d99400",
    2: "#e0641b",
    1: "#c62828",
}

MIN_FONT_PX = 9
READABLE_PX = 14  # the smallest a name a citizen must read (item, hall) is drawn: it wraps, then elides
HEADER_UNITS = 7.5  # the header's height


@dataclass(frozen=True)
class Metrics:
    """The window size every page lays itself out for."""

    width: int
    height: int

    @property
    def portrait(self) -> bool:
        return self.height > self.width

    @property
    def u(self) -> float:
        return min(self.width, self.height) / 60

    def px(self, units: float) -> int:
        return max(1, round(units * self.u))


def font(family: str, px: int, *, bold: bool = False) -> QFont:
    f = QFont(family) if family else QFont()
    f.setPixelSize(max(MIN_FONT_PX, px))
    f.setBold(bold)
    f.setHintingPreference(QFont.HintingPreference.PreferNoHinting)
    return f


def fitted_px(base: QFont, texts: list[str] | tuple[str, ...], width: int, max_px: int) -> int:
    """The largest pixel size <= ``max_px`` at which every line of ``texts`` fits ``width`` pixels."""
    longest = max(texts, key=len, default="")
    if not longest or width <= 0:
        return max(MIN_FONT_PX, max_px)
    f = QFont(base)
    f.setPixelSize(max_px)
    widest = max(QFontMetrics(f).horizontalAdvance(t) for t in texts)
    if widest <= width:
        return max_px
    # Text width is nearly proportional to pixel size; step down from the estimate until it fits.
    px = max(MIN_FONT_PX, math.floor(max_px * width / widest))
    while px > MIN_FONT_PX:
        f.setPixelSize(px)
        if max(QFontMetrics(f).horizontalAdvance(t) for t in texts) <= width:
            break
        px -= 1
    return px


def darker(colour: str, factor: int = 125) -> QColor:
    return QColor(colour).darker(factor)


def stylesheet(m: Metrics) -> str:
    """The window's style sheet for these metrics (radii and borders scale; fonts are set elsewhere)."""
    r = m.px(1.2)
    b = max(2, m.px(0.25))
    return f"""
    #main {{ background: {PAPER}; }}
    #header {{ background: qlineargradient(x1:0, y1:0, x2:0, y2:1, stop:0 {NAVY}, stop:1 {NAVY_DARK});
               border-bottom: {max(2, m.px(0.35))}px solid {GOV_RED}; }}
    #header QLabel {{ color: white; }}
    #header_sub {{ color: #c9d7ea; }}
    QLabel {{ color: {INK}; background: transparent; }}
    .muted {{ color: {MUTED}; }}
    .card {{ background: {CARD}; border: 1px solid {LINE}; border-radius: {r}px; }}
    .banner {{ background: #fff6e0; border: {b}px solid {GOLD}; border-radius: {r}px; color: #6b4a00; }}
    .accent {{ color: {NAVY}; }}
    .red {{ color: {GOV_RED}; }}
    QPushButton {{ background: {CARD}; color: {INK}; border: {b}px solid {LINE}; border-radius: {r}px; }}
    QPushButton:pressed {{ background: #e3eaf5; }}
    QPushButton:disabled {{ color: #a9b3bf; background: #eef1f5; border-color: #e2e7ee; }}
    QPushButton.reason:checked {{ background: #fdecea; border-color: {GOV_RED}; color: {GOV_RED}; }}
    QPushButton.primary {{ background: {NAVY}; color: white; border-color: {NAVY}; }}
    QPushButton.primary:pressed {{ background: {NAVY_DARK}; }}
    QPushButton.primary:disabled {{ background: #9fb2cb; border-color: #9fb2cb; color: #eef2f7; }}
    QPushButton.danger {{ background: {GOV_RED}; color: white; border-color: {GOV_RED}; }}
    QPushButton.key {{ background: #f7f9fc; }}
    #notice_band {{ background: {GOLD}; border-bottom: {max(2, m.px(0.35))}px solid {GOV_RED}; }}
    #notice {{ color: {INK}; }}
    #admin_overlay {{ background: {PAPER}; }}
    QScrollArea, QScrollArea > QWidget {{ background: transparent; }}
    """

"""The look: colours, the size unit that scales everything with the window, the style sheet, text fitting.

Every size is a multiple of one unit ``u`` (a sixtieth of the window's shorter side), so the same
layout works from 1024×600 to 1920×1080 and in portrait, with floors in physical units from the
screen's pixels per inch: touch targets at least ``TARGET_MM`` on each side, text at least ``BODY_DP``
and main-function text (titles, buttons) in 长辈模式 at least ``MAIN_DP`` (the 适老化 figures, docs/ui.md).
Fonts are pixel sizes set on widgets, never in the style sheet, so that text fitting can shrink them.
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
# Boundaries a citizen must see (button outlines): at least 3:1 against white and the paper.
OUTLINE = "#6b7a8c"
CHECKED = NAVY  # a ticked reason: navy with white text and a ✓, never colour alone

# One colour per satisfaction code (5 = 非常满意): green through blue, amber and orange to red, each
# dark enough for white text on it and for itself as text on the paper (≥ 4.5:1 both ways).
LEVEL_COLOURS: dict[int, str] = {
    5: "#0f7a48",
    4: "#2466b5",
    3: "#8f6200",
    2: "#b84a0e",
    1: "#b71c1c",
}

# The 适老化 figures (docs/ui.md): 1 dp is 1/160 inch.
TARGET_MM = 9.5  # touch targets, each side (60 dp)
BODY_DP = 18  # every text
MAIN_DP = 30  # main-function text (titles, buttons) in 长辈模式
LARGE_DP = 24  # text this large needs 3:1 contrast, smaller text 4.5:1
DEFAULT_PPI = 96.0  # when neither the configuration nor the screen says
ELDERLY_SCALE = 1.3  # 长辈模式: text this much larger
MIN_FONT_PX = 9
READABLE_PX = 14  # the smallest a name a citizen must read (item, hall) is drawn: it wraps, then elides
HEADER_UNITS = 7.5  # the header's height


@dataclass(frozen=True)
class Metrics:
    """The window size every page lays itself out for, its pixels per inch and the mode."""

    width: int
    height: int
    ppi: float = DEFAULT_PPI
    elderly: bool = False

    @property
    def portrait(self) -> bool:
        return self.height > self.width

    @property
    def u(self) -> float:
        return min(self.width, self.height) / 60

    def px(self, units: float) -> int:
        return max(1, round(units * self.u))

    def mm(self, mm: float) -> int:
        return math.ceil(mm * self.ppi / 25.4)

    def dp(self, dp: float) -> int:
        return math.ceil(dp * self.ppi / 160)

    @property
    def target(self) -> int:
        """The smallest side of a touch target, in pixels."""
        return self.mm(TARGET_MM)

    def touch(self, units: float) -> int:
        """A touch target's side: ``units`` of the window, never under ``TARGET_MM``."""
        return max(self.px(units), self.target)

    def text(self, units: float, *, main: bool = False) -> int:
        """A font's pixel size: ``units`` of the window (larger in 长辈模式), never under the figure."""
        scaled = self.px(units * (ELDERLY_SCALE if self.elderly else 1))
        return max(scaled, self.dp(self.min_dp(main)))

    def min_dp(self, main: bool) -> float:
        return MAIN_DP if main and self.elderly else BODY_DP


def ppi_for(width: int, height: int, diagonal_in: float | None, screen_ppi: float | None = None) -> float:
    """Pixels per inch from the configured diagonal, else the screen's own figure when plausible."""
    if diagonal_in:
        return math.hypot(width, height) / diagonal_in
    if screen_ppi and 60 <= screen_ppi <= 600:
        return screen_ppi
    return DEFAULT_PPI


def luminance(colour: QColor) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return (
        0.2126 * channel(colour.redF()) + 0.7152 * channel(colour.greenF()) + 0.0722 * channel(colour.blueF())
    )


def contrast(a: QColor, b: QColor) -> float:
    """The WCAG contrast ratio of two colours, 1 to 21."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


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
    QPushButton {{ background: {CARD}; color: {INK}; border: {b}px solid {OUTLINE}; border-radius: {r}px; }}
    QPushButton:pressed {{ background: #e3eaf5; }}
    QPushButton:disabled {{ color: #4a5563; background: #e6ebf1; border-color: {OUTLINE}; }}
    QPushButton.reason:checked {{ background: {CHECKED}; border-color: {CHECKED}; color: white; }}
    QPushButton.primary {{ background: {NAVY}; color: white; border-color: {NAVY}; }}
    QPushButton.primary:pressed {{ background: {NAVY_DARK}; }}
    QPushButton.primary:disabled {{ background: #e6ebf1; border-color: {OUTLINE}; color: #4a5563; }}
    QPushButton.toggle {{ background: white; color: {NAVY}; border-color: {GOLD}; }}
    QPushButton.toggle:checked {{ background: {GOLD}; color: {INK}; border-color: white; }}
    QPushButton.danger {{ background: {GOV_RED}; color: white; border-color: {GOV_RED}; }}
    QPushButton.key {{ background: #f7f9fc; }}
    #notice_band {{ background: {GOLD}; border-bottom: {max(2, m.px(0.35))}px solid {GOV_RED}; }}
    #notice {{ color: {INK}; }}
    #admin_overlay {{ background: {PAPER}; }}
    QScrollArea, QScrollArea > QWidget {{ background: transparent; }}
    QScrollBar:vertical {{ width: {m.mm(4)}px; background: {LINE}; border-radius: {m.mm(2)}px; }}
    QScrollBar::handle:vertical {{ background: {OUTLINE}; border-radius: {m.mm(2)}px; min-height: {m.mm(10)}px; }}
    QScrollBar::add-line, QScrollBar::sub-line {{ height: 0; }}
    """

"""The kiosk's own widgets: self-fitting labels, the five rating buttons, the digit keypad, the staff
photo, the QR code and the countdown ring.

Widgets that show text size their font to the room they get (``theme.fitted_px``) and a label may
wrap a long text onto a few lines, so text is never clipped at any window size; each exposes what it
needs for tests to check that.
"""

from __future__ import annotations

import qrcode
from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import (
    QAbstractButton,
    QBoxLayout,
    QGridLayout,
    QLabel,
    QLayout,
    QPushButton,
    QSizePolicy,
    QWidget,
)

from core.domain import LEVEL_ORDER, LEVELS

from . import painting, theme

LONGEST_LEVEL_WORD = max(LEVELS.values(), key=len)


class FitLabel(QLabel):
    """A label that fits its text to its width: first a smaller font (down to ``min_px``), then up to
    ``max_lines`` lines (at the largest size that needs no more), and only then an "…" at the end of
    the last line. ``text()`` is always the whole text; what is drawn is the fitted form of it."""

    def __init__(
        self,
        text: str = "",
        *,
        max_px: int = 20,
        min_px: int = theme.MIN_FONT_PX,
        max_lines: int = 1,
        bold: bool = False,
        css_class: str = "",
        parent=None,
    ):
        super().__init__("", parent)
        self._text = text
        self._max_px, self._min_px, self._max_lines = max_px, min(min_px, max_px), max_lines
        self._bold = bold
        self._shown: list[str] = [text]
        if css_class:
            self.setProperty("class", css_class)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self._refit()

    # The text adapts to the width it gets, so it never asks for width of its own.
    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(1, super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(1, super().minimumSizeHint().height())

    def text(self) -> str:
        return self._text

    def set_max_px(self, px: int) -> None:
        self.set_fit(max_px=px)

    def set_fit(self, *, max_px: int, min_px: int | None = None, max_lines: int | None = None) -> None:
        """The largest font size, the smallest it may shrink to, and how many lines it may wrap onto."""
        min_px = self._min_px if min_px is None else min_px
        max_lines = self._max_lines if max_lines is None else max_lines
        if (max_px, min_px, max_lines) != (self._max_px, self._min_px, self._max_lines):
            self._max_px, self._min_px, self._max_lines = max_px, min(min_px, max_px), max_lines
            self._refit()

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        if text != self._text:
            self._text = text
            self._refit()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._refit()

    def _refit(self) -> None:
        room = self.contentsRect().width() - 2
        paragraphs = self._text.split("\n")
        f = theme.font("", self._max_px, bold=self._bold)
        px = theme.fitted_px(f, paragraphs, room, self._max_px)
        lines = paragraphs
        if px < self._min_px and room > 0:
            px, lines = self._wrapped(f, paragraphs, room)
        f.setPixelSize(px)
        if self.font().pixelSize() != px or self.font().bold() != self._bold:
            self.setFont(f)
        self._shown = lines
        shown = "\n".join(lines)
        if super().text() != shown:
            super().setText(shown)
        # One line keeps the height of the largest font, so a shrunken text never moves the layout.
        line_h = max(QFontMetrics(theme.font("", self._max_px, bold=self._bold)).height(), 1)
        height = max(line_h, QFontMetrics(f).lineSpacing() * len(lines))
        margins = self.contentsMargins()
        self.setFixedHeight(height + margins.top() + margins.bottom())

    def _wrapped(self, f: QFont, paragraphs: list[str], room: int) -> tuple[int, list[str]]:
        """The largest size from ``max_px`` down to ``min_px`` whose wrapped lines number at most
        ``max_lines``; at ``min_px`` the lines that fit, the last one ending in "…"."""
        for px in range(self._max_px, self._min_px - 1, -1):
            f.setPixelSize(px)
            lines = [line for p in paragraphs for line in wrap_text(QFontMetrics(f), p, room)]
            if len(lines) <= self._max_lines:
                return px, lines
        fm = QFontMetrics(f)
        kept = lines[: self._max_lines - 1]
        rest = "".join(lines[len(kept) :])
        return self._min_px, [*kept, fm.elidedText(rest, Qt.TextElideMode.ElideRight, room)]

    def shown_lines(self) -> list[str]:
        """The lines as drawn (wrapped, perhaps with a final "…")."""
        return list(self._shown)

    def text_fits(self) -> bool:
        room = self.contentsRect().width()
        fm = self.fontMetrics()
        return all(fm.horizontalAdvance(t) <= room for t in self._shown) and (
            fm.lineSpacing() * len(self._shown) <= self.contentsRect().height()
        )


def wrap_text(fm: QFontMetrics, text: str, room: int) -> list[str]:
    """``text`` in lines no wider than ``room``: Chinese breaks between any two characters, other words
    at a space when the line has one."""
    lines: list[str] = []
    while text:
        lo, hi = 1, len(text)  # the longest prefix that fits (at least one character)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fm.horizontalAdvance(text[:mid]) <= room:
                lo = mid
            else:
                hi = mid - 1
        cut = lo
        if cut < len(text) and text[cut - 1].isascii() and text[cut].isascii() and " " in text[1:cut]:
            cut = text.rindex(" ", 1, cut) + 1
        lines.append(text[:cut].rstrip())
        text = text[cut:].lstrip(" ")
    return lines or [""]


def layout_of(widget: QWidget) -> QLayout:
    """The layout a widget was built with (Qt types ``layout()`` as optional)."""
    layout = widget.layout()
    if layout is None:
        raise LookupError(f"{widget.objectName() or type(widget).__name__} has no layout")
    return layout


def orient(layout: QBoxLayout, *, vertical: bool) -> None:
    """Lay a box out top to bottom or left to right (portrait and landscape share one layout)."""
    layout.setDirection(QBoxLayout.Direction.TopToBottom if vertical else QBoxLayout.Direction.LeftToRight)


class RatingButton(QAbstractButton):
    """One satisfaction level: a large coloured tile with its face and its exact words."""

    def __init__(self, satisfaction: int, parent=None):
        super().__init__(parent)
        self.satisfaction = satisfaction
        self.colour = QColor(theme.LEVEL_COLOURS[satisfaction])
        self.setText(LEVELS[satisfaction])
        self.setObjectName(f"rate_{satisfaction}")
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAccessibleName(LEVELS[satisfaction])
        self._wide = False
        self._max_px = 24
        self._min_px = theme.MIN_FONT_PX
        self._min_key_px = 0
        self._key: str | None = None

    def set_style(self, *, wide: bool, max_px: int, min_px: int = theme.MIN_FONT_PX, key_px: int = 0) -> None:
        """``wide``: face left of the words (portrait rows); otherwise face above the words (a tile). The
        words never get smaller than ``min_px`` (the face gives way), the key number not under ``key_px``."""
        self._wide, self._max_px, self._min_px, self._min_key_px = wide, max_px, min_px, key_px
        self._refit()

    def _face_rect(self) -> QRectF:
        w, h = self.width(), self.height()
        if self._wide:
            side = h * 0.66
            return QRectF(h * 0.22, (h - side) / 2, side, side)
        # The face takes what the words at their smallest size leave.
        side = max(0.0, min(w * 0.62, h * 0.50, h * 0.86 - self._min_px * 1.45 - h * 0.04 - h * 0.10))
        return QRectF((w - side) / 2, h * 0.10, side, side)

    def _text_rect(self) -> QRectF:
        w, h = self.width(), self.height()
        pad = max(4.0, min(w, h) * 0.03)
        if self._wide:
            face = self._face_rect()
            left = face.right() + h * 0.25
            return QRectF(left, 0, w - left - pad, h)
        top = self._face_rect().bottom() + h * 0.04
        return QRectF(pad, top, w - 2 * pad, h - top - h * 0.06)

    def text_room(self) -> int:
        return int(self._text_rect().width())

    def set_key(self, key: str | None) -> None:
        """The keypad key that gives this rating, shown in a corner badge (None: no keypad fitted)."""
        self._key = key
        self.update()

    def _key_rect(self) -> QRectF:
        side = max(12.0, min(self.width(), self.height()) * 0.26, self._min_key_px / 0.62 + 1)
        inset = side * 0.18
        return QRectF(inset, inset, side, side)

    def text_items(self) -> list:
        from .audit import TextItem

        items = [TextItem(self.text(), self._text_rect().toAlignedRect(), self.font().pixelSize(), True)]
        if self._key:
            items.append(TextItem(self._key, self._key_rect().toAlignedRect(), self._key_px()))
        return items

    def _key_px(self) -> int:
        return max(theme.MIN_FONT_PX, int(self._key_rect().height() * 0.62))

    def text_fits(self) -> bool:
        fm = self.fontMetrics()
        return (
            fm.horizontalAdvance(self.text()) <= self.text_room()
            and fm.height() <= self._text_rect().height()
        )

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._refit()

    def _refit(self) -> None:
        # Every tile uses the size at which the longest word fits, so all five read alike.
        f = theme.font("", self._max_px, bold=True)
        rect = self._text_rect()
        by_height = int(rect.height() / 1.45)
        px = theme.fitted_px(f, [LONGEST_LEVEL_WORD], int(rect.width()), min(self._max_px, max(by_height, 1)))
        f.setPixelSize(max(px, min(self._min_px, self._max_px)))
        self.setFont(f)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(120, 120)

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = QRectF(self.rect()).adjusted(1, 1, -1, -1)
        radius = min(r.width(), r.height()) * 0.10
        fill = self.colour.darker(118) if self.isDown() else self.colour
        # A soft shadow under the tile lifts it off the page like a physical key.
        shadow = QPainterPath()
        shadow.addRoundedRect(r.translated(0, max(2.0, r.height() * 0.02)), radius, radius)
        p.fillPath(shadow, QColor(0, 0, 0, 40))
        tile = QPainterPath()
        tile.addRoundedRect(r, radius, radius)
        p.fillPath(tile, fill)
        painting.draw_face(p, self._face_rect(), self.satisfaction, fill.darker(150))
        p.setPen(QColor("white"))
        p.setFont(self.font())
        align = Qt.AlignmentFlag.AlignVCenter | (
            Qt.AlignmentFlag.AlignLeft if self._wide else Qt.AlignmentFlag.AlignHCenter
        )
        p.drawText(self._text_rect(), int(align), self.text())
        if self._key:
            # The key's number in a white disc: which keypad key gives this rating.
            badge = self._key_rect()
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor("white"))
            p.drawEllipse(badge)
            f = QFont(self.font())
            f.setPixelSize(self._key_px())
            p.setFont(f)
            p.setPen(self.colour.darker(130))
            p.drawText(badge, int(Qt.AlignmentFlag.AlignCenter), self._key)
        p.end()


class RatingPanel(QWidget):
    """The five levels, best first: a row of tiles in landscape, a column of wide rows in portrait."""

    rated = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._layout = QBoxLayout(QBoxLayout.Direction.LeftToRight, self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self.buttons: dict[int, RatingButton] = {}
        for satisfaction in LEVEL_ORDER:
            button = RatingButton(satisfaction)
            button.clicked.connect(lambda _=False, s=satisfaction: self.rated.emit(s))
            self._layout.addWidget(button)
            self.buttons[satisfaction] = button

    def set_metrics(self, m: theme.Metrics, *, vertical: bool) -> None:
        orient(self._layout, vertical=vertical)
        self._layout.setSpacing(m.px(1.4))
        for button in self.buttons.values():
            button.set_style(
                wide=vertical,
                max_px=m.text(4.2 if vertical else 3.4, main=True),
                min_px=m.dp(m.min_dp(True)),
                key_px=m.dp(theme.BODY_DP),
            )
            button.setMinimumSize(m.target, m.target)

    def show_keys(self, shown: bool) -> None:
        """Show each level's keypad key (a keypad is fitted)."""
        for satisfaction, button in self.buttons.items():
            button.set_key(str(satisfaction) if shown else None)


class Keypad(QWidget):
    """A large digit keypad: 1-9, 清空, 0, 删除."""

    digit = Signal(str)
    delete = Signal()
    clear = Signal()

    def __init__(self, object_prefix: str, parent=None):
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        self.grid = grid
        self.keys: list[QPushButton] = []
        labels = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "清空", "0", "删除"]
        for i, label in enumerate(labels):
            key = QPushButton(label)
            key.setProperty("class", "key")
            key.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            key.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
            name = {"清空": "clear", "删除": "delete"}.get(label, label)
            key.setObjectName(f"{object_prefix}_key_{name}")
            if label == "清空":
                key.clicked.connect(self.clear.emit)
            elif label == "删除":
                key.clicked.connect(self.delete.emit)
            else:
                key.clicked.connect(lambda _=False, d=label: self.digit.emit(d))
            grid.addWidget(key, i // 3, i % 3)
            self.keys.append(key)
        self._columns = 3

    def set_columns(self, columns: int) -> None:
        """3 (a phone pad, four rows) or 6 (two rows, for a short wide space)."""
        if columns == self._columns:
            return
        self._columns = columns
        while self.grid.count():
            self.grid.takeAt(0)
        # Six columns: 1-6 over 7 8 9 0 清空 删除.
        order = self.keys if columns == 3 else [*self.keys[:9], self.keys[10], self.keys[9], self.keys[11]]
        for i, key in enumerate(order):
            self.grid.addWidget(key, i // columns, i % columns)
        for c in range(6):
            self.grid.setColumnStretch(c, 1 if c < columns else 0)

    def set_metrics(self, m: theme.Metrics, key_height: int) -> None:
        self.grid.setSpacing(max(m.px(0.8), m.mm(1.5)))
        key_height = max(key_height, m.target)
        self._min_px = m.dp(m.min_dp(True))
        for key in self.keys:
            key.setMinimumSize(m.target, key_height)
        self._fit_fonts()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._fit_fonts()

    def _fit_fonts(self) -> None:
        """Digits half as tall as the keys they get; 清空 and 删除 as large as fits (two characters)."""
        key = self.keys[0]
        h, w = max(key.height(), key.minimumHeight()), max(key.width(), key.minimumWidth())
        low = getattr(self, "_min_px", theme.MIN_FONT_PX)
        digit_px = max(low, int(min(h * 0.45, w * 0.5)))
        word_px = max(low, int(min(h * 0.36, w * 0.36)))
        for key in self.keys:
            px = digit_px if key.text().isdigit() else word_px
            if key.font().pixelSize() != px:
                key.setFont(theme.font("", px, bold=True))


class PhotoView(QWidget):
    """The staff photo in a rounded frame, or a drawn silhouette when there is none."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._photo_bytes: bytes | None = None
        self._pixmap: QPixmap | None = None

    def set_photo(self, data: bytes | None) -> None:
        if data == self._photo_bytes:
            return
        self._photo_bytes = data
        self._pixmap = None
        if data:
            image = QImage.fromData(data)
            self._pixmap = QPixmap.fromImage(image) if not image.isNull() else None
        self.update()

    def has_photo(self) -> bool:
        return self._pixmap is not None

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        r = QRectF(self.rect()).adjusted(2, 2, -2, -2)
        radius = min(r.width(), r.height()) * 0.06
        frame = QPainterPath()
        frame.addRoundedRect(r, radius, radius)
        p.setClipPath(frame)
        if self._pixmap is not None:
            # Fill the frame, cropping the photo's excess evenly (a portrait keeps its face).
            scaled = self._pixmap.scaled(
                r.size().toSize(),
                Qt.AspectRatioMode.KeepAspectRatioByExpanding,
                Qt.TransformationMode.SmoothTransformation,
            )
            x = r.left() + (r.width() - scaled.width()) / 2
            y = r.top() + min(0.0, (r.height() - scaled.height()) / 4)
            p.drawPixmap(int(x), int(y), scaled)
        else:
            painting.draw_person_placeholder(p, r, QColor("#dfe7f2"), QColor("#a9b9cf"))
        p.setClipping(False)
        p.setPen(QPen(QColor(theme.LINE), 2))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawPath(frame)
        p.end()


class QrView(QWidget):
    """A QR code drawn module by module on white, whole pixels per module so it scans crisply."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("qr")
        self._url: str | None = None
        self._modules: list[list[bool]] = []

    @property
    def url(self) -> str | None:
        return self._url

    def set_url(self, url: str | None) -> None:
        if url == self._url:
            return
        self._url = url
        self._modules = []
        if url:
            code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=2)
            code.add_data(url)
            code.make(fit=True)
            self._modules = code.get_matrix()
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802
        if not self._modules:
            return
        p = QPainter(self)
        side = min(self.width(), self.height())
        count = len(self._modules)
        module = max(1, side // count)
        size = module * count
        x0 = (self.width() - size) // 2
        y0 = (self.height() - size) // 2
        p.fillRect(x0, y0, size, size, QColor("white"))
        ink = QColor("black")
        for row, line in enumerate(self._modules):
            for col, dark in enumerate(line):
                if dark:
                    p.fillRect(x0 + col * module, y0 + row * module, module, module, ink)
        p.end()


class CountdownRing(QWidget):
    """Seconds left as a number inside a ring that empties."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._remaining = 0
        self._total = 1
        self._min_px = theme.MIN_FONT_PX

    def set_min_px(self, px: int) -> None:
        """The smallest its text (the 秒 under the number) may be drawn."""
        self._min_px = px
        self.update()

    def set_remaining(self, remaining: int, total: int) -> None:
        if (remaining, total) != (self._remaining, self._total):
            self._remaining, self._total = remaining, max(1, total)
            self.update()

    @property
    def remaining(self) -> int:
        return self._remaining

    def _rects(self) -> tuple[QRectF, QRectF, float]:
        side = min(self.width(), self.height())
        pen_w = max(3.0, side * 0.09)
        r = QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side).adjusted(
            pen_w / 2, pen_w / 2, -pen_w / 2, -pen_w / 2
        )
        return r, QRectF(r), pen_w

    def number_px(self) -> int:
        return max(theme.MIN_FONT_PX, int(self._rects()[0].height() * 0.40))

    def unit_px(self) -> int:
        return max(self._min_px, int(self._rects()[0].height() * 0.22))

    def _number_rect(self) -> QRectF:
        r = self._rects()[0]
        h = r.height()
        return QRectF(r.left(), r.top() + h * 0.10, r.width(), h * 0.48)

    def _unit_rect(self) -> QRectF:
        r = self._rects()[0]
        h = r.height()
        return QRectF(r.left() + r.width() * 0.15, r.top() + h * 0.58, r.width() * 0.7, h * 0.34)

    def text_items(self) -> list:
        from .audit import TextItem

        f = QFont(self.font())
        f.setPixelSize(self.number_px())
        number = QFontMetrics(f).boundingRect(
            self._number_rect().toAlignedRect(),
            int(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom),
            str(self._remaining),
        )
        f.setPixelSize(self.unit_px())
        unit = QFontMetrics(f).boundingRect(
            self._unit_rect().toAlignedRect(),
            int(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop),
            "秒",
        )
        return [
            TextItem(str(self._remaining), number, self.number_px()),
            TextItem("秒", unit, self.unit_px()),
        ]

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r, _, pen_w = self._rects()
        p.setPen(QPen(QColor(theme.LINE), pen_w))
        p.drawEllipse(r)
        p.setPen(QPen(QColor(theme.NAVY), pen_w, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
        span = int(-360 * 16 * min(1.0, self._remaining / self._total))
        p.drawArc(r, 90 * 16, span)
        f = QFont(self.font())
        f.setBold(True)
        f.setPixelSize(self.number_px())
        p.setFont(f)
        p.setPen(QColor(theme.INK))
        p.drawText(
            self._number_rect(),
            int(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom),
            str(self._remaining),
        )
        f.setBold(False)
        f.setPixelSize(self.unit_px())
        p.setFont(f)
        p.setPen(QColor(theme.MUTED))
        p.drawText(self._unit_rect(), int(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop), "秒")
        p.end()


class Mark(QWidget):
    """A drawn badge: "check" for thanks, "pause" for the paused page."""

    def __init__(self, kind: str, colour: str, parent=None):
        super().__init__(parent)
        self._kind = kind
        self._colour = QColor(colour)

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        side = min(self.width(), self.height())
        square = QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)
        if self._kind == "check":
            painting.draw_check_badge(p, square, self._colour)
        else:
            painting.draw_pause_badge(p, square, self._colour)
        p.end()


def make_label(
    text: str = "",
    *,
    max_px: int = 20,
    max_lines: int = 1,
    bold: bool = False,
    css_class: str = "",
    align: Qt.AlignmentFlag = Qt.AlignmentFlag.AlignLeft,
) -> FitLabel:
    label = FitLabel(text, max_px=max_px, max_lines=max_lines, bold=bold, css_class=css_class)
    label.setAlignment(align | Qt.AlignmentFlag.AlignVCenter)
    return label

"""Art drawn with QPainter, so no image files ship: the five faces, the photo placeholder, the thanks mark.

Each function paints into a given square and leaves the painter's state as it found it.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPainterPath, QPen

# Mouth per satisfaction code: (corner y, middle control y) as fractions of the face; a control below
# the corners curves the mouth into a smile, above into a frown.
_MOUTHS = {5: (0.60, 0.90), 4: (0.63, 0.80), 3: (0.68, 0.68), 2: (0.74, 0.60), 1: (0.77, 0.55)}


def draw_face(p: QPainter, square: QRectF, satisfaction: int, ink: QColor) -> None:
    """A round white face whose features say the level: a wide laugh for 5 down to a deep frown for 1."""
    p.save()
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    s = square.width()
    x0, y0 = square.left(), square.top()

    def at(fx: float, fy: float) -> QPointF:
        return QPointF(x0 + fx * s, y0 + fy * s)

    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(255, 255, 255))
    p.drawEllipse(square)

    stroke = QPen(ink, s * 0.065, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin)
    # Eyes: happy arcs for 非常满意, dots otherwise.
    if satisfaction == 5:
        p.setPen(stroke)
        p.setBrush(Qt.BrushStyle.NoBrush)
        for cx in (0.34, 0.66):
            eye = QPainterPath(at(cx - 0.09, 0.42))
            eye.quadTo(at(cx, 0.28), at(cx + 0.09, 0.42))
            p.drawPath(eye)
    else:
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(ink)
        for cx in (0.35, 0.65):
            p.drawEllipse(at(cx, 0.40), s * 0.06, s * 0.07)
    # Brows for 非常不满意: slanted down to the middle.
    if satisfaction == 1:
        p.setPen(stroke)
        p.drawLine(at(0.24, 0.24), at(0.43, 0.30))
        p.drawLine(at(0.76, 0.24), at(0.57, 0.30))

    corner_y, control_y = _MOUTHS[satisfaction]
    mouth = QPainterPath(at(0.28, corner_y))
    mouth.quadTo(at(0.5, control_y * 2 - corner_y), at(0.72, corner_y))
    if satisfaction == 5:  # an open laugh: the curve closed by a straight top lip
        mouth.closeSubpath()
        p.setPen(stroke)
        p.setBrush(ink)
    else:
        p.setPen(stroke)
        p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawPath(mouth)
    p.restore()


def draw_person_placeholder(p: QPainter, rect: QRectF, background: QColor, figure: QColor) -> None:
    """A neat head-and-shoulders silhouette for staff without a photo."""
    p.save()
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.fillRect(rect, background)
    w, h = rect.width(), rect.height()
    cx = rect.center().x()
    head_r = min(w, h) * 0.19
    head_cy = rect.top() + h * 0.40
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(figure)
    p.drawEllipse(QPointF(cx, head_cy), head_r, head_r * 1.1)
    shoulders = QPainterPath()
    top = head_cy + head_r * 1.35
    shoulders.moveTo(cx - w * 0.38, rect.bottom())
    shoulders.cubicTo(cx - w * 0.38, top, cx + w * 0.38, top, cx + w * 0.38, rect.bottom())
    shoulders.closeSubpath()
    p.drawPath(shoulders)
    p.restore()


def _disc(p: QPainter, square: QRectF, fill: QColor) -> float:
    """The filled circle under a badge's white sign; returns the square's side."""
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QBrush(fill))
    p.drawEllipse(square)
    return square.width()


def draw_check_badge(p: QPainter, square: QRectF, fill: QColor) -> None:
    """A filled circle with a white tick: the thanks page's mark."""
    p.save()
    s = _disc(p, square, fill)
    p.setPen(
        QPen(
            QColor("white"),
            s * 0.09,
            Qt.PenStyle.SolidLine,
            Qt.PenCapStyle.RoundCap,
            Qt.PenJoinStyle.RoundJoin,
        )
    )
    p.setBrush(Qt.BrushStyle.NoBrush)
    tick = QPainterPath(QPointF(square.left() + s * 0.28, square.top() + s * 0.52))
    tick.lineTo(square.left() + s * 0.44, square.top() + s * 0.67)
    tick.lineTo(square.left() + s * 0.73, square.top() + s * 0.36)
    p.drawPath(tick)
    p.restore()


def draw_pause_badge(p: QPainter, square: QRectF, fill: QColor) -> None:
    """A circle with two white bars: the paused page's mark."""
    p.save()
    s = _disc(p, square, fill)
    p.setBrush(QColor("white"))
    for fx in (0.33, 0.55):
        bar = QRectF(square.left() + s * fx, square.top() + s * 0.28, s * 0.12, s * 0.44)
        p.drawRoundedRect(bar, s * 0.03, s * 0.03)
    p.restore()

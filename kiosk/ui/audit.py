"""Accessibility checks on what the window actually draws: the 适老化 figures of docs/ui.md.

``audit(window)`` looks at every visible button and text of the window as rendered (a ``grab``) and
returns what falls short, one line each:

- touch targets: every button at least ``theme.TARGET_MM`` on each side at the window's pixels per inch;
- text size: every text at least ``theme.BODY_DP``, main-function text (titles, buttons) in 长辈模式 at
  least ``theme.MAIN_DP``;
- text contrast, from the rendered pixels: the ink (the colour in the text's box that stands out most
  from the box's commonest colour, its background) against that background, at least 4.5:1, 3:1 for
  text of ``theme.LARGE_DP`` and more;
- boundaries: a button's edge (its fill or its outline) at least 3:1 against what surrounds it;
- no two buttons overlap (a squeezed layout can keep each button's size yet hide part of it).

A widget drawing its own text says where with ``text_items()``; labels and push buttons are found as
they are. Used by the tests on every page at every reference size in both modes, and by anyone who
wants to check a deployment's screen (``kiosk screenshot --audit``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from PIL import Image
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFontMetrics, QImage
from PySide6.QtWidgets import QAbstractButton, QLabel, QPushButton, QWidget

from . import theme

BOUNDARY_CONTRAST = 3.0


@dataclass(frozen=True)
class TextItem:
    """A text a widget draws: where (in the widget's coordinates), at what pixel size, and whether it
    is main-function text."""

    text: str
    rect: QRect
    px: int
    main: bool = False


def is_main(widget: QWidget) -> bool:
    return isinstance(widget, QAbstractButton) or bool(widget.property("main"))


def text_items(widget: QWidget) -> list[TextItem]:
    own = getattr(widget, "text_items", None)
    if callable(own):
        return own()
    if isinstance(widget, QLabel):
        shown = getattr(widget, "shown_lines", None)
        text = "\n".join(shown()) if callable(shown) else widget.text()
        if not text.strip():
            return []
        fm = QFontMetrics(widget.font())
        rect = fm.boundingRect(widget.contentsRect(), int(widget.alignment()), text)
        return [TextItem(text, rect, widget.font().pixelSize(), is_main(widget))]
    if isinstance(widget, QPushButton) and widget.text().strip():
        fm = QFontMetrics(widget.font())
        rect = fm.boundingRect(widget.rect(), int(Qt.AlignmentFlag.AlignCenter), widget.text())
        return [TextItem(widget.text(), rect, widget.font().pixelSize(), True)]
    return []


def to_pil(image: QImage) -> Image.Image:
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    data = bytes(rgb.constBits())
    return Image.frombuffer("RGB", (rgb.width(), rgb.height()), data, "raw", "RGB", rgb.bytesPerLine(), 1)


def _colours(picture: Image.Image, rect: QRect) -> list[tuple[int, tuple[int, int, int]]]:
    box = (rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1)
    crop = picture.crop(box)
    colours = crop.getcolors(crop.width * crop.height) or []  # RGB image: (count, (r, g, b)) pairs
    return cast(list[tuple[int, tuple[int, int, int]]], colours)


def rendered_contrast(picture: Image.Image, rect: QRect) -> tuple[float, QColor, QColor] | None:
    """(ratio, ink, background) of the text drawn in ``rect``, or None for an empty box."""
    colours = _colours(picture, rect)
    if not colours:
        return None
    background = QColor(*max(colours)[1])
    best = max(colours, key=lambda c: theme.contrast(QColor(*c[1]), background))
    ink = QColor(*best[1])
    return theme.contrast(ink, background), ink, background


def _commonest(picture: Image.Image, rect: QRect) -> QColor | None:
    colours = _colours(picture, rect)
    return QColor(*max(colours)[1]) if colours else None


def describe(widget: QWidget) -> str:
    name = widget.objectName()
    text = widget.text() if isinstance(widget, (QLabel, QAbstractButton)) else ""
    return f"{type(widget).__name__}{'#' + name if name else ''}{' ' + repr(text) if text else ''}"


def audit(window: QWidget, metrics: theme.Metrics) -> list[str]:
    """Everything visible in ``window`` that falls short of the figures, one line each."""
    picture = to_pil(window.grab().toImage())
    bounds = window.rect()
    problems: list[str] = []
    buttons: list[tuple[str, QRect]] = []  # every button's visible box, to find any that overlap
    for widget in window.findChildren(QWidget):
        if not widget.isVisible() or widget.window() is not window:
            continue
        shown = widget.visibleRegion().boundingRect()
        if shown.isEmpty():
            continue  # scrolled out of sight or covered
        origin = widget.mapTo(window, widget.rect().topLeft())
        top = window.childAt(origin + widget.rect().center())
        if top is not None and top is not widget and not widget.isAncestorOf(top):
            continue  # covered by a sibling on top (the notice band over the header)
        where = describe(widget)
        if widget.objectName().startswith("page_"):
            problems += _check_fits(widget, where)
        if isinstance(widget, QAbstractButton):
            box = shown.translated(origin)
            problems += [f"{where}: overlaps {other}" for other, rect in buttons if rect.intersects(box)]
            buttons.append((where, box))
            problems += _check_target(widget, where, metrics)
            problems += _check_boundary(widget, where, picture, origin, bounds)
        for item in text_items(widget):
            rect = item.rect.intersected(shown).translated(origin).intersected(bounds)
            if rect.isEmpty():
                continue
            problems += _check_text(item, where, rect, picture, metrics)
    return problems


def _check_fits(page: QWidget, where: str) -> list[str]:
    """The page's parts neither run past its edges nor over each other. Qt lays out a page whose
    content needs more room than it has anyway, its parts overlapping (a panel under the bottom
    buttons); nothing else would notice."""
    parts = [
        (describe(w), w.geometry())
        for w in page.findChildren(QWidget, options=Qt.FindChildOption.FindDirectChildrenOnly)
        if w.isVisible() and not w.geometry().isEmpty()
    ]
    problems = [
        f"{where}: {name} runs past the page's edge" for name, r in parts if not page.rect().contains(r)
    ]
    for i, (name, r) in enumerate(parts):
        problems += [f"{where}: {name} runs over {other}" for other, o in parts[:i] if o.intersects(r)]
    return problems


def _check_target(widget: QAbstractButton, where: str, m: theme.Metrics) -> list[str]:
    w, h = widget.width(), widget.height()
    if min(w, h) >= m.target:
        return []
    mm = min(w, h) * 25.4 / m.ppi
    return [f"{where}: touch target {w}×{h} px = {mm:.1f} mm, needs {theme.TARGET_MM} mm ({m.target} px)"]


def _check_boundary(widget: QAbstractButton, where: str, picture, origin, bounds: QRect) -> list[str]:
    """The button's edge (outline or fill) against the page just outside it, on the left and right."""
    r = QRect(origin, widget.size())
    mid = r.center().y()
    worst = None
    sides = ((r.left() - 3, r.left(), r.left() + 6), (r.right() + 3, r.right() - 1, r.right() - 6))
    for outside_x, edge_x, inner_x in sides:
        if not bounds.contains(outside_x, mid):
            continue
        outside = _commonest(picture, QRect(outside_x - 1, mid - 2, 2, 5))
        edge = _commonest(picture, QRect(edge_x, mid - 2, 2, 5))
        fill = _commonest(picture, QRect(inner_x - 1, mid - 2, 2, 5))
        if outside is None or edge is None or fill is None:
            continue
        ratio = max(theme.contrast(edge, outside), theme.contrast(fill, outside))
        worst = ratio if worst is None else min(worst, ratio)
    if worst is None or worst >= BOUNDARY_CONTRAST:
        return []
    return [f"{where}: boundary contrast {worst:.2f}:1, needs {BOUNDARY_CONTRAST}:1"]


def _check_text(item: TextItem, where: str, rect: QRect, picture, m: theme.Metrics) -> list[str]:
    problems = []
    need_dp = m.min_dp(item.main)
    if item.px < m.dp(need_dp):
        dp = item.px * 160 / m.ppi
        problems.append(
            f"{where}: text {item.text!r} {item.px} px = {dp:.0f} dp, needs {need_dp} dp ({m.dp(need_dp)} px)"
        )
    found = rendered_contrast(picture, rect)
    if found is not None:
        ratio, ink, background = found
        need = 3.0 if item.px >= m.dp(theme.LARGE_DP) else 4.5
        if ratio < need:
            problems.append(
                f"{where}: text {item.text!r} contrast {ratio:.2f}:1 ({ink.name()} on {background.name()}), needs {need}:1"
            )
    return problems

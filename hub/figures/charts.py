"""Charts as SVG text, drawn on the server (no script, no CDN): a line chart of rates over periods and a
bar chart of a rate per key. The same SVG goes into the console's pages, the printable 通报 and its PDF.
No I/O here."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

FONT = "Noto Sans CJK SC, Noto Sans SC, Source Han Sans SC, sans-serif"
COLORS = ("#1f6fb2", "#d9822b", "#2e8b57", "#b03a48")


def _pct(v: float) -> str:
    return f"{v * 100:.0f}%"


def line_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    width: int = 720,
    height: int = 260,
    title: str = "",
) -> str:
    """Rates (0…1) over ``labels``; a None value is a gap (no ratings), never drawn as 0."""
    left, right, top, bottom = 48, 16, 34 if title else 14, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(1, len(labels))
    x = lambda i: left + (plot_w * (i + 0.5) / n)  # noqa: E731
    y = lambda v: top + plot_h * (1 - v)  # noqa: E731
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(title or "趋势图")}" font-family="{FONT}">'
    ]
    if title:
        out.append(
            f'<text x="{left}" y="20" font-size="15" font-weight="bold" fill="#222">{escape(title)}</text>'
        )
    for tick in (0, 0.25, 0.5, 0.75, 1):
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>'
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" font-size="11" text-anchor="end" fill="#555">{_pct(tick)}</text>'
        )
    step = max(1, -(-n // 12))  # at most about 12 labels on the axis
    for i, lab in enumerate(labels):
        if i % step == 0 or i == n - 1:
            out.append(
                f'<text x="{x(i):.1f}" y="{height - bottom + 16}" font-size="11" text-anchor="middle" '
                f'fill="#555">{escape(lab)}</text>'
            )
    for s_index, (name, values) in enumerate(series):
        color = COLORS[s_index % len(COLORS)]
        runs: list[list[str]] = [[]]
        for i, v in enumerate(values):
            if v is None:
                runs.append([])
            else:
                runs[-1].append(f"{x(i):.1f},{y(max(0.0, min(1.0, v))):.1f}")
        for run in runs:
            if len(run) > 1:
                out.append(
                    f'<polyline fill="none" stroke="{color}" stroke-width="2.5" points="{" ".join(run)}"/>'
                )
            for point in run:
                cx, cy = point.split(",")
                out.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{color}"/>')
        lx = left + s_index * 150
        out.append(
            f'<rect x="{lx}" y="{height - 16}" width="14" height="4" fill="{color}"/>'
            f'<text x="{lx + 20}" y="{height - 10}" font-size="12" fill="#333">{escape(name)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def bar_chart(
    items: Sequence[tuple[str, float | None]],
    *,
    width: int = 720,
    bar_h: int = 26,
    title: str = "",
    mark_below: float | None = None,
) -> str:
    """One horizontal bar per key (a rate 0…1); None is written 无评价, not drawn as 0. Bars under
    ``mark_below`` are drawn in the warning colour."""
    label_w, right, top = 170, 70, 34 if title else 10
    height = top + bar_h * max(1, len(items)) + 10
    plot_w = width - label_w - right
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(title or "柱状图")}" font-family="{FONT}">'
    ]
    if title:
        out.append(f'<text x="4" y="20" font-size="15" font-weight="bold" fill="#222">{escape(title)}</text>')
    for i, (lab, v) in enumerate(items):
        y0 = top + i * bar_h
        text = lab if len(lab) <= 12 else lab[:11] + "…"
        out.append(
            f'<text x="{label_w - 8}" y="{y0 + bar_h * 0.65:.1f}" font-size="13" text-anchor="end" '
            f'fill="#222">{escape(text)}</text>'
        )
        if v is None:
            out.append(
                f'<text x="{label_w + 4}" y="{y0 + bar_h * 0.65:.1f}" font-size="12" fill="#888">无评价</text>'
            )
            continue
        color = "#b03a48" if mark_below is not None and v < mark_below else COLORS[0]
        w = max(1.0, plot_w * max(0.0, min(1.0, v)))
        out.append(
            f'<rect x="{label_w}" y="{y0 + 4}" width="{w:.1f}" height="{bar_h - 8}" fill="{color}" rx="2"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{y0 + bar_h * 0.65:.1f}" font-size="12" fill="#222">'
            f"{v * 100:.1f}%</text>"
        )
    out.append("</svg>")
    return "".join(out)

"""The 通报 (第十九条): a monthly or quarterly report per section and for the bureau, and its public version
(公开), as printable HTML, as PDF (the same HTML through WeasyPrint, with the CJK font) and as XLSX for
WPS/Excel users. Every figure is the figures' own (``views``), with the record head it was computed from.

The public version carries no personal data: no case numbers, no reasons, no phone numbers, and staff
names and numbers only when ``[figures] public_staff`` is true.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from core.spreadsheet import safe_cell

from ..config import FiguresConfig
from . import charts
from . import model as m
from .store import FigureStore
from .views import counts_json, label, ranking_json

TEMPLATES = Path(__file__).parent / "templates"
QUARTER_NAMES = {"1": "第一季度", "2": "第二季度", "3": "第三季度", "4": "第四季度"}
TREND_PERIODS = 6


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    env.filters["pct"] = lambda v: "—" if v is None else f"{v * 100:.1f}%"
    return env


def period_name(period: str) -> str:
    if "Q" in period:
        return f"{period[:4]}年{QUARTER_NAMES[period[5]]}"
    return f"{period[:4]}年{int(period[5:7])}月"


@dataclass
class Report:
    title: str
    period: str
    period_label: str
    first: str
    last: str
    hall: str
    dept: str | None
    dept_name: str | None
    public: bool
    generated_at: str
    head: dict[str, Any]
    total: dict[str, Any]
    unit_label: str  # 科室 or 窗口
    units: list[dict[str, Any]]
    staff: list[dict[str, Any]] = field(default_factory=list)  # empty in a public report without names
    items: list[dict[str, Any]] = field(default_factory=list)
    ranking: list[dict[str, Any]] = field(default_factory=list)
    ranking_note: str = ""
    trend_svg: str = ""
    units_svg: str = ""


def build_report(
    figures: FigureStore, config: FiguresConfig, period: str, *, dept: str | None = None, public: bool = False
) -> Report:
    """The data of one 通报: ``period`` is a month (2026-11) or a quarter (2026Q4)."""
    first, last = m.period_range(period)
    snap = figures.snapshot(first, last)
    scope = m.Filters(dept=dept)
    groups_by = "window" if dept else "dept"
    units, total = m.group(snap.cells.items(), groups_by, snap.sections, snap.labels, scope, first, last)
    staff_snap = figures.snapshot(first, last, keep=("staff_no",), refresh=False)
    staff_groups, _ = m.group(
        staff_snap.cells.items(), "staff", staff_snap.sections, staff_snap.labels, scope, first, last
    )
    item_snap = figures.snapshot(first, last, keep=("item_code",), refresh=False)
    item_groups, _ = m.group(
        item_snap.cells.items(), "item", item_snap.sections, item_snap.labels, scope, first, last
    )

    show_staff = not public or config.public_staff
    dept_name = snap.section_names.get(dept, dept) if dept else None
    unit_rows = [
        {"key": k, "label": label(groups_by, k, snap), **counts_json(c)} for k, c in sorted(units.items())
    ]
    staff_rows = []
    if show_staff:
        staff_rows = [
            {"key": k, "label": label("staff", k, staff_snap), **counts_json(c)}
            for k, c in sorted(staff_groups.items())
        ]
    item_rows = sorted(
        ({"key": k, "label": label("item", k, item_snap), **counts_json(c)} for k, c in item_groups.items()),
        key=lambda r: (-r["services"], r["key"]),
    )[:15]

    # Rankings of staff over the last K periods of this report's kind (第十五条); internal only unless
    # the bureau publishes staff.
    ranking, note = [], ""
    if show_staff:
        periods = m.previous_periods(period, config.periods_running)
        history = []
        for p in periods:
            p_first, p_last = m.period_range(p)
            s = figures.snapshot(p_first, p_last, keep=("staff_no",), refresh=False)
            g, _ = m.group(s.cells.items(), "staff", s.sections, s.labels, scope, p_first, p_last)
            g.pop(m.NONE_KEY, None)  # nobody signed in is not a person to rank
            history.append((p, g))
        ranking = ranking_json(
            m.rankings(history, config.bottom_n, config.periods_running, config.min_rated),
            "staff",
            staff_snap,
        )
        note = (
            f"按满意率排名（至少 {config.min_rated} 条有效评价）；后 {config.bottom_n} 名标记为靠后，"
            f"连续 {config.periods_running} 期靠后者标记为“限期整改”（第十五条）。"
        )

    trend_labels, satisfaction, participation = [], [], []
    for p in m.previous_periods(period, TREND_PERIODS):
        p_first, p_last = m.period_range(p)
        _, t = m.group(
            snap_for(figures, p_first, p_last).cells.items(),
            "day",
            snap.sections,
            snap.labels,
            scope,
            p_first,
            p_last,
        )
        r = m.rates(t)
        trend_labels.append(p[2:])  # 26-11, 26Q4
        satisfaction.append(r["satisfactionRate"])
        participation.append(r["participationRate"])
    trend_svg = charts.line_chart(
        trend_labels, [("满意率", satisfaction), ("参评率", participation)], title="近期趋势"
    )
    units_svg = charts.bar_chart(
        [(u["label"], u["satisfactionRate"]) for u in unit_rows],
        title=f"各{'窗口' if dept else '科室'}满意率",
        mark_below=0.9,
    )
    who = dept_name or config.hall_name
    kind = "公开" if public else "通报"
    return Report(
        title=f"{who}“好差评”情况{kind}（{period_name(period)}）",
        period=period,
        period_label=period_name(period),
        first=first,
        last=last,
        hall=config.hall_name,
        dept=dept,
        dept_name=dept_name,
        public=public,
        generated_at=datetime.now().astimezone().strftime("%Y-%m-%d %H:%M"),
        head=snap.head.as_json(),
        total=counts_json(total),
        unit_label="窗口" if dept else "科室",
        units=unit_rows,
        staff=staff_rows,
        items=item_rows,
        ranking=ranking,
        ranking_note=note,
        trend_svg=trend_svg,
        units_svg=units_svg,
    )


def snap_for(figures: FigureStore, first: str, last: str):
    return figures.snapshot(first, last, refresh=False)


def render(report: Report, fmt: str) -> bytes:
    if fmt == "html":
        return to_html(report).encode("utf-8")
    if fmt == "pdf":
        return to_pdf(to_html(report))
    if fmt == "xlsx":
        return to_xlsx(report)
    raise ValueError(fmt)


def to_html(report: Report) -> str:
    return environment().get_template("report.html").render(r=report)


def to_pdf(html: str) -> bytes:
    from weasyprint import HTML  # pango is loaded only when a PDF is made

    return HTML(string=html, base_url=str(TEMPLATES)).write_pdf()


# --- XLSX ----------------------------------------------------------------------------------------------

XLSX_COLUMNS = (
    ("服务量", "services"),
    ("评价数", "rated"),
    ("好评(基本满意及以上)", "good"),
    ("差评", "bad"),
    ("不属实", "not_adopted"),
    ("满意率", "satisfactionRate"),
    ("参评率", "participationRate"),
    ("差评率", "badRate"),
    ("实名差评回访率", "callbackRate"),
    ("按时整改率", "onTimeRate"),
)


def to_xlsx(report: Report) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = "概况"
    _put(ws, [report.title])
    ws["A1"].font = Font(bold=True, size=14)
    _put(ws, ["统计期间", f"{report.first} 至 {report.last}"])
    _put(ws, ["生成时间", report.generated_at])
    _put(ws, ["数据记录头", report.head["head"]])
    _put(ws, [])
    _put(ws, ["指标", "数值"])
    for name, key in XLSX_COLUMNS:
        _put(ws, [name, report.total[key]], percent=key.endswith("Rate"))
    _table(wb, f"按{report.unit_label}", report.unit_label, report.units)
    if report.staff:
        _table(wb, "按人员", "工作人员", report.staff, key_title="工号")
    _table(wb, "按事项", "事项", report.items, key_title="事项编码")
    if report.ranking:
        ws = wb.create_sheet("排名")
        _put(ws, ["名次", "工号", "姓名", "满意率", "有效评价", "靠后", "连续靠后期数", "限期整改"])
        for r in report.ranking:
            _put(
                ws,
                [
                    r["rank"],
                    r["key"],
                    r["label"],
                    r["satisfactionRate"],
                    r["counted"],
                    "是" if r["bottom"] else "",
                    r["run"],
                    "是" if r["flagged"] else "",
                ],
            )
    for sheet in wb.worksheets:
        sheet.column_dimensions["A"].width = 22
        sheet.column_dimensions["B"].width = 20
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _table(wb, title: str, unit: str, rows: list[dict[str, Any]], key_title: str = "编号") -> None:
    ws = wb.create_sheet(title)
    _put(ws, [key_title, unit, *[name for name, _ in XLSX_COLUMNS]])
    for r in rows:
        _put(ws, [r["key"], r["label"], *[r[key] for _, key in XLSX_COLUMNS]], percent_from=2 + 5)


def _put(ws, values: list[Any], *, percent: bool = False, percent_from: int | None = None) -> None:
    """Append a row; every text through ``safe_cell`` and stored as text, never as a formula."""
    ws.append([safe_cell(v) for v in values])
    row = ws.max_row
    for i, v in enumerate(values, start=1):
        cell = ws.cell(row=row, column=i)
        if isinstance(cell.value, str):
            cell.data_type = "s"
        elif isinstance(v, float) and (percent or (percent_from is not None and i > percent_from)):
            cell.number_format = "0.0%"

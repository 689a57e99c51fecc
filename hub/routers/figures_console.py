"""The console's figures pages (docs/figures.md): 总览 (today and the month at a glance, trends as SVG,
drill-down section → window → staff → 事项, rankings), 通报 (downloads) and 季度回访抽样 (the call sheet,
outcomes recorded as appended actions). A dept user sees its own section only; a viewer figures only."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from core.domain import LEVELS as LEVELS_TEXT

from ..console import templates
from ..dependencies import Config, PageUser
from ..desk.roles import DEPT, SUPERVISOR
from ..figures import charts
from ..figures import model as m
from ..figures.reports import build_report, period_name
from ..figures.reports import render as render_report
from ..figures.sampling import SampleError, draw, record_call, sample
from ..figures.store import FigureStore
from ..figures.views import counts_json, label, ranking_json
from .console import PageRefused, check_csrf, form_of, render

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)
templates.filters["pct"] = lambda v: "—" if v is None else f"{v * 100:.1f}%"

LEVELS = ("dept", "window", "staff", "item")
LEVEL_LABELS = {"dept": "科室", "window": "窗口", "staff": "工作人员", "item": "事项"}
KEEP = {"staff": ("staff_no",), "item": ("item_code",)}

NOT_ADOPTED = ("not_adopted",)  # of the desk's counts, all that the rates of satisfaction and rankings need


def _figures(request: Request) -> FigureStore:
    return request.app.state.figures


def _month(value: str | None, today: date) -> str:
    if value and len(value) == 7:
        try:
            m.month_range(value)
            return value
        except ValueError:
            pass
    return today.isoformat()[:7]


def overview_data(
    figures: FigureStore,
    config,
    month: str,
    dept: str | None,
    window: str | None,
    staff: str | None,
    scope: str | None,
) -> dict[str, Any]:
    today = figures.today().isoformat()
    first, last = m.month_range(month)
    last = min(last, today) if month == today[:7] else last
    depts = frozenset({scope}) if scope else None
    f = m.Filters(dept=dept, window=window, depts=depts)
    level = "dept" if dept is None else "window" if window is None else "staff" if staff is None else "item"
    snap = figures.snapshot(first, last, keep=KEEP.get(level, ()), staff=staff)
    groups, total = m.group(snap.cells.items(), level, snap.sections, snap.labels, f, first, last)
    by_device = dept is not None or window is not None or depts is not None  # rows' sections matter
    day_snap = figures.snapshot(  # the daily rates below need of the desk only 不属实
        first, last, keep=("day",), staff=staff, refresh=False, by_device=by_device, desk_fields=NOT_ADOPTED
    )
    days, _ = m.group(day_snap.cells.items(), "day", day_snap.sections, day_snap.labels, f, first, last)
    today_snap = figures.snapshot(today, today, staff=staff, refresh=False)
    _, today_total = m.group(today_snap.cells.items(), "day", today_snap.sections, today_snap.labels, f)

    day_keys = [d for d in _days(first, last)]
    daily = [m.rates(days.get(d, m.Counts())) for d in day_keys]
    trend_days = charts.line_chart(
        [d[5:] for d in day_keys],
        [
            ("满意率", [r["satisfactionRate"] for r in daily]),
            ("参评率", [r["participationRate"] for r in daily]),
        ],
        width=760,
        title=f"{period_name(month)}每日趋势",
    )
    months = m.previous_periods(month, 12)
    year_snap = figures.snapshot(
        m.month_range(months[0])[0],
        last,
        keep=("month",),
        staff=staff,
        refresh=False,
        by_device=by_device,
        desk_fields=NOT_ADOPTED,  # the two rates below need no more of the desk
    )
    by_month, _ = m.group(year_snap.cells.items(), "month", year_snap.sections, year_snap.labels, f)
    monthly = [m.rates(by_month.get(p, m.Counts())) for p in months]
    trend_months = charts.line_chart(
        [p[2:] for p in months],
        [
            ("满意率", [r["satisfactionRate"] for r in monthly]),
            ("参评率", [r["participationRate"] for r in monthly]),
        ],
        width=760,
        title="近 12 个月",
    )
    drill = {k: v for k, v in (("dept", dept), ("window", window), ("staff", staff)) if v is not None}
    rows = [
        {
            "key": k,
            "label": label(level, k, snap),
            "next": urlencode({**drill, level: k, "month": month}),
            **counts_json(c),
        }
        for k, c in sorted(groups.items(), key=lambda kv: (kv[0] == "", kv[0]))
    ]
    bars = charts.bar_chart(
        [(r["label"], r["satisfactionRate"]) for r in rows][:20], title=f"各{LEVEL_LABELS[level]}满意率"
    )
    # Rankings of the level shown (第十五条): the bottom N flagged, and who has been there K periods running.
    fc = config.figures
    history = []
    for p in m.previous_periods(month, fc.periods_running):
        p_first, p_last = m.period_range(p)
        s = figures.snapshot(  # a ranking needs of the desk only 不属实
            p_first, p_last, keep=KEEP.get(level, ()), staff=staff, refresh=False, desk_fields=NOT_ADOPTED
        )
        g, _ = m.group(s.cells.items(), level, s.sections, s.labels, f, p_first, p_last)
        g.pop(m.NONE_KEY, None)
        history.append((p, g))
    ranking = ranking_json(m.rankings(history, fc.bottom_n, fc.periods_running, fc.min_rated), level, snap)
    crumbs: list[tuple[str, dict[str, str | None]]] = [("全局", {})]
    if dept is not None:
        crumbs.append((label("dept", dept, snap), {"dept": dept}))
    if window is not None:
        crumbs.append((label("window", window, snap), {"dept": dept, "window": window}))
    if staff is not None:
        crumbs.append((label("staff", staff, snap), {"dept": dept, "window": window, "staff": staff}))
    return {
        "month": month,
        "month_label": period_name(month),
        "first": first,
        "last": last,
        "today": today,
        "level": level,
        "level_label": LEVEL_LABELS[level],
        "rows": rows,
        "total": counts_json(total),
        "today_total": counts_json(today_total),
        "trend_days": trend_days,
        "trend_months": trend_months,
        "bars": bars,
        "ranking": ranking,
        "ranking_rule": f"后 {fc.bottom_n} 名标记靠后；连续 {fc.periods_running} 期靠后标记限期整改；有效评价少于 {fc.min_rated} 条不排名",
        "crumbs": [
            (name, urlencode({k: v for k, v in q.items() if v is not None} | {"month": month}))
            for name, q in crumbs
        ],
        "drill": drill,
        "head": snap.head.as_json(),
        "months": m.previous_periods(today[:7], 12)[::-1],
    }


def _days(first: str, last: str) -> list[str]:
    out, d = [], date.fromisoformat(first)
    while d.isoformat() <= last:
        out.append(d.isoformat())
        d = date.fromordinal(d.toordinal() + 1)
    return out


@router.get("/overview", response_class=HTMLResponse)
async def overview(request: Request, user: PageUser, config: Config) -> Response:
    q = request.query_params
    principal = user.principal
    scope = principal.item_scope()
    dept = q.get("dept") or None
    if scope is not None:
        if dept not in (None, scope):
            raise PageRefused(403, "无权访问", "业务科室只能查看本科室的数据。", user)
        dept = scope
    window = (q.get("window") or None) if dept is not None else None
    staff = (q.get("staff") or None) if window is not None else None
    figures = _figures(request)
    month = _month(q.get("month"), figures.today())
    data = await run_in_threadpool(overview_data, figures, config, month, dept, window, staff, scope)
    return render(request, "figures_overview.html", user, title="总览", d=data, can_see_dept=scope is None)


# --- 通报 -----------------------------------------------------------------------------------------------


def _report_choices(today: date) -> list[tuple[str, str]]:
    months = m.previous_periods(today.isoformat()[:7], 12)[::-1]
    quarters = m.previous_periods(m.quarter_of(today.isoformat()), 4)[::-1]
    return [(p, period_name(p)) for p in months + quarters]


@router.get("/reports", response_class=HTMLResponse)
def reports_page(request: Request, user: PageUser) -> Response:
    figures = _figures(request)
    with figures.engine.connect() as conn:
        from ..figures.store import read_sections

        _, sections = read_sections(conn)
    principal = user.principal
    if principal.role == DEPT:
        sections = {principal.dept or "": sections.get(principal.dept or "", principal.dept or "")}
    return render(
        request,
        "figures_reports.html",
        user,
        title="通报",
        choices=_report_choices(figures.today()),
        sections=sections,
        internal=principal.role in (SUPERVISOR, DEPT),
        bureau=principal.role != DEPT,
    )


@router.get("/reports/file")
async def report_file(request: Request, user: PageUser, config: Config) -> Response:
    q = request.query_params
    principal = user.principal
    period, fmt = q.get("period", ""), q.get("format", "pdf")
    public = q.get("public") == "1" or principal.role not in (SUPERVISOR, DEPT)
    dept = q.get("dept") or None
    if principal.role == DEPT:
        dept = principal.dept
    try:
        m.period_range(period)
        if len(period) == 10 or fmt not in ("html", "pdf", "xlsx"):
            raise ValueError(period)
    except (ValueError, IndexError):
        raise PageRefused(400, "请求无效", "请选择月份或季度，以及文件格式。", user) from None
    figures = _figures(request)
    report = await run_in_threadpool(build_report, figures, config.figures, period, dept=dept, public=public)
    body = await run_in_threadpool(render_report, report, fmt)
    kinds = {
        "html": "text/html; charset=utf-8",
        "pdf": "application/pdf",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
    name = f"report-{period}{'-' + dept if dept else ''}{'-public' if public else ''}.{fmt}"
    disposition = "inline" if fmt == "html" else "attachment"
    headers = {"Content-Disposition": f'{disposition}; filename="{name}"', "Cache-Control": "no-store"}
    if fmt == "html":  # the printable page: its own styles, no script
        headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    return Response(body, media_type=kinds[fmt], headers=headers)


# --- 季度回访抽样 -------------------------------------------------------------------------------------------


def _sheet_user(user) -> str | None:
    if user.principal.role not in (SUPERVISOR, DEPT):
        raise PageRefused(403, "无权访问", "只有督查和业务科室可以查看回访抽样。", user)
    return user.principal.dept if user.principal.role == DEPT else None


def _quarter(value: str | None, today: date) -> str:
    if value and len(value) == 6 and value[4] == "Q" and value[5] in "1234" and value[:4].isdigit():
        return value
    return m.quarter_of(today.isoformat())


@router.get("/sample", response_class=HTMLResponse)
def sample_page(request: Request, user: PageUser, config: Config) -> Response:
    only = _sheet_user(user)
    figures = _figures(request)
    quarter = _quarter(request.query_params.get("quarter"), figures.today())
    try:
        sheet = sample(figures, quarter, only)
    except SampleError:
        sheet = None
    fc = config.figures
    return render(
        request,
        "figures_sample.html",
        user,
        title="季度回访抽样",
        quarter=quarter,
        quarter_label=period_name(quarter),
        quarters=m.previous_periods(m.quarter_of(figures.today().isoformat()), 4)[::-1],
        sheet=sheet,
        may_draw=user.principal.role == SUPERVISOR,
        rule=f"抽取本季度全部办件的 {fc.sample_share:.0%}（不少于 {fc.sample_min} 件，不多于 {fc.sample_max} 件）",
        notice=request.query_params.get("done"),
        levels=LEVELS_TEXT,
    )


@router.post("/sample/draw")
async def sample_draw(request: Request, user: PageUser, config: Config) -> Response:
    form = await form_of(request)
    check_csrf(user, form)
    if user.principal.role != SUPERVISOR:
        raise PageRefused(403, "无权操作", "只有督查可以抽取季度样本。", user)
    figures = _figures(request)
    quarter = _quarter(form.get("quarter"), figures.today())
    try:
        await run_in_threadpool(draw, figures, config.figures, quarter, user.principal.name)
    except SampleError as e:
        raise PageRefused(e.status, "不能抽样", e.detail, user) from None
    return RedirectResponse(f"/console/sample?quarter={quarter}&done=drawn", status_code=303)


@router.post("/sample/call")
async def sample_call(request: Request, user: PageUser) -> Response:
    form = await form_of(request)
    check_csrf(user, form)
    only = _sheet_user(user)
    figures = _figures(request)
    quarter = _quarter(form.get("quarter"), figures.today())
    reached = {"1": True, "0": False}.get(form.get("reached", ""))
    satisfied = {"1": True, "0": False}.get(form.get("satisfied", "")) if reached else None
    try:
        await run_in_threadpool(
            record_call,
            figures,
            quarter,
            only,
            form.get("case_no", ""),
            user.principal.name,
            reached,
            satisfied,
            form.get("comment", ""),
        )
    except SampleError as e:
        raise PageRefused(e.status if e.status != 422 else 400, "未记录", e.detail, user) from None
    return RedirectResponse(f"/console/sample?quarter={quarter}&done=called", status_code=303)

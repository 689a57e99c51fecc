"""The figures' API (docs/figures.md): stats by section, window, staff, 事项, day or month with the record
head they were computed from; rankings with the bottom-N-for-K flags; the 通报 as files; the quarterly
回访 sample. Users authenticate with their own token; a dept user sees only its own section."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ..dependencies import ApiUser, Config, read_body, scoped_dept
from ..desk.roles import DEPT, SUPERVISOR, Principal
from ..errors import HubError
from ..figures import model as m
from ..figures.sampling import SampleError, draw, record_call, sample
from ..figures.store import FigureStore
from ..figures.views import ranking_json, stats_json

router = APIRouter(prefix="/api/v1/manage", tags=["figures"])

_DAY = r"^\d{4}-\d{2}-\d{2}$"
_PERIOD = r"^(\d{4}-\d{2}|\d{4}Q[1-4])$"
_QUARTER = r"^\d{4}Q[1-4]$"
Key = Annotated[str | None, Query(max_length=64)]
KEEP = {"staff": ("staff_no",), "item": ("item_code",), "day": ("day",), "month": ("month",)}
MAX_CALL_BYTES = 8 * 1024


def get_figures(request: Request) -> FigureStore:
    return request.app.state.figures


def scope_filters(
    user: Principal, dept: str | None, window: str | None, staff: str | None, item: str | None
) -> m.Filters:
    """The filters a request may use: a dept user is held to its own section, whatever it asks."""
    dept = scoped_dept(user, dept)
    own = user.item_scope()
    return m.Filters(
        dept=dept, window=window, depts=frozenset({own}) if own is not None else None, staff=staff, item=item
    )


def day_bounds(first: str | None, last: str | None, today: date) -> tuple[str, str]:
    """``from``/``to`` as days; by default this month up to today."""
    try:
        first = first or today.replace(day=1).isoformat()
        last = last or today.isoformat()
        date.fromisoformat(first), date.fromisoformat(last)
    except ValueError:
        raise HubError(422, "bad_date", detail="from/to: a day yyyy-MM-dd") from None
    if first > last:
        raise HubError(422, "bad_range", detail="from is after to")
    return first, last


def stats_body(figures: FigureStore, by: str, first: str, last: str, f: m.Filters) -> dict[str, Any]:
    # Per device only where the section or window of a row matters (a grouping or a filter by them).
    by_device = by in ("dept", "window") or f.dept is not None or f.window is not None or f.depts is not None
    snap = figures.snapshot(
        first, last, keep=KEEP.get(by, ()), staff=f.staff, item=f.item, by_device=by_device
    )
    # staff and 事项 filters were applied when the cells were read
    grouping = m.Filters(dept=f.dept, window=f.window, depts=f.depts)
    body = stats_json(snap, by, first, last, grouping)
    body["filters"].update({k: v for k, v in (("staff", f.staff), ("item", f.item)) if v is not None})
    return body


@router.get("/stats", responses={401: {}, 403: {}, 422: {}})
async def get_stats(
    request: Request,
    user: ApiUser,
    by: Literal["dept", "window", "staff", "item", "day", "month"] = "dept",
    from_: Annotated[str | None, Query(alias="from", pattern=_DAY)] = None,
    to: Annotated[str | None, Query(pattern=_DAY)] = None,
    dept: Key = None,
    window: Key = None,
    staff: Key = None,
    item: Key = None,
) -> JSONResponse:
    figures = get_figures(request)
    first, last = day_bounds(from_, to, figures.today())
    f = scope_filters(user, dept, window, staff, item)
    body = await run_in_threadpool(stats_body, figures, by, first, last, f)
    return JSONResponse(body)


def rankings_body(
    figures: FigureStore, by: str, period: str, n: int, k: int, min_rated: int, f: m.Filters
) -> dict[str, Any]:
    periods = m.previous_periods(period, k)
    history = []
    snap = None
    for p in periods:
        first, last = m.period_range(p)
        snap = figures.snapshot(  # a ranking needs of the desk's counts only 不属实
            first, last, keep=KEEP.get(by, ()), refresh=snap is None, desk_fields=("not_adopted",)
        )
        groups, _ = m.group(snap.cells.items(), by, snap.sections, snap.labels, f, first, last)
        groups.pop(m.NONE_KEY, None)  # nobody signed in, no section, no 事项: nobody to rank
        history.append((p, groups))
    assert snap is not None
    ranked = m.rankings(history, n, k, min_rated)
    return {
        "by": by,
        "period": period,
        "periods": periods,
        "bottomN": n,
        "periodsRunning": k,
        "minRated": min_rated,
        "record": snap.head.as_json(),
        "rows": ranking_json(ranked, by, snap),
    }


@router.get("/rankings", responses={401: {}, 403: {}, 422: {}})
async def get_rankings(
    request: Request,
    user: ApiUser,
    config: Config,
    by: Literal["dept", "window", "staff", "item"] = "staff",
    period: Annotated[str | None, Query(pattern=_PERIOD)] = None,
    bottom: Annotated[int | None, Query(ge=1, le=100)] = None,
    running: Annotated[int | None, Query(ge=1, le=24)] = None,
    dept: Key = None,
) -> JSONResponse:
    figures = get_figures(request)
    fc = config.figures
    today = figures.today().isoformat()
    period = (
        _period(period) if period else (today[:7] if fc.ranking_period == "month" else m.quarter_of(today))
    )
    f = scope_filters(user, dept, None, None, None)
    body = await run_in_threadpool(
        rankings_body,
        figures,
        by,
        period,
        bottom or fc.bottom_n,
        running or fc.periods_running,
        fc.min_rated,
        f,
    )
    return JSONResponse(body)


@router.get(
    "/reports/{period}",
    responses={200: {"content": {"application/pdf": {}, "text/html": {}}}, 401: {}, 403: {}, 422: {}},
)
async def get_report(
    request: Request,
    user: ApiUser,
    config: Config,
    period: str,
    format: Literal["html", "pdf", "xlsx"] = "pdf",
    dept: Key = None,
    public: bool = False,
) -> Response:
    from ..figures.reports import build_report, render

    _period(period)
    dept = scoped_dept(user, dept)
    if user.role == DEPT:
        dept = user.dept
    internal = not public
    if internal and user.role not in (SUPERVISOR, DEPT):
        raise HubError(403, "forbidden", detail=f"a {user.role} user gets the public version (public=true)")
    figures = get_figures(request)
    report = await run_in_threadpool(build_report, figures, config.figures, period, dept=dept, public=public)
    data = await run_in_threadpool(render, report, format)
    kinds = {
        "html": "text/html; charset=utf-8",
        "pdf": "application/pdf",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
    name = f"report-{period}{'-' + dept if dept else ''}{'-public' if public else ''}.{format}"
    return Response(
        data,
        media_type=kinds[format],
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Record-Head": report.head["head"],
        },
    )


# --- the quarterly 回访 sample -----------------------------------------------------------------------------


def _sheet_dept(user: Principal, dept: str | None) -> str | None:
    """The section whose cases of the sheet the user sees: a dept user its own, a supervisor any."""
    if user.role not in (SUPERVISOR, DEPT):
        raise HubError(403, "forbidden", detail=f"a {user.role} user sees no call sheet")
    return scoped_dept(user, dept) if user.role == SUPERVISOR else user.dept


def _sampled(call):
    try:
        return call()
    except SampleError as e:
        raise HubError(e.status, "sample", detail=e.detail) from None


@router.get("/samples/{quarter}", responses={401: {}, 403: {}, 404: {}})
async def get_sample(request: Request, quarter: str, user: ApiUser, dept: Key = None) -> dict[str, Any]:
    _quarter(quarter)
    only = _sheet_dept(user, dept)
    return await run_in_threadpool(_sampled, lambda: sample(get_figures(request), quarter, only))


@router.post("/samples/{quarter}", responses={401: {}, 403: {}, 409: {}})
async def post_sample(request: Request, quarter: str, user: ApiUser, config: Config) -> dict[str, Any]:
    """Draw the quarter's sample of the bureau's cases (supervisor; once per quarter)."""
    _quarter(quarter)
    if user.role != SUPERVISOR:
        raise HubError(403, "forbidden", detail="only a supervisor draws the quarterly sample")
    figures = get_figures(request)
    return await run_in_threadpool(_sampled, lambda: draw(figures, config.figures, quarter, user.name))


@router.post("/samples/{quarter}/calls", responses={401: {}, 403: {}, 404: {}, 422: {}})
async def post_call(request: Request, quarter: str, user: ApiUser, dept: Key = None) -> dict[str, Any]:
    """Record one call's outcome: ``{"caseNo", "reached", "satisfied", "comment"}``, appended."""
    _quarter(quarter)
    only = _sheet_dept(user, dept)
    try:
        fields = json.loads((await read_body(request, MAX_CALL_BYTES)).decode("utf-8"))
    except (ValueError, UnicodeError):
        raise HubError(400, "malformed", detail="expected a JSON object") from None
    if not isinstance(fields, dict) or not isinstance(fields.get("caseNo"), str):
        raise HubError(422, "bad_call", detail="caseNo, reached, satisfied, comment")
    figures = get_figures(request)
    return await run_in_threadpool(
        _sampled,
        lambda: record_call(
            figures,
            quarter,
            only,
            fields["caseNo"],
            user.name,
            fields.get("reached"),
            fields.get("satisfied"),
            fields.get("comment"),
        ),
    )


def _quarter(quarter: str) -> None:
    if not re.fullmatch(_QUARTER[1:-1], quarter):
        raise HubError(422, "bad_quarter", detail="a quarter: 2026Q4")


def _period(period: str) -> str:
    """A month (2026-11) or a quarter (2026Q4) that exists; 422 otherwise."""
    try:
        if not re.fullmatch(_PERIOD[1:-1], period):
            raise ValueError(period)
        m.period_range(period)
    except ValueError:
        raise HubError(422, "bad_period", detail="a month (2026-11) or a quarter (2026Q4)") from None
    return period

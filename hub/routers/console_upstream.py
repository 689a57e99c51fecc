"""The console's page of the upward report (上报省平台): what waits (pending, failing with the last error,
refused with the province's message, needing a case number), the daily reconciliation of ratings held
against records sent, and the supervisor's resend of a refused record after the cause is fixed (the
same appended action as the API's)."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from ..dependencies import PageUser, Store
from ..desk.roles import ADMIN, SUPERVISOR
from ..upstream import outbox, rules
from .console import PageRefused, check_csrf, form_of, render

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)
SHOWN = 100
DAYS = 14


def _reader(user) -> None:
    if user.principal.role not in (SUPERVISOR, ADMIN):
        raise PageRefused(403, "无权访问", "只有督查和系统管理员可以查看上报情况。", user)


@router.get("/upstream")
def upstream_page(request: Request, user: PageUser, store: Store) -> Response:
    _reader(user)
    first = (date.today() - timedelta(days=DAYS - 1)).isoformat()
    with store.engine.connect() as conn:
        counts = outbox.counts(conn)
        days = outbox.reconciliation(conn, first=first)
        lists = {
            s: outbox.list_records(conn, s, limit=SHOWN)
            for s in (rules.FAILING, rules.REJECTED, rules.NEEDS_LINKAGE)
        }
    sender = getattr(request.app.state, "upstream_sender", None)
    return render(
        request,
        "upstream.html",
        user,
        counts=counts,
        days=days,
        lists=lists,
        sender=sender.state() if sender is not None else None,
        may_act=user.principal.role == SUPERVISOR,
        notice=request.query_params.get("notice"),
    )


@router.post("/upstream/{record_id}/resend")
async def resend(record_id: int, request: Request, user: PageUser, store: Store) -> Response:
    form = await form_of(request)
    check_csrf(user, form)
    if user.principal.role != SUPERVISOR:
        raise PageRefused(403, "无权操作", "只有督查可以重新上报。", user)
    try:
        with store.engine.begin() as conn:
            outbox.act(conn, record_id, "resend", user.principal.name, note=form.get("note") or None)
    except outbox.ActionError as e:
        raise PageRefused(409 if e.status == 409 else e.status, "无法重新上报", str(e), user) from None
    return RedirectResponse(f"/console/upstream?notice=resent-{record_id}", status_code=303)

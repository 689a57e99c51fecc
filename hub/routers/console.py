"""The console's pages (docs/console.md): 登录, 差评台账, 差评详情, 复核, 审计日志, 用户与科室, 设置.

Every form carries the session's CSRF token and is refused without it; a dept user meets a 403 page for
another section's item, as in the API. A phone number is shown only on the page that the explicit
"显示号码（回访）" form answers, after the reveal is recorded.
"""

from __future__ import annotations

import logging
import secrets
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from core.domain import DEFAULT_REASONS

from ..console import NAV, STATIC_DIR, templates
from ..console.session import COOKIE, LOGIN_CSRF_COOKIE, SESSION_S, Signer, same_token, session_key
from ..console.throttle import LoginThrottle
from ..dependencies import ConsoleRedirect, ConsoleUser, Desk, PageUser, SessionUser, Store, read_body
from ..desk import workflow as wf
from ..desk.calendar import CalendarGap
from ..desk.roles import ADMIN, ROLE_LABELS, ROLES, SUPERVISOR
from ..desk.store import DeskError, ItemFilter, NotFound
from ..keys import KeyFileError
from .manage import MAX_EXPORT_ITEMS, contact_opener, items_csv

log = logging.getLogger("hub")
REASON_LABELS = {r.code: r.label for r in DEFAULT_REASONS}
router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)

MAX_FORM_BYTES = 16 * 1024
PAGE_SIZE = 50
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; style-src 'self'; script-src 'none'; frame-ancestors 'none'",
}


class PageRefused(Exception):
    def __init__(self, status: int, title: str, text: str, user: ConsoleUser | None = None):
        super().__init__(title)
        self.status, self.title, self.text, self.user = status, title, text, user


def install(app: FastAPI) -> None:
    """The console's router, its session signer and throttle, and its two answers by exception."""
    store = app.state.store
    app.state.console_signer = Signer(lambda: _session_key(store))
    app.state.login_throttle = LoginThrottle(store.engine, lambda: app.state.console_signer.key)

    @app.exception_handler(ConsoleRedirect)
    async def redirect(_request: Request, exc: ConsoleRedirect) -> Response:
        return RedirectResponse(exc.location, status_code=303, headers={"Cache-Control": "no-store"})

    @app.exception_handler(PageRefused)
    async def refused(request: Request, exc: PageRefused) -> Response:
        return render(request, "message.html", exc.user, status=exc.status, title=exc.title, text=exc.text)

    app.include_router(router)


def _session_key(store) -> bytes:
    """Derived from the contact key, as every hub process and host holds it (docs/console.md); a store
    without a key file (a test's, a tool's) signs with a key of its own process."""
    try:
        return session_key(bytes(store.private_key))
    except KeyFileError as e:
        log.warning("console sessions signed with a key of this process only: %s", e)
        return secrets.token_bytes(32)


def render(
    request: Request, template: str, user: ConsoleUser | None, *, status: int = 200, **context
) -> HTMLResponse:
    settings = request.app.state.desk_settings
    nav = [n for n in NAV if user and user.principal.role in n.roles]
    html = templates.get_template(template).render(
        user=user.principal if user else None,
        csrf=user.session.csrf if user else None,
        nav=nav,
        path=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        role_labels=ROLE_LABELS,
        status_labels=wf.STATUS_LABELS,
        action_labels={**wf.ACTION_LABELS, "contact": "查看号码（回访）"},
        working_days=settings.working_days,
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


async def form_of(request: Request) -> dict[str, str]:
    body = await read_body(request, MAX_FORM_BYTES)
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise PageRefused(400, "请求无效", "表单不是 UTF-8 文本。") from None
    return {k: v[0] for k, v in fields.items()}


def check_csrf(user: ConsoleUser, form: dict[str, str]) -> None:
    if not same_token(form.get("csrf"), user.session.csrf):
        raise PageRefused(403, "请求已失效", "页面已过期或来源不明，请返回重新操作。", user)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "?"


def set_session(response: Response, request: Request, cookie: str) -> None:
    secure = request.url.scheme == "https" or request.app.state.desk_settings.public_url.startswith("https")
    response.set_cookie(
        COOKIE, cookie, max_age=SESSION_S, path="/console", httponly=True, samesite="strict", secure=secure
    )


# --- login, logout, password --------------------------------------------------------------------------


@router.get("/static/{name}")
def static(name: str) -> Response:
    path = STATIC_DIR / name
    if "/" in name or not path.is_file():
        raise PageRefused(404, "未找到", "没有这个文件。")
    return FileResponse(path, headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"})


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
def home(user: PageUser) -> Response:
    return RedirectResponse(
        "/console/items" if user.principal.sees_items() else "/console/overview", status_code=303
    )


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = render(request, "login.html", None, login_csrf=token)
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, max_age=3600, path="/console", httponly=True, samesite="strict"
    )
    return response


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, desk: Desk) -> Response:
    form = await form_of(request)
    name, password = form.get("name", "").strip()[:64], form.get("password", "")[:256]
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if not token or not same_token(form.get("csrf"), token):
        return render(
            request, "login.html", None, status=403, login_csrf=token, error="页面已过期，请重新登录。"
        )
    throttle: LoginThrottle = request.app.state.login_throttle
    address = client_address(request)
    attempt = await run_in_threadpool(throttle.attempt, name, address)  # counted before the check
    if attempt is None:
        return render(
            request,
            "login.html",
            None,
            status=429,
            login_csrf=token,
            name=name,
            error="登录失败次数过多，请 15 分钟后再试。",
        )
    checked = await run_in_threadpool(desk.check_password, name, password)
    if checked is None:  # the attempt stays counted as a failure
        return render(
            request, "login.html", None, status=401, login_csrf=token, name=name, error="用户名或密码错误。"
        )
    await run_in_threadpool(throttle.succeeded, name, attempt)
    principal, must_change, credential = checked
    # Bound to the hash the password was checked against, not one read again (a change in between).
    cookie, _ = request.app.state.console_signer.issue(principal.name, must_change, credential)
    response = RedirectResponse("/console/password" if must_change else "/console/", status_code=303)
    set_session(response, request, cookie)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console")
    return response


@router.post("/logout")
async def logout(request: Request, user: SessionUser) -> Response:
    check_csrf(user, await form_of(request))
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response


@router.get("/password", response_class=HTMLResponse)
def password_page(request: Request, user: SessionUser) -> Response:
    return render(request, "password.html", user, forced=user.session.must_change)


@router.post("/password", response_class=HTMLResponse)
async def change_password(request: Request, user: SessionUser, desk: Desk) -> Response:
    form = await form_of(request)
    check_csrf(user, form)
    current, new, again = form.get("current", ""), form.get("new", ""), form.get("again", "")
    error, credential = None, ""
    if await run_in_threadpool(desk.check_password, user.principal.name, current) is None:
        error = "当前密码不正确。"
    elif new != again:
        error = "两次输入的新密码不一致。"
    elif new == current:
        error = "新密码不能与当前密码相同。"
    else:
        try:
            credential = await run_in_threadpool(desk.set_password, user.principal.name, new)
        except DeskError:
            error = "新密码至少 10 个字符。"
    if error:
        return render(
            request, "password.html", user, status=400, forced=user.session.must_change, error=error
        )
    # The new password ends every other session of this user (a stolen cookie too); this one goes on.
    cookie, _ = request.app.state.console_signer.issue(user.principal.name, False, credential)
    response = RedirectResponse("/console/", status_code=303)
    set_session(response, request, cookie)
    return response


# --- the 台账 -------------------------------------------------------------------------------------------


def _items_reader(user: ConsoleUser) -> None:
    if not user.principal.sees_items():
        raise PageRefused(403, "无权访问", "您的角色不能查看差评台账。", user)


def _day(value: str | None) -> str | None:
    try:
        return date.fromisoformat(value).isoformat() if value else None
    except ValueError:
        return None


@router.get("/items", response_class=HTMLResponse)
def items_page(request: Request, user: PageUser, desk: Desk) -> Response:
    _items_reader(user)
    q = request.query_params
    status = q.get("status") if q.get("status") in wf.STATUSES else None
    sections = desk.sections()
    dept = q.get("dept") or None
    own = user.principal.item_scope()
    if own is not None and dept not in (None, own):
        raise PageRefused(403, "无权访问", "业务科室只能查看本科室的差评。", user)
    overdue = {"1": True, "0": False}.get(q.get("overdue", ""))
    first, last = _day(q.get("from")), _day(q.get("to"))
    try:
        page_no = max(1, min(int(q.get("page", "1")), 100_000))
    except ValueError:
        page_no = 1
    alarm = None
    try:
        rows, total = desk.list_items(
            user.principal,
            ItemFilter(status, dept, overdue, first, last),
            PAGE_SIZE,
            (page_no - 1) * PAGE_SIZE,
        )
    except CalendarGap as e:
        rows, total, alarm = [], 0, str(e)
    alarm = alarm or next((r["calendar_gap"] for r in rows if r["calendar_gap"]), None)
    filters = {
        "status": status or "",
        "dept": dept or "",
        "overdue": q.get("overdue", ""),
        "from": first or "",
        "to": last or "",
    }
    more = urlencode({k: v for k, v in filters.items() if v})
    return render(
        request,
        "items.html",
        user,
        rows=rows,
        total=total,
        page_no=page_no,
        pages=max(1, -(-total // PAGE_SIZE)),
        sections=sections,
        filters=filters,
        query=more,
        statuses=wf.STATUSES,
        alarm=alarm,
        title="督办：逾期差评" if overdue else "差评台账",
    )


@router.get("/items.csv")
def items_export(request: Request, user: PageUser, desk: Desk) -> Response:
    """The 台账 with the page's filters as CSV (the user's scope; no phone numbers)."""
    _items_reader(user)
    q = request.query_params
    dept = q.get("dept") or None
    own = user.principal.item_scope()
    if own is not None and dept not in (None, own):
        raise PageRefused(403, "无权访问", "业务科室只能导出本科室的差评。", user)
    status = q.get("status") if q.get("status") in wf.STATUSES else None
    overdue = {"1": True, "0": False}.get(q.get("overdue", ""))
    f = ItemFilter(status, dept, overdue, _day(q.get("from")), _day(q.get("to")))
    try:
        rows, _ = desk.list_items(user.principal, f, MAX_EXPORT_ITEMS, 0)
    except CalendarGap as e:
        raise PageRefused(503, "日历告警", str(e), user) from None
    return Response(
        items_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={**PAGE_HEADERS, "Content-Disposition": 'attachment; filename="bad-ratings.csv"'},
    )


def _item_or_refuse(desk, user: ConsoleUser, item_id: int) -> dict[str, Any]:
    _items_reader(user)
    try:
        return desk.item(user.principal, item_id)
    except NotFound:
        raise PageRefused(404, "未找到", f"没有编号为 {item_id} 的差评。", user) from None
    except PermissionError:
        raise PageRefused(403, "无权访问", "该差评属于其他科室，您无权查看。", user) from None


@router.get("/items/{item_id}", response_class=HTMLResponse)
def item_page(request: Request, item_id: int, user: PageUser, desk: Desk) -> Response:
    item = _item_or_refuse(desk, user, item_id)
    return _item_response(request, user, desk, item)


def _item_response(
    request, user, desk, item, *, status: int = 200, error: str | None = None, phone=None, revealed=False
):
    item["reason_labels"] = [REASON_LABELS.get(code, code) for code in item["reasons"]]
    allowed = wf.allowed_actions(item["state"], user.principal.role)
    return render(
        request,
        "item.html",
        user,
        status=status,
        item=item,
        allowed=allowed,
        error=error,
        section=desk.sections().get(item["dept"] or "", ""),
        phone=phone,
        revealed=revealed,
        may_reveal=user.principal.may_reveal_contact(item["dept"]),
    )


@router.post("/items/{item_id}/actions", response_class=HTMLResponse)
async def item_action(request: Request, item_id: int, user: PageUser, desk: Desk) -> Response:
    form = await form_of(request)
    check_csrf(user, form)
    item = _item_or_refuse(desk, user, item_id)
    fields: dict[str, Any] = {"note": form.get("note", "")}
    for flag in ("reached", "adopt"):
        if flag in form:
            fields[flag] = {"1": True, "0": False}.get(form[flag], form[flag])
    action = form.get("action", "")
    try:
        await run_in_threadpool(desk.act, user.principal, item_id, action, fields)
    except wf.Refused as e:
        messages = {
            403: "您的角色不能执行此操作。",
            409: "此操作不符合当前办理状态。",
            422: "请填写完整：" + e.detail,
        }
        return _item_response(request, user, desk, item, status=e.status, error=messages[e.status])
    return RedirectResponse(f"/console/items/{item_id}", status_code=303)


@router.post("/items/{item_id}/contact", response_class=HTMLResponse)
async def reveal(request: Request, item_id: int, user: PageUser, desk: Desk, store: Store) -> Response:
    check_csrf(user, await form_of(request))
    _item_or_refuse(desk, user, item_id)
    try:
        phone = await run_in_threadpool(desk.reveal_contact, user.principal, item_id, contact_opener(store))
    except PermissionError:
        raise PageRefused(403, "无权访问", "只有所属科室或督查可以查看号码。", user) from None
    item = _item_or_refuse(desk, user, item_id)
    return _item_response(request, user, desk, item, phone=phone, revealed=True)


@router.get("/reviews", response_class=HTMLResponse)
def reviews_page(request: Request, user: PageUser, desk: Desk) -> Response:
    _items_reader(user)
    rows, total = desk.list_items(user.principal, ItemFilter(status=wf.REVIEW), 500, 0)
    decided, _ = desk.list_items(user.principal, ItemFilter(status=wf.NOT_ADOPTED), 100, 0)
    return render(
        request, "reviews.html", user, rows=rows, total=total, decided=decided, sections=desk.sections()
    )


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, user: PageUser, desk: Desk) -> Response:
    if not user.principal.sees_audit():
        raise PageRefused(403, "无权访问", "只有督查和系统管理员可以查看审计日志。", user)
    head_seq, head_hash = desk.head()
    return render(request, "audit.html", user, reveals=desk.audit(), head_seq=head_seq, head_hash=head_hash)


# --- users, sections, settings ------------------------------------------------------------------------


def _admin(user: ConsoleUser) -> None:
    if user.principal.role != ADMIN:
        raise PageRefused(403, "无权访问", "只有系统管理员可以管理用户与科室。", user)


def _users_response(request, user, desk, *, status=200, error=None, notice=None, password=None):
    return render(
        request,
        "users.html",
        user,
        status=status,
        users=desk.users(),
        sections=desk.sections(),
        devices=desk.device_sections(),
        roles=ROLES,
        error=error,
        notice=notice,
        password=password,
    )


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, user: PageUser, desk: Desk) -> Response:
    _admin(user)
    return _users_response(request, user, desk)


@router.post("/users", response_class=HTMLResponse)
async def users_post(request: Request, user: PageUser, desk: Desk) -> Response:
    _admin(user)
    form = await form_of(request)
    check_csrf(user, form)
    op = form.get("op")
    try:
        if op == "add_user":
            name = form.get("name", "").strip()
            password = desk.add_user(name, form.get("role", ""), form.get("dept") or None) if name else None
            if password is None:
                raise DeskError("请填写用户名")
            return _users_response(
                request,
                user,
                desk,
                notice=f"已添加用户 {name}，一次性密码如下（首次登录须修改）：",
                password=password,
            )
        if op == "disable":
            desk.disable_user(form.get("name", ""))
            return _users_response(request, user, desk, notice=f"已停用用户 {form.get('name')}")
        if op == "add_section":
            code, name = form.get("code", "").strip(), form.get("name", "").strip()
            if not code or not name or len(code) > 32:
                raise DeskError("请填写科室代码与名称")
            desk.add_section(code, name)
            return _users_response(request, user, desk, notice=f"已保存科室 {code} {name}")
        if op == "device_section":
            desk.set_device_section(form.get("device", ""), form.get("dept", ""))
            return _users_response(
                request, user, desk, notice=f"设备 {form.get('device')} 已归属科室 {form.get('dept')}"
            )
    except DeskError as e:
        return _users_response(request, user, desk, status=400, error=str(e))
    raise PageRefused(400, "请求无效", "未知操作。", user)


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request, user: PageUser, desk: Desk) -> Response:
    settings = request.app.state.desk_settings
    years = sorted(desk.calendar.known_years)
    today = desk.today()
    gap = None
    try:
        desk.calendar.add_working_days(today, settings.working_days + 10)
    except CalendarGap as e:
        gap = str(e)
    alerts = request.app.state.alerts.status() if user.principal.role in (ADMIN, SUPERVISOR) else None
    return render(
        request,
        "settings.html",
        user,
        settings=settings,
        years=years,
        today=today,
        gap=gap,
        calendar_file=str(settings.calendar_file) if settings.calendar_file else "",
        alert_targets=settings.alerts if user.principal.role == ADMIN else (),
        alerts=alerts,
    )

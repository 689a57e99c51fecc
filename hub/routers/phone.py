"""The phone rating page behind the kiosks' QR codes (``/q/TOKEN``, pages in hub/qrpage.py): HTML answers,
errors included. One rating per token and per case number, across the window and the phone."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from core.contact import seal_contact
from core.qrtoken import TokenClaims, TokenError, verify_token

from ..dependencies import Store, read_body
from ..errors import HubError
from ..qrpage import (
    FORM_SCHEMA,
    KEPT_CHOICE_COOKIE,
    KEPT_CHOICE_MAX_AGE_S,
    MAX_FORM_BYTES,
    PAGE_HEADERS,
    CaseView,
    FormError,
    PageError,
    already_rated,
    complete_rating,
    done_page,
    form_page,
    invalid_form,
    kept_choice,
    kept_choice_cookie,
    parse_form,
)
from ..ratings import case_text, phone_rating_row
from ..storage import HubStore

log = logging.getLogger("hub")

router = APIRouter(tags=["phone page"])

_FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
# Status, title and text of the page for a refused token, by TokenError reason.
_TOKEN_REFUSALS = {
    "expired": (410, "二维码已过期", "请扫描评价器屏幕上当前显示的二维码。"),
    "not_yet_valid": (403, "二维码尚未生效", "请扫描评价器屏幕上当前显示的二维码。"),
}
_TOKEN_INVALID = (400, "二维码无效", "无法识别此二维码，请扫描评价器屏幕上显示的二维码。")


def verified(store: HubStore, token: str, *, late: bool = False) -> TokenClaims:
    """The token's claims; PageError for a refused one. With ``late``, an expired but genuine token's
    claims come back too, inside a TokenError, for the caller to decide."""
    try:
        claims = verify_token(token, store.device_secret, int(time.time()))
    except TokenError as e:
        log.info("QR token refused: %s", e.reason)
        if late and e.claims is not None and _storable(e.claims):
            raise
        raise PageError(*_TOKEN_REFUSALS.get(e.reason, _TOKEN_INVALID)) from None
    if not _storable(claims):
        raise PageError(*_TOKEN_INVALID)
    return claims


def _storable(claims: TokenClaims) -> bool:
    """Signed, but is it storable text?"""
    texts = (claims.device_id, claims.window, claims.staff_no, claims.case_no, claims.item_code)
    return not any(t is not None and "\x00" in t for t in texts)


def opened_case(store: HubStore, claims: TokenClaims) -> dict[str, Any] | None:
    return store.opened_case(claims.device_id, claims.case_no) if claims.case_no else None


def case_view(request: Request, claims: TokenClaims, case: dict[str, Any] | None) -> CaseView:
    """What the page shows: the item's name, the case, and who is asking (hall, section, window)."""
    hall = request.app.state.config.server.hall
    section = request.app.state.desk.section_name(claims.device_id)
    place = tuple(p for p in (hall, section) if p)
    return CaseView(case_text(case, "item_name"), claims.case_no, claims.window, place)


def rate_page(view: CaseView, status: int = 200, **options) -> HTMLResponse:
    return HTMLResponse(form_page(view, **options), status_code=status, headers=PAGE_HEADERS)


def result_page() -> HTMLResponse:
    return HTMLResponse(done_page(), headers=PAGE_HEADERS)


def see_result(token: str) -> Response:
    """303 to GET /q/TOKEN, which shows 评价成功 from now on. Relative, so it works behind a proxy
    that serves the hub under a path prefix. Choices kept from an expired code are done with."""
    headers = {**PAGE_HEADERS, "Location": token, "Set-Cookie": _kept_cookie("", 0)}
    return Response(status_code=303, headers=headers)


def _kept_cookie(value: str, max_age_s: int) -> str:
    # No Path: the browser takes the folder of /…/q/TOKEN, so a proxy's path prefix is kept too.
    return f"{KEPT_CHOICE_COOKIE}={value}; Max-Age={max_age_s}; HttpOnly; SameSite=Lax"


def rate(store: HubStore, request: Request, token: str, body: bytes) -> Response:
    try:
        claims = verified(store, token, late=True)
    except TokenError as e:
        assert e.claims is not None
        return late_post(store, request, token, e.claims, body)
    try:
        form = parse_form(body)
    except FormError as e:
        log.info("QR form refused: %s", e)
        raise invalid_form() from None
    try:
        rating = complete_rating(form)
    except FormError as e:
        if store.token_rated(claims.device_id, claims.nonce):
            return see_result(token)  # a second tap, or Back and send again
        if store.already_rated(claims.device_id, claims.nonce, claims.case_no):
            raise already_rated() from None
        view = case_view(request, claims, opened_case(store, claims))
        return rate_page(view, 400, error=str(e), chosen=form, problems=e.problems)
    case = opened_case(store, claims)
    sealed = seal_contact(rating.phone, store.private_key.public_key) if rating.phone else None
    staff_name = store.staff_name(claims.device_id, claims.staff_no) if claims.staff_no else None
    row = phone_rating_row(
        claims, rating.satisfaction, rating.reasons, sealed, case, staff_name, datetime.now().astimezone()
    )
    if store.add_phone_rating(row):  # durable (committed) when True
        log.info("phone rating stored: device %s token %s", claims.device_id, claims.nonce)
        return see_result(token)
    if store.token_rated(claims.device_id, claims.nonce):
        log.info("phone rating repeated: device %s token %s", claims.device_id, claims.nonce)
        return see_result(token)
    raise already_rated()


def late_post(store: HubStore, request: Request, token: str, claims: TokenClaims, body: bytes) -> Response:
    """A form sent after its code expired: a rating already stored with it is still a success;
    otherwise the form comes back with the citizen's choices and what to do next (410)."""
    if store.token_rated(claims.device_id, claims.nonce):
        return see_result(token)
    if store.already_rated(claims.device_id, claims.nonce, claims.case_no):
        raise already_rated()
    try:
        form = parse_form(body)
    except FormError:
        raise PageError(*_TOKEN_REFUSALS["expired"]) from None
    view = case_view(request, claims, opened_case(store, claims))
    page = rate_page(view, 410, chosen=form, expired=True)
    kept = kept_choice_cookie(claims.device_id, claims.case_no, form) if claims.case_no else None
    if kept:
        page.headers["Set-Cookie"] = _kept_cookie(kept, KEPT_CHOICE_MAX_AGE_S)
    return page


@router.get(
    "/q/{token}",
    response_class=HTMLResponse,
    responses={400: {}, 403: {}, 409: {"description": "该办件已评价"}, 410: {"description": "expired"}},
)
def get_rate_page(token: str, request: Request, store: Store) -> HTMLResponse:
    try:
        claims = verified(store, token, late=True)
    except TokenError as e:
        assert e.claims is not None
        if store.token_rated(e.claims.device_id, e.claims.nonce):
            return result_page()
        raise PageError(*_TOKEN_REFUSALS["expired"]) from None
    if store.token_rated(claims.device_id, claims.nonce):
        return result_page()
    if store.already_rated(claims.device_id, claims.nonce, claims.case_no):
        raise already_rated()
    view = case_view(request, claims, opened_case(store, claims))
    kept = kept_choice(request.cookies.get(KEPT_CHOICE_COOKIE), claims.device_id, claims.case_no)
    return rate_page(view, chosen=kept, kept=kept is not None)


@router.post(
    "/q/{token}",
    response_class=HTMLResponse,
    status_code=303,
    openapi_extra={"requestBody": {"required": True, "content": {_FORM_MEDIA_TYPE: {"schema": FORM_SCHEMA}}}},
    responses={
        303: {"description": "stored, or stored before: see GET"},
        400: {},
        403: {},
        409: {},
        410: {},
        413: {},
        415: {},
    },
)
async def post_rating(token: str, request: Request, store: Store) -> Response:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != _FORM_MEDIA_TYPE:
        raise invalid_form(415)
    try:
        body = await read_body(request, MAX_FORM_BYTES)
    except HubError as e:  # 413, or 408/429 when slow or too many at once
        raise invalid_form(e.status) from None
    return await run_in_threadpool(rate, store, request, token, body)

"""The phone rating page behind the kiosks' QR codes (``/q/TOKEN``, pages in hub/qrpage.py): HTML answers,
errors included. One rating per token and per case number, across the window and the phone."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from core.contact import seal_contact
from core.qrtoken import TokenClaims, TokenError, verify_token

from ..dependencies import Store, read_body
from ..errors import HubError
from ..qrpage import (
    FORM_SCHEMA,
    MAX_FORM_BYTES,
    PAGE_HEADERS,
    CaseView,
    FormError,
    PageError,
    already_rated,
    complete_rating,
    form_page,
    invalid_form,
    parse_form,
    thanks_page,
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


def verified(store: HubStore, token: str) -> TokenClaims:
    try:
        claims = verify_token(token, store.device_secret, int(time.time()))
    except TokenError as e:
        log.info("QR token refused: %s", e.reason)
        raise PageError(*_TOKEN_REFUSALS.get(e.reason, _TOKEN_INVALID)) from None
    texts = (claims.device_id, claims.window, claims.staff_no, claims.case_no, claims.item_code)
    if any(t is not None and "\x00" in t for t in texts):  # signed, but not storable text
        raise PageError(*_TOKEN_INVALID)
    return claims


def opened_case(store: HubStore, claims: TokenClaims) -> dict[str, Any] | None:
    return store.opened_case(claims.device_id, claims.case_no) if claims.case_no else None


def rate_page(claims: TokenClaims, case: dict[str, Any] | None, status: int = 200, **options) -> HTMLResponse:
    view = CaseView(case_text(case, "item_name") or claims.item_code, claims.case_no, claims.window)
    return HTMLResponse(form_page(view, **options), status_code=status, headers=PAGE_HEADERS)


def rate(store: HubStore, token: str, body: bytes) -> HTMLResponse:
    claims = verified(store, token)
    try:
        form = parse_form(body)
    except FormError as e:
        log.info("QR form refused: %s", e)
        raise invalid_form() from None
    case = opened_case(store, claims)
    try:
        rating = complete_rating(form)
    except FormError as e:
        if store.already_rated(claims.device_id, claims.nonce, claims.case_no):
            raise already_rated() from None
        return rate_page(claims, case, 400, error=str(e), chosen=form)
    sealed = seal_contact(rating.phone, store.private_key.public_key) if rating.phone else None
    staff_name = store.staff_name(claims.device_id, claims.staff_no) if claims.staff_no else None
    row = phone_rating_row(
        claims, rating.satisfaction, rating.reasons, sealed, case, staff_name, datetime.now().astimezone()
    )
    if not store.add_phone_rating(row):  # durable (committed) when True
        raise already_rated()
    log.info("phone rating stored: device %s token %s", claims.device_id, claims.nonce)
    return HTMLResponse(thanks_page(), headers=PAGE_HEADERS)


@router.get(
    "/q/{token}",
    response_class=HTMLResponse,
    responses={400: {}, 403: {}, 409: {"description": "该办件已评价"}, 410: {"description": "expired"}},
)
def get_rate_page(token: str, store: Store) -> HTMLResponse:
    claims = verified(store, token)
    if store.already_rated(claims.device_id, claims.nonce, claims.case_no):
        raise already_rated()
    return rate_page(claims, opened_case(store, claims))


@router.post(
    "/q/{token}",
    response_class=HTMLResponse,
    openapi_extra={"requestBody": {"required": True, "content": {_FORM_MEDIA_TYPE: {"schema": FORM_SCHEMA}}}},
    responses={400: {}, 403: {}, 409: {}, 410: {}, 413: {}, 415: {}},
)
async def post_rating(token: str, request: Request, store: Store) -> HTMLResponse:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != _FORM_MEDIA_TYPE:
        raise invalid_form(415)
    try:
        body = await read_body(request, MAX_FORM_BYTES)
    except HubError as e:  # 413, or 408/429 when slow or too many at once
        raise invalid_form(e.status) from None
    return await run_in_threadpool(rate, store, token, body)

"""The hub's HTTP API (contracts.md §5) as a FastAPI application over a HubStore, and the phone rating
page that the kiosk's QR code opens (``/q/TOKEN``, pages in hub/qrpage.py).

Device requests are authenticated over the raw body before anything is parsed; hostile input gets a 4xx
and stores nothing (malformed JSON, wrong types, huge bodies, forged signatures, stale timestamps). Every
API error is a JSON object with ``error``; the 409 answers also carry ``expected_seq`` and ``acked_seq``.
The phone page answers in HTML, errors included.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.config import DEVICE_ID_PATTERN
from core.contact import ContactError, open_contact, seal_contact
from core.events import canonical_json
from core.qrtoken import TokenClaims, TokenError, verify_token

from .auth import (
    DEVICE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    AuthError,
    DeviceAuthenticator,
    check_bearer,
)
from .qrpage import (
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
    message_page,
    parse_form,
    thanks_page,
)
from .ratings import MAX_SEQ, case_text, export_record, phone_rating_row, time_bound, to_csv
from .storage import HubStore

log = logging.getLogger("hub")

MAX_BATCH_EVENTS = 1000
MAX_BODY_BYTES = 2 * 1024 * 1024  # the agent sends at most 512 KB; room for other clients
MAX_INGESTS_IN_FLIGHT = 16  # beyond this the hub sheds load with 429
RETRY_AFTER_S = 1
_HEX64 = r"^[0-9a-f]{64}$"
_TOKEN = r"^[\x21-\x7e]{1,64}$"  # printable ASCII without spaces
_LOG_ID = r"^[A-Za-z0-9-]{1,64}$"
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
# Status, title and text of the page for a refused token, by TokenError reason.
_TOKEN_REFUSALS = {
    "expired": (410, "二维码已过期", "请扫描评价器屏幕上当前显示的二维码。"),
    "not_yet_valid": (403, "二维码尚未生效", "请扫描评价器屏幕上当前显示的二维码。"),
}
_TOKEN_INVALID = (400, "二维码无效", "无法识别此二维码，请扫描评价器屏幕上显示的二维码。")


# The signature headers of every device request (contracts.md §5), in the OpenAPI document.
_DEVICE_AUTH = {
    "parameters": [
        {"name": name, "in": "header", "required": True, "schema": {"type": "string"}, "description": text}
        for name, text in (
            (DEVICE_HEADER, "the device id"),
            (TIMESTAMP_HEADER, "unix seconds, at most 300 s from the hub's clock"),
            (SIGNATURE_HEADER, 'hex(HMAC-SHA256(secret, timestamp + "\\n" + raw body))'),
        )
    ]
}


class Event(BaseModel):
    """One event of a kiosk log, exactly as contracts.md §4 writes it."""

    model_config = ConfigDict(strict=True, extra="forbid")
    log_id: str = Field(pattern=_LOG_ID)
    seq: int = Field(ge=1, le=MAX_SEQ)
    id: str = Field(pattern=_TOKEN)
    type: str = Field(pattern=r"^[a-z_]{1,64}$")
    at: str = Field(pattern=_TOKEN)
    payload: dict[str, Any]
    prev_hash: str = Field(pattern=_HEX64)
    hash: str = Field(pattern=_HEX64)


class EventBatch(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    device_id: str = Field(pattern=f"^{DEVICE_ID_PATTERN}$")
    log_id: str = Field(pattern=_LOG_ID)
    events: list[Event] = Field(max_length=MAX_BATCH_EVENTS)


class Acked(BaseModel):
    acked_seq: int


class HubError(Exception):
    """An answer other than 200: status, JSON body and headers."""

    def __init__(self, status: int, error: str, headers: dict[str, str] | None = None, **fields: Any):
        super().__init__(error)
        self.status, self.headers = status, headers
        self.body = {"error": error, **fields}


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its ``$defs`` substituted in place, for an OpenAPI request body."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(defs[node["$ref"].rsplit("/", 1)[-1]])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return resolve(schema)


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")  # NaN and Infinity: Python's extension, not RFC 8259


def _parse_batch(body: bytes, device_id: str) -> tuple[str, list[dict[str, Any]]]:
    """(log_id, events as sent) of a valid batch body; HubError 400/413 otherwise."""
    try:
        # Strict UTF-8 first: json.loads(bytes) would let encoded surrogates through.
        obj = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
        if _SURROGATE_ESCAPE.search(body):
            canonical_json(obj)  # a lone surrogate cannot be hashed or stored: UnicodeEncodeError
    except (ValueError, RecursionError, UnicodeError) as e:
        raise HubError(400, "malformed", detail=f"not a JSON document: {type(e).__name__}") from None
    if (
        isinstance(obj, dict)
        and isinstance(obj.get("events"), list)
        and len(obj["events"]) > MAX_BATCH_EVENTS
    ):
        raise HubError(413, "too_large", detail=f"at most {MAX_BATCH_EVENTS} events per batch")
    try:
        batch = EventBatch.model_validate(obj)
    except ValidationError as e:
        problems = [
            f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors(include_input=False)
        ]
        raise HubError(400, "malformed", detail="; ".join(problems[:5])) from None
    if batch.device_id != device_id:
        raise HubError(400, "malformed", detail="device_id does not match X-Kiosk-Device")
    seqs = [e.seq for e in batch.events]
    if any(e.log_id != batch.log_id for e in batch.events):
        raise HubError(400, "malformed", detail="every event must carry the batch's log_id")
    if any(b <= a for a, b in zip(seqs, seqs[1:], strict=False)):
        raise HubError(400, "malformed", detail="events must be in ascending seq order")
    return batch.log_id, obj["events"]


async def _read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise HubError(413, "too_large", detail=f"body over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HubError(413, "too_large", detail=f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    store: HubStore, admin_token: str | None = None, *, max_in_flight: int = MAX_INGESTS_IN_FLIGHT
) -> FastAPI:
    app = FastAPI(
        title="好差评 reference hub",
        version="1",
        description="Signed uploads of kiosk event logs, rosters, and the ratings export (contracts.md §5).",
    )
    authenticator = DeviceAuthenticator(store.device_secret)
    in_flight = 0  # uploads being stored; only the event loop's thread touches it

    def device_of(request: Request, body: bytes = b"") -> str:
        try:
            return authenticator.check(request.headers, body)
        except AuthError as e:
            raise HubError(401, "unauthorized", detail=str(e)) from None

    @app.exception_handler(HubError)
    async def hub_error(_request: Request, exc: HubError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        return JSONResponse({"error": "malformed", "detail": "; ".join(problems[:5])}, status_code=400)

    @app.exception_handler(PageError)
    async def page_error(_request: Request, exc: PageError) -> HTMLResponse:
        return HTMLResponse(message_page(exc.title, exc.text), status_code=exc.status, headers=PAGE_HEADERS)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.get("/healthz")
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.post(
        "/api/v1/events",
        response_model=Acked,
        openapi_extra={
            **_DEVICE_AUTH,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _inline_refs(EventBatch.model_json_schema())}},
            },
        },
        responses={
            400: {"description": "malformed"},
            401: {"description": "unsigned, wrongly signed, unknown device or stale timestamp"},
            409: {"description": "gap, fork or bad_hash; expected_seq says where to resume"},
            413: {"description": "too large"},
            429: {"description": "shedding load; see Retry-After"},
        },
    )
    async def post_events(request: Request) -> dict[str, int]:
        nonlocal in_flight
        body = await _read_body(request, MAX_BODY_BYTES)
        device_id = device_of(request, body)
        log_id, events = _parse_batch(body, device_id)
        if in_flight >= max_in_flight:
            raise HubError(429, "busy", headers={"Retry-After": str(RETRY_AFTER_S)})
        in_flight += 1
        try:
            result = await run_in_threadpool(store.ingest, device_id, log_id, events)
        finally:
            in_flight -= 1
        if result.conflict:
            log.warning(
                "device %s log %s: %s at seq %s; holding up to %d",
                device_id,
                log_id,
                result.conflict,
                result.conflict_seq,
                result.acked_seq,
            )
            raise HubError(
                409,
                result.conflict,
                expected_seq=result.expected_seq,
                acked_seq=result.acked_seq,
                seq=result.conflict_seq,
            )
        return {"acked_seq": result.acked_seq}

    @app.get("/api/v1/devices/{device_id}/roster", openapi_extra=_DEVICE_AUTH)
    def get_roster(
        device_id: str, request: Request, if_none_match: Annotated[str | None, Header()] = None
    ) -> Response:
        if device_of(request) != device_id:
            raise HubError(403, "forbidden", detail="a device may read only its own roster")
        roster = store.roster_for(device_id)
        etag = f'"{roster.version}"'
        if if_none_match and etag in [t.strip() for t in if_none_match.split(",")]:
            return Response(status_code=304, headers={"ETag": etag})
        staff = [
            {
                "card": s["card"],
                "staff_no": s["staff_no"],
                "name": s["name"],
                "title": s["title"],
                "photo_url": f"/api/v1/photos/{s['photo_sha256']}" if s["photo_sha256"] else None,
            }
            for s in roster.staff
        ]
        return JSONResponse({"version": roster.version, "staff": staff}, headers={"ETag": etag})

    @app.get("/api/v1/photos/{sha256}", openapi_extra=_DEVICE_AUTH)
    def get_photo(sha256: str, request: Request) -> Response:
        device_of(request)
        found = store.photo(sha256) if re.fullmatch(_HEX64, sha256) else None
        if found is None:
            raise HubError(404, "not_found")
        data, media_type = found
        return Response(
            data, media_type=media_type, headers={"Cache-Control": "private, max-age=31536000, immutable"}
        )

    @app.get("/api/v1/ratings", responses={200: {"content": {"text/csv": {}}}, 401: {}, 403: {}})
    def get_ratings(
        authorization: Annotated[str | None, Header()] = None,
        from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
        to: Annotated[str | None, Query(max_length=40)] = None,
        format: Literal["json", "csv"] = "json",  # the contract names it so
    ) -> Response:
        try:
            check_bearer(authorization, admin_token)
        except AuthError as e:
            raise HubError(401 if admin_token else 403, "unauthorized", detail=str(e)) from None
        try:
            first = time_bound(from_, end=False) if from_ else None
            last = time_bound(to, end=True) if to else None
        except ValueError:
            raise HubError(
                400, "malformed", detail="from/to: expected yyyy-MM-dd or an ISO date-time"
            ) from None
        records = [export_record(row, _contact_opener(store)) for row in store.ratings_between(first, last)]
        unlinked = sum(1 for r in records if not r["linked"])
        duplicates = sum(1 for r in records if r["duplicate"])
        counts = {
            "X-Rating-Count": str(len(records)),
            "X-Unlinked-Count": str(unlinked),
            "X-Duplicate-Count": str(duplicates),
        }
        if format == "csv":
            return PlainTextResponse(to_csv(records), media_type="text/csv; charset=utf-8", headers=counts)
        return JSONResponse(
            {"count": len(records), "unlinked": unlinked, "duplicates": duplicates, "ratings": records},
            headers=counts,
        )

    def verified(token: str) -> TokenClaims:
        try:
            claims = verify_token(token, store.device_secret, int(time.time()))
        except TokenError as e:
            log.info("QR token refused: %s", e.reason)
            raise PageError(*_TOKEN_REFUSALS.get(e.reason, _TOKEN_INVALID)) from None
        texts = (claims.device_id, claims.window, claims.staff_no, claims.case_no, claims.item_code)
        if any(t is not None and "\x00" in t for t in texts):  # signed, but not storable text
            raise PageError(*_TOKEN_INVALID)
        return claims

    def opened_case(claims: TokenClaims) -> dict[str, Any] | None:
        return store.opened_case(claims.device_id, claims.case_no) if claims.case_no else None

    def rate_page(
        claims: TokenClaims, case: dict[str, Any] | None, status: int = 200, **options
    ) -> HTMLResponse:
        view = CaseView(case_text(case, "item_name") or claims.item_code, claims.case_no, claims.window)
        return HTMLResponse(form_page(view, **options), status_code=status, headers=PAGE_HEADERS)

    def rate(token: str, body: bytes) -> HTMLResponse:
        claims = verified(token)
        try:
            form = parse_form(body)
        except FormError as e:
            log.info("QR form refused: %s", e)
            raise invalid_form() from None
        case = opened_case(claims)
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

    @app.get(
        "/q/{token}",
        response_class=HTMLResponse,
        responses={400: {}, 403: {}, 409: {"description": "该办件已评价"}, 410: {"description": "expired"}},
    )
    def get_rate_page(token: str) -> HTMLResponse:
        claims = verified(token)
        if store.already_rated(claims.device_id, claims.nonce, claims.case_no):
            raise already_rated()
        return rate_page(claims, opened_case(claims))

    @app.post(
        "/q/{token}",
        response_class=HTMLResponse,
        openapi_extra={
            "requestBody": {"required": True, "content": {_FORM_MEDIA_TYPE: {"schema": FORM_SCHEMA}}}
        },
        responses={400: {}, 403: {}, 409: {}, 410: {}, 413: {}, 415: {}},
    )
    async def post_rating(token: str, request: Request) -> HTMLResponse:
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type != _FORM_MEDIA_TYPE:
            raise invalid_form(415)
        try:
            body = await _read_body(request, MAX_FORM_BYTES)
        except HubError:
            raise invalid_form(413) from None
        return await run_in_threadpool(rate, token, body)

    return app


def _contact_opener(store: HubStore) -> Callable[[str], str | None]:
    def opener(sealed: str) -> str | None:
        try:
            return open_contact(sealed, store.private_key)
        except ContactError:
            log.warning("a sealed contact could not be opened with this hub's key")
            return None

    return opener

"""The hub's HTTP API (contracts.md §5) as a FastAPI application over a HubStore.

Device requests are authenticated over the raw body before anything is parsed; hostile input gets a 4xx
and stores nothing (malformed JSON, wrong types, huge bodies, forged signatures, stale timestamps). Every
error is a JSON object with ``error``; the 409 answers also carry ``expected_seq`` and ``acked_seq``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from kiosk.config import DEVICE_ID_PATTERN
from kiosk.contact import ContactError, open_contact
from kiosk.events import canonical_json

from .auth import AuthError, DeviceAuthenticator, check_bearer
from .ratings import export_record, time_bound, to_csv
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


class Event(BaseModel):
    """One event of a kiosk log, exactly as contracts.md §4 writes it."""

    model_config = ConfigDict(strict=True, extra="forbid")
    log_id: str = Field(pattern=_LOG_ID)
    seq: int = Field(ge=1, le=2**53)
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


def _parse_batch(body: bytes, device_id: str) -> tuple[str, list[dict[str, Any]]]:
    """(log_id, events as sent) of a valid batch body; HubError 400/413 otherwise."""
    try:
        obj = json.loads(body)
        if _SURROGATE_ESCAPE.search(body):
            canonical_json(obj)  # a lone surrogate cannot be hashed or stored: UnicodeEncodeError
    except (ValueError, RecursionError, UnicodeEncodeError) as e:
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
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _inline_refs(EventBatch.model_json_schema())}},
            }
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

    @app.get("/api/v1/devices/{device_id}/roster")
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

    @app.get("/api/v1/photos/{sha256}")
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
        counts = {"X-Rating-Count": str(len(records)), "X-Unlinked-Count": str(unlinked)}
        if format == "csv":
            return PlainTextResponse(to_csv(records), media_type="text/csv; charset=utf-8", headers=counts)
        return JSONResponse({"count": len(records), "unlinked": unlinked, "ratings": records}, headers=counts)

    return app


def _contact_opener(store: HubStore) -> Callable[[str], str | None]:
    def opener(sealed: str) -> str | None:
        try:
            return open_contact(sealed, store.private_key)
        except ContactError:
            log.warning("a sealed contact could not be opened with this hub's key")
            return None

    return opener

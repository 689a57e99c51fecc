"""Routes for the kiosks (signed device requests): event uploads, rosters and staff photos.

Device requests are authenticated over the raw body before anything is parsed; hostile input gets a 4xx
and stores nothing (malformed JSON, wrong types, huge bodies, forged signatures, stale timestamps).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from core.config import DEVICE_ID_PATTERN
from core.events import canonical_json

from ..auth import DEVICE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from ..dependencies import Device, Store, claimed_device_off_loop, read_body, verified_device
from ..errors import HubError
from ..ratings import MAX_SEQ

log = logging.getLogger("hub")

router = APIRouter(tags=["devices"])

MAX_BATCH_EVENTS = 1000
MAX_BODY_BYTES = 2 * 1024 * 1024  # the agent sends at most 512 KB; room for other clients
MAX_INGESTS_IN_FLIGHT = 16  # beyond this the hub sheds load with 429
RETRY_AFTER_S = 1
HEX64 = r"^[0-9a-f]{64}$"
_TOKEN = r"^[\x21-\x7e]{1,64}$"  # printable ASCII without spaces
_LOG_ID = r"^[A-Za-z0-9-]{1,64}$"
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")

# The signature headers of every device request (docs/protocol.md §2), in the OpenAPI document.
_DEVICE_AUTH = {
    "parameters": [
        {"name": name, "in": "header", "required": True, "schema": {"type": "string"}, "description": text}
        for name, text in (
            (DEVICE_HEADER, "the device id"),
            (TIMESTAMP_HEADER, "unix seconds, at most 300 s from the hub's clock"),
            (
                SIGNATURE_HEADER,
                'v2= + hex(HMAC-SHA256(secret, timestamp "\\n" METHOD "\\n" target "\\n" hex(SHA-256(body))))',
            ),
        )
    ]
}


class Event(BaseModel):
    """One event of a kiosk log, exactly as docs/protocol.md §1 writes it."""

    model_config = ConfigDict(strict=True, extra="forbid")
    log_id: str = Field(pattern=_LOG_ID)
    seq: int = Field(ge=1, le=MAX_SEQ)
    id: str = Field(pattern=_TOKEN)
    type: str = Field(pattern=r"^[a-z_]{1,64}$")
    at: str = Field(pattern=_TOKEN)
    payload: dict[str, Any]
    prev_hash: str = Field(pattern=HEX64)
    hash: str = Field(pattern=HEX64)


class EventBatch(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    device_id: str = Field(pattern=f"^{DEVICE_ID_PATTERN}$")
    log_id: str = Field(pattern=_LOG_ID)
    events: list[Event] = Field(max_length=MAX_BATCH_EVENTS)


class Acked(BaseModel):
    acked_seq: int


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


class IngestSlots:
    """Uploads being stored at once; beyond ``limit`` the hub sheds load with 429. Only the event loop's
    thread touches it."""

    def __init__(self, limit: int = MAX_INGESTS_IN_FLIGHT):
        self.limit, self.used = limit, 0


@router.post(
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
async def post_events(request: Request, store: Store) -> dict[str, int]:
    claim, secret = await claimed_device_off_loop(request)  # a stranger's body is never read
    body = await read_body(request, MAX_BODY_BYTES)
    device_id = verified_device(request, claim, secret, body)
    log_id, events = _parse_batch(body, device_id)
    slots: IngestSlots = request.app.state.ingest_slots
    if slots.used >= slots.limit:
        raise HubError(429, "busy", headers={"Retry-After": str(RETRY_AFTER_S)})
    slots.used += 1
    try:
        result = await run_in_threadpool(store.ingest, device_id, log_id, events)
    finally:
        slots.used -= 1
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


@router.get("/api/v1/devices/{device_id}/roster", openapi_extra=_DEVICE_AUTH)
def get_roster(
    device_id: str, caller: Device, store: Store, if_none_match: Annotated[str | None, Header()] = None
) -> Response:
    if caller != device_id:
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


@router.get("/api/v1/photos/{sha256}", openapi_extra=_DEVICE_AUTH)
def get_photo(sha256: str, caller: Device, store: Store) -> Response:
    """A photo of the asking device's own roster; any other is not found, as if it did not exist."""
    own = {s["photo_sha256"] for s in store.roster_for(caller).staff}
    found = store.photo(sha256) if re.fullmatch(HEX64, sha256) and sha256 in own else None
    if found is None:
        if sha256 not in own:
            log.warning("device %s refused: photo not in its roster", caller)
        raise HubError(404, "not_found")
    data, media_type = found
    return Response(
        data, media_type=media_type, headers={"Cache-Control": "private, max-age=31536000, immutable"}
    )

"""The management API for other systems and the acceptance checks: the 差评 台账, its actions, the
contact reveal for 回访 and the audit of reveals (docs/console.md). Users authenticate with their own
token (``Authorization: Bearer TOKEN``); a dept user sees only its own section, everywhere."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from core.contact import ContactError, open_contact

from ..dependencies import AuditReader, Desk, ItemReader, Store, read_body, scoped_dept
from ..desk import workflow as wf
from ..desk.calendar import CalendarGap
from ..desk.store import ItemFilter, NotFound
from ..errors import HubError

router = APIRouter(prefix="/api/v1/manage", tags=["manage"])

MAX_ACTION_BYTES = 16 * 1024
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
Day = Annotated[str | None, Query(pattern=_DAY.pattern)]


def item_json(item: dict[str, Any]) -> dict[str, Any]:
    """An item in the API's field names (contracts: the national names where they exist)."""
    return {
        "id": item["id"],
        "projectNo": item["case_no"],
        "satisfaction": item["satisfaction"],
        "correctedFrom": item.get("corrected_from"),  # the level before the rater corrected it, or None
        "assessTime": item["assess_time"],
        "dept": item["dept"],
        "window": item["window"],
        "staffNo": item["staff_no"],
        "staffName": item["staff_name"],
        "taskCode": item["item_code"],
        "taskName": item["item_name"],
        "ticketNo": item["ticket_no"],
        "deviceId": item["device_id"],
        "channel": item["channel"],
        "reasons": item["reasons"],
        "hasContact": item["has_contact"],
        "received": item["received"],
        "deadline": item["deadline"],
        "daysLeft": item["days_left"],
        "calendarError": item["calendar_gap"],
        "status": item["status"],
        "overdue": item["overdue"],
        "history": [history_json(h) for h in item.get("history", [])],
    }


CSV_FIELDS = (
    "id",
    "projectNo",
    "satisfaction",
    "correctedFrom",  # the level first given when the rater corrected it on the kiosk (改评价); empty otherwise
    "assessTime",
    "dept",
    "window",
    "staffNo",
    "staffName",
    "taskCode",
    "taskName",
    "ticketNo",
    "deviceId",
    "channel",
    "reasons",
    "received",
    "deadline",
    "daysLeft",
    "status",
    "overdue",
)
MAX_EXPORT_ITEMS = 100_000


def items_csv(rows: list[dict[str, Any]]) -> str:
    """The 台账 as CSV with a BOM (Excel on a Chinese Windows reads UTF-8 as GBK without it); no history,
    no phone numbers."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.DictWriter(out, CSV_FIELDS, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        record = item_json(row)
        writer.writerow({**record, "reasons": ",".join(record["reasons"]), "overdue": int(record["overdue"])})
    return out.getvalue()


def history_json(h: dict[str, Any]) -> dict[str, Any]:
    return {
        "seq": h["seq"],
        "at": h["at"],
        "user": h["user"],
        "role": h["role"],
        "action": h["action"],
        **h["payload"],
    }


def _scoped(call):
    """NotFound → 404, out of scope → 403, a refused action → its status."""
    try:
        return call()
    except NotFound:
        raise HubError(404, "not_found") from None
    except PermissionError:
        raise HubError(403, "forbidden", detail="the item belongs to another section") from None
    except wf.Refused as e:
        raise HubError(e.status, e.error, detail=e.detail) from None


@router.get("/bad-ratings", responses={200: {"content": {"text/csv": {}}}, 401: {}, 403: {}})
def list_bad_ratings(
    desk: Desk,
    user: ItemReader,
    status: Literal["open", "called", "rectified", "closed", "review", "not_adopted", "withdrawn"]
    | None = None,
    dept: Annotated[str | None, Query(max_length=32)] = None,
    from_: Annotated[str | None, Query(alias="from", pattern=_DAY.pattern)] = None,
    to: Day = None,
    overdue: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    format: Literal["json", "csv"] = "json",
) -> Response:
    f = ItemFilter(status, scoped_dept(user, dept), overdue, from_, to)
    if format == "csv":  # every matching item (up to MAX_EXPORT_ITEMS), in the user's scope
        limit, offset = MAX_EXPORT_ITEMS, 0
    try:
        page, total = desk.list_items(user, f, limit, offset)
    except CalendarGap as e:
        raise HubError(503, "calendar_unknown", detail=str(e)) from None
    if format == "csv":
        return PlainTextResponse(
            items_csv(page),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": 'attachment; filename="bad-ratings.csv"',
                "X-Item-Count": str(total),
            },
        )
    histories = desk.histories([i["id"] for i in page])
    body = [item_json({**i, "history": histories.get(i["id"], [])}) for i in page]
    return JSONResponse({"count": total, "limit": limit, "offset": offset, "items": body})


@router.get("/bad-ratings/{item_id}", responses={401: {}, 403: {}, 404: {}})
def get_bad_rating(item_id: int, desk: Desk, user: ItemReader) -> dict[str, Any]:
    return item_json(_scoped(lambda: desk.item(user, item_id)))


@router.post(
    "/bad-ratings/{item_id}/actions",
    responses={401: {}, 403: {}, 404: {}, 409: {}, 422: {}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["action"],
                        "properties": {
                            "action": {"type": "string", "enum": list(wf.ACTIONS)},
                            "note": {"type": "string"},
                            "reached": {"type": "boolean"},
                            "adopt": {"type": "boolean"},
                        },
                    }
                }
            },
        }
    },
)
async def post_action(item_id: int, request: Request, desk: Desk, user: ItemReader) -> dict[str, Any]:
    body = await read_body(request, MAX_ACTION_BYTES)
    try:
        fields = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeError):
        raise HubError(400, "malformed", detail="expected a JSON object") from None
    if not isinstance(fields, dict) or not isinstance(fields.get("action"), str):
        raise HubError(422, "bad_action", detail=f"action must be one of {', '.join(wf.ACTIONS)}")
    item = await run_in_threadpool(_scoped, lambda: desk.act(user, item_id, fields["action"], fields))
    return item_json(item)


@router.get("/contact/{item_id}", responses={401: {}, 403: {}, 404: {}})
def get_contact(item_id: int, desk: Desk, store: Store, user: ItemReader) -> dict[str, Any]:
    phone = _scoped(lambda: desk.reveal_contact(user, item_id, contact_opener(store)))
    return {"id": item_id, "phone": phone}


@router.get("/audit", responses={401: {}, 403: {}})
def get_audit(desk: Desk, user: AuditReader) -> dict[str, Any]:
    return {"reveals": desk.audit()}


def contact_opener(store):
    def opener(sealed: str) -> str | None:
        try:
            return open_contact(sealed, store.private_key)
        except ContactError:
            return None

    return opener

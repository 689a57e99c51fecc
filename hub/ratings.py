"""Ratings as the central system wants them: rows of the hub's derived table, built from rating and
rating_detail events, and their export record in the national field names (domain.md).

``satisfaction`` keeps the operational order (5 = 非常满意); ``satisfactionCode`` beside it is the
GB/T 39046-2020 code (1 = 非常满意). ``pf`` is 4, the window evaluator. A rating without a case number
is exported with ``linked`` false and counted, never dropped. No I/O here.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from kiosk.domain import PF_HALL_EVALUATOR, check_satisfaction, to_gbt39046
from kiosk.events import EventError, check_payload

# National names first (Zhejiang-style operational interface), then this hub's own columns.
EXPORT_FIELDS = (
    "projectNo",
    "taskCode",
    "taskName",
    "pf",
    "satisfaction",
    "satisfactionCode",
    "evalDetail",
    "assessTime",
    "areaCode",
    "deptCode",
    "windowNo",
    "staffNo",
    "staffName",
    "ticketNo",
    "deviceId",
    "linked",
    "contact",
    "logId",
    "seq",
)

_TEXT_FIELDS = ("window", "staff_no", "staff_name", "ticket_no", "case_no", "item_code", "item_name", "input")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _clean_text(value: Any) -> bool:
    # PostgreSQL text cannot hold NUL; such a value is not a usable field anyway.
    return value is None or (isinstance(value, str) and "\x00" not in value)


def assess_time(at: str) -> str:
    """The event's own local time as ``yyyy-MM-dd HH:mm:ss`` (assessTime); ValueError if unreadable."""
    return datetime.fromisoformat(at).strftime("%Y-%m-%d %H:%M:%S")


def rating_row(event: dict[str, Any]) -> dict[str, Any] | None:
    """The derived-table row of a rating event, or None when its payload cannot be one."""
    payload = event["payload"]
    try:
        check_payload("rating", payload)
        check_satisfaction(payload["satisfaction"])
        assessed = assess_time(event["at"])
    except (EventError, ValueError):
        return None
    if not all(_clean_text(payload[f]) for f in _TEXT_FIELDS):
        return None
    return {
        "seq": event["seq"],
        **{f: payload[f] for f in _TEXT_FIELDS},
        "satisfaction": payload["satisfaction"],
        "at": event["at"],
        "assess_time": assessed,
        "reasons": None,
        "contact_sealed": None,
    }


def detail_values(event: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """(rating seq, column values) of a rating_detail event, or None when its payload cannot be one."""
    payload = event["payload"]
    try:
        check_payload("rating_detail", payload)
    except EventError:
        return None
    rating_seq, reasons, sealed = payload["rating_seq"], payload["reasons"], payload["contact_sealed"]
    if type(rating_seq) is not int or not isinstance(reasons, list) or not _clean_text(sealed):
        return None
    if not all(isinstance(r, str) and _clean_text(r) and "," not in r for r in reasons):
        return None
    return rating_seq, {"reasons": ",".join(reasons), "contact_sealed": sealed}


def export_record(row: dict[str, Any], open_contact: Callable[[str], str | None]) -> dict[str, Any]:
    """One rating in the national field names; ``open_contact`` opens a sealed phone (None if it cannot)."""
    sealed = row["contact_sealed"]
    return {
        "projectNo": row["case_no"],
        "taskCode": row["item_code"],
        "taskName": row["item_name"],
        "pf": PF_HALL_EVALUATOR,
        "satisfaction": row["satisfaction"],
        "satisfactionCode": to_gbt39046(row["satisfaction"]),
        "evalDetail": row["reasons"] or "",
        "assessTime": row["assess_time"],
        "areaCode": row["area_code"] or "",
        "deptCode": row["dept_code"] or "",
        "windowNo": row["window"],
        "staffNo": row["staff_no"],
        "staffName": row["staff_name"],
        "ticketNo": row["ticket_no"],
        "deviceId": row["device_id"],
        "linked": bool(row["case_no"]),
        "contact": open_contact(sealed) if sealed else None,
        "logId": row["log_id"],
        "seq": row["seq"],
    }


def time_bound(text: str, *, end: bool) -> str:
    """A ``from``/``to`` query value as an inclusive assessTime bound; a bare day covers the whole day."""
    text = text.strip()
    if _DAY.fullmatch(text):
        datetime.strptime(text, "%Y-%m-%d")  # ValueError for 2026-13-45
        return text + (" 23:59:59" if end else " 00:00:00")
    return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M:%S")


def to_csv(records: Iterable[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, EXPORT_FIELDS, lineterminator="\r\n")
    writer.writeheader()
    for record in records:
        writer.writerow({**record, "linked": int(record["linked"])})
    return out.getvalue()

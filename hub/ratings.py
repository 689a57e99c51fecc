"""Ratings as the central system wants them: rows of the hub's derived table, built from rating and
rating_detail events, and their export record in the national field names (docs/protocol.md §3).

``satisfaction`` keeps the operational order (5 = 非常满意); ``satisfactionCode`` beside it is the
GB/T 39046-2020 code (1 = 非常满意). ``pf`` is 4 for the window evaluator and 3 for the QR code page
on a phone. A rating without a case number is exported with ``linked`` false, and a terminal rating of
a case already rated by phone with ``duplicate`` true; both are counted, never dropped. No I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from core.domain import check_satisfaction, is_bad, to_gbt39046
from core.events import EventError, check_payload
from core.qrtoken import TokenClaims


@dataclass(frozen=True)
class ExportField:
    """A field of the export record: its national name, how it is written (``text``: a string or null,
    a spreadsheet-safe cell in CSV; ``number``; ``flag``: JSON true/false, CSV 1/0), the column of the
    export's query it comes from, and the rule from column to value. ``hub.export_stream`` writes the
    same record from this table in SQL on PostgreSQL; ``export_record`` is its Python reading."""

    name: str
    kind: Literal["text", "number", "flag"]
    column: str
    rule: Literal["as_is", "gbt39046", "or_empty", "nonempty", "opened"] = "as_is"


# National names first (Zhejiang-style operational interface), then this hub's own columns.
EXPORT_RECORD = (
    ExportField("projectNo", "text", "case_no"),
    ExportField("taskCode", "text", "item_code"),
    ExportField("taskName", "text", "item_name"),
    ExportField("pf", "number", "pf"),
    ExportField("satisfaction", "number", "satisfaction"),
    ExportField("satisfactionCode", "number", "satisfaction", "gbt39046"),
    ExportField("evalDetail", "text", "reasons", "or_empty"),
    ExportField("assessTime", "text", "assess_time"),
    ExportField("areaCode", "text", "area_code", "or_empty"),
    ExportField("deptCode", "text", "dept_code", "or_empty"),
    ExportField("windowNo", "text", "window"),
    ExportField("staffNo", "text", "staff_no"),
    ExportField("staffName", "text", "staff_name"),
    ExportField("ticketNo", "text", "ticket_no"),
    ExportField("deviceId", "text", "device_id"),
    ExportField("linked", "flag", "case_no", "nonempty"),
    ExportField("duplicate", "flag", "duplicate"),
    ExportField("contact", "text", "contact_sealed", "opened"),  # the only field the database cannot write
    ExportField("logId", "text", "log_id"),
    ExportField("seq", "number", "seq"),
    ExportField("qrNonce", "text", "qr_nonce"),
    # The level first given when the rater corrected it on the kiosk (改评价); null otherwise.
    ExportField("correctedFrom", "number", "corrected_from"),
)
EXPORT_FIELDS = tuple(field.name for field in EXPORT_RECORD)

_TEXT_FIELDS = ("window", "staff_no", "staff_name", "ticket_no", "case_no", "item_code", "item_name", "input")
MAX_SEQ = 2**53  # the largest seq the hub takes: the largest integer JSON numbers hold exactly
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
        "corrected_from": None,
    }


def detail_values(event: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """(rating seq, column values) of a rating_detail event, or None when its payload cannot be one."""
    payload = event["payload"]
    try:
        check_payload("rating_detail", payload)
    except EventError:
        return None
    rating_seq, reasons, sealed = payload["rating_seq"], payload["reasons"], payload["contact_sealed"]
    if not _earlier(rating_seq, event) or not isinstance(reasons, list):
        return None
    if not _clean_text(sealed):
        return None
    if not all(isinstance(r, str) and _clean_text(r) and "," not in r for r in reasons):
        return None
    return rating_seq, {"reasons": ",".join(reasons), "contact_sealed": sealed}


def correction_values(event: dict[str, Any]) -> tuple[int, int] | None:
    """(rating seq, corrected level) of a rating_corrected event, or None when its payload cannot be one."""
    payload = event["payload"]
    try:
        check_payload("rating_corrected", payload)
        check_satisfaction(payload["satisfaction"])
    except (EventError, ValueError):
        return None
    rating_seq = payload["rating_seq"]
    if not _earlier(rating_seq, event):
        return None
    return rating_seq, payload["satisfaction"]


def _earlier(rating_seq: Any, event: dict[str, Any]) -> bool:
    """Whether ``rating_seq`` can name a rating of ``event``'s log: a seq before the event's own. A
    detail or correction naming a later seq names nothing (the log is read in order: ``derive_ratings``
    has no such row yet), whatever the upload batches; the ingest must not apply it either."""
    return type(rating_seq) is int and 1 <= rating_seq < min(event["seq"], MAX_SEQ + 1)


def correctable(row: dict[str, Any]) -> bool:
    """Whether a ratings row takes a correction now: a 差评 (as first given) still waiting for its
    rating_detail. The kiosk corrects only then (docs/flow.md), and only the log's newest rating (every
    reader checks that too: ``derive_ratings``, the ingest, the figures' fold); anything else is stored,
    not applied."""
    original = row["corrected_from"] if row["corrected_from"] is not None else row["satisfaction"]
    return row["reasons"] is None and is_bad(original)


def corrected(row: dict[str, Any], satisfaction: int) -> dict[str, Any]:
    """The column values of ``row`` after a correction to ``satisfaction`` (``row`` correctable)."""
    first = row["corrected_from"] if row["corrected_from"] is not None else row["satisfaction"]
    return {"satisfaction": satisfaction, "corrected_from": first}


def case_text(case: dict[str, Any] | None, key: str) -> str | None:
    """A text field of a case_opened payload, or None when it is absent or not usable text."""
    value = case.get(key) if case else None
    return value if isinstance(value, str) and _clean_text(value) else None


def phone_rating_row(
    claims: TokenClaims,
    satisfaction: int,
    reasons: Sequence[str],
    contact_sealed: str | None,
    opened_case: dict[str, Any] | None,
    staff_name: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The phone_ratings row of a rating made on the QR code page at ``now`` (an aware hub-local time).

    The token names the device, window, staff and case; the case's ticket and item name come from its
    case_opened event when the kiosk has uploaded it.
    """
    return {
        "device_id": claims.device_id,
        "nonce": claims.nonce,
        "window": claims.window,
        "staff_no": claims.staff_no,
        "staff_name": staff_name,
        "ticket_no": case_text(opened_case, "ticket_no"),
        "case_no": claims.case_no,
        "item_code": claims.item_code,
        "item_name": case_text(opened_case, "item_name"),
        "satisfaction": check_satisfaction(satisfaction),
        "reasons": ",".join(reasons) or None,
        "contact_sealed": contact_sealed,
        "issued_at": claims.issued_at,
        "at": now.astimezone(UTC).isoformat(timespec="seconds"),
        "assess_time": now.strftime("%Y-%m-%d %H:%M:%S"),
    }


_RULES: dict[str, Callable[[Any], Any]] = {
    "as_is": lambda value: value,
    "gbt39046": to_gbt39046,
    "or_empty": lambda value: value or "",
    "nonempty": bool,
}


def export_record(row: dict[str, Any], open_contact: Callable[[str], str | None]) -> dict[str, Any]:
    """One terminal or phone rating (a row of hub.export_stream.export_queries, with the device's codes)
    in the national field names, by ``EXPORT_RECORD``; ``open_contact`` opens a sealed phone (None if
    it cannot)."""
    return {
        field.name: (
            (open_contact(row[field.column]) if row[field.column] else None)
            if field.rule == "opened"
            else _RULES[field.rule](row[field.column])
        )
        for field in EXPORT_RECORD
    }


def time_bound(text: str, *, end: bool) -> str:
    """A ``from``/``to`` query value as an inclusive assessTime bound; a bare day covers the whole day."""
    text = text.strip()
    if _DAY.fullmatch(text):
        datetime.strptime(text, "%Y-%m-%d")  # ValueError for 2026-13-45
        return text + (" 23:59:59" if end else " 00:00:00")
    return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M:%S")

"""What an event of the local log is: its types, payload fields, canonical form and hash chain.

Shared by the kiosk (which writes events), the sync agent (which sends them) and the hub (which checks
them), so there is one definition of the hash (docs/protocol.md §1). No I/O here.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

ZERO_HASH = "0" * 64

# Every payload carries exactly these keys; an absent value is None, never a missing key.
PAYLOAD_FIELDS: dict[str, tuple[str, ...]] = {
    "staff_signin": ("staff_no", "staff_name"),
    "staff_signout": ("staff_no",),
    "case_opened": ("ticket_no", "case_no", "item_code", "item_name", "source"),
    "rating": (
        "case_seq",
        "staff_no",
        "staff_name",
        "window",
        "ticket_no",
        "case_no",
        "item_code",
        "item_name",
        "satisfaction",
        "input",
    ),
    "rating_detail": ("rating_seq", "reasons", "contact_sealed"),
    "rating_skipped": ("case_seq", "why"),
    # A 差评 changed by the citizen on its reasons page, before its rating_detail (docs/flow.md).
    "rating_corrected": ("rating_seq", "satisfaction", "input"),
    # Beyond docs/protocol.md §1: what the flow must know again after a restart (docs/flow.md).
    "ticket_called": ("ticket_no",),
    "window_paused": (),
    "window_resumed": (),
}

CASE_SOURCES = ("scanner", "queue", "walkin")
RATING_INPUTS = ("touch", "keypad")

EVENT_KEYS = ("log_id", "seq", "id", "type", "at", "payload", "prev_hash", "hash")


class EventError(ValueError):
    """A payload or event that does not match its schema."""


def check_payload(type_: str, payload: dict[str, Any]) -> None:
    """Raise EventError unless ``payload`` has exactly the keys its type names."""
    try:
        fields = PAYLOAD_FIELDS[type_]
    except KeyError:
        raise EventError(f"unknown event type {type_!r}") from None
    if not isinstance(payload, dict):
        raise EventError(f"{type_}: payload must be an object")
    missing = [f for f in fields if f not in payload]
    extra = [k for k in payload if k not in fields]
    if missing or extra:
        raise EventError(f"{type_}: missing keys {missing}, unexpected keys {extra}")


def canonical_json(obj: Any) -> bytes:
    """The byte form that hashes are computed over (docs/protocol.md §1)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def event_hash(event: dict[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON of ``event`` without its ``hash`` key."""
    body = {k: v for k, v in event.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def chain_error(event: dict[str, Any], prev_hash: str, expected_seq: int) -> str | None:
    """Why ``event`` cannot follow an event whose hash is ``prev_hash``; None if it can."""
    if set(event) != set(EVENT_KEYS):
        return "bad_shape"
    if event["seq"] != expected_seq:
        return "bad_seq"
    if event["prev_hash"] != prev_hash:
        return "bad_link"
    if event_hash(event) != event["hash"]:
        return "bad_hash"
    return None

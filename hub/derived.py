"""Tables the hub derives from what it receives, and the rules that derive them, written once: ingest
applies them as events arrive, ``kiosk hub verify`` applies them again to every stored event and
compares (docs/security.md).

- ``ratings``: from rating, rating_corrected and rating_detail events (the rules are in hub/ratings.py);
- ``opened_cases``: the case_opened events by (device, case number), so the phone page finds a token's
  case through an index instead of a substring scan over every event;
- the phone ratings' own hash chain: each phone_ratings row carries ``chain_seq``, ``prev_hash`` and
  ``hash`` (SHA-256 of the row's canonical JSON without ``hash``), like a kiosk's log.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import BigInteger, Column, Index, String, Table, Text

from core.events import ZERO_HASH, canonical_json

from .ratings import correctable, corrected, correction_values, detail_values, rating_row
from .schema import metadata

opened_cases = Table(
    "opened_cases",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("log_id", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("case_no", String(64), nullable=False),
    Column("payload", Text, nullable=False),  # canonical JSON of the event's payload
    Column("received_at", String(40), nullable=False),
    Index("opened_cases_device_case", "device_id", "case_no"),
)

MAX_CASE_NO_CHARS = 64  # a longer case number cannot be in a QR token, so no phone asks for it
PHONE_CHAIN_COLUMNS = ("chain_seq", "prev_hash", "hash")


def event_row(device_id: str, log_id: str, event: Mapping[str, Any], now: str) -> dict[str, Any]:
    """The ``events`` row of one uploaded event as the hub stores it (both ingest paths)."""
    return {
        "device_id": device_id,
        "log_id": log_id,
        "seq": event["seq"],
        "id": event["id"],
        "type": event["type"],
        "at": event["at"],
        "payload": canonical_json(event["payload"]).decode("utf-8"),
        "prev_hash": event["prev_hash"],
        "hash": event["hash"],
        "received_at": now,
    }


def opened_case_row(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The opened_cases row of a case_opened event (without device, log and received_at), or None."""
    payload = event["payload"]
    case_no = payload.get("case_no") if isinstance(payload, dict) else None
    if event["type"] != "case_opened" or not isinstance(case_no, str) or not case_no:
        return None
    if len(case_no) > MAX_CASE_NO_CHARS or "\x00" in case_no:
        return None  # PostgreSQL text cannot hold a NUL, and no phone can ask for such a case
    return {"seq": event["seq"], "case_no": case_no, "payload": canonical_json(payload).decode("utf-8")}


def derive_ratings(events: Iterable[Mapping[str, Any]]) -> dict[int, dict[str, Any]]:
    """The ratings rows of one log's events (in seq order), by seq: what ingest has built batch by batch."""
    rows: dict[int, dict[str, Any]] = {}
    latest: int | None = None  # the log's newest rating so far: the only one a correction may name
    for event in events:
        if event["type"] == "rating":
            row = rating_row(dict(event))
            if row is not None:
                rows[row["seq"]] = row
                latest = row["seq"]
        elif event["type"] == "rating_corrected":
            correction = correction_values(dict(event))
            row = rows.get(correction[0]) if correction is not None and correction[0] == latest else None
            if correction is not None and row is not None and correctable(row):
                row.update(corrected(row, correction[1]))
        elif event["type"] == "rating_detail":
            found = detail_values(dict(event))
            if found is not None and found[0] in rows:
                rows[found[0]].update(found[1])
    return rows


def derive_opened_cases(events: Iterable[Mapping[str, Any]]) -> dict[int, dict[str, Any]]:
    rows = (opened_case_row(e) for e in events)
    return {row["seq"]: row for row in rows if row is not None}


def phone_row_hash(row: Mapping[str, Any]) -> str:
    """The hash of a phone_ratings row: SHA-256 of its canonical JSON without ``hash``."""
    return hashlib.sha256(canonical_json({k: v for k, v in row.items() if k != "hash"})).hexdigest()


def chain_phone_row(row: dict[str, Any], head: tuple[int, str] | None) -> dict[str, Any]:
    """``row`` linked after ``head`` ((chain_seq, hash) of the newest row, or None for the first)."""
    seq, prev = head if head is not None else (0, ZERO_HASH)
    linked = {**row, "chain_seq": seq + 1, "prev_hash": prev}
    return {**linked, "hash": phone_row_hash(linked)}


def payload_of(text: str) -> Any:
    return json.loads(text)

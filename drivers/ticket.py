"""The ticket/case feed protocol (docs/hardware.md): one message a line from the queue system or a scanner.

A line starting with ``{`` is a JSON message (call, rate, pause, resume); any other line is a scanned
case number, taken as a rate request. Lines end in CR, LF, CRLF or TAB (scanners' configurable suffix),
are at most 1024 bytes, and are decoded as UTF-8 or GB18030 per config. Every field is checked, its
length in UTF-8 bytes: case number and item code go into the rate page's QR token, which holds 64 bytes
a field (core.qrtoken.MAX_FIELD_BYTES), so a case the feed accepts always gets its QR code. A line that
fails is one BadFrame whose reason names the problem but never quotes the line (it may identify a
citizen). Pure: bytes in, outcomes out.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any, Literal, overload

from core.qrtoken import MAX_FIELD_BYTES as QR_FIELD_BYTES

from .events import BadFrame, Outcome, RateRequested, TicketCalled, WindowPaused, WindowResumed
from .framing import LineProtocol

ENCODINGS = ("utf-8", "gb18030")
# Field -> longest accepted value in UTF-8 bytes. Codes and numbers are single words; names may have
# spaces. case_no and item_code: the QR token's field size. item_name is not in the token: 200 Chinese
# characters.
_WORD_FIELDS = {"ticket": 32, "case_no": QR_FIELD_BYTES, "item_code": QR_FIELD_BYTES}
_TEXT_FIELDS = {"item_name": 600}


class Invalid(Exception):
    """A message that is not acceptable; the text is the BadFrame reason."""


def _printable(value: str) -> bool:
    """No control, format or unassigned characters (Unicode category C); spaces are allowed."""
    return not any(unicodedata.category(c)[0] == "C" for c in value)


def _fits(value: str, max_bytes: int) -> bool:
    # Printable first: a lone surrogate (JSON "\\ud800", category Cs) cannot be encoded to UTF-8.
    return _printable(value) and 0 < len(value.encode("utf-8")) <= max_bytes


def _word(value: str, field: str) -> str:
    if not _fits(value, _WORD_FIELDS[field]) or any(c.isspace() for c in value):
        raise Invalid(f"{field} is not 1-{_WORD_FIELDS[field]} UTF-8 bytes of printable text without spaces")
    return value


@overload
def _field(message: dict[str, Any], field: str, *, required: Literal[True]) -> str: ...
@overload
def _field(message: dict[str, Any], field: str, *, required: bool) -> str | None: ...
def _field(message: dict[str, Any], field: str, *, required: bool) -> str | None:
    value = message.get(field)
    if value is not None and not isinstance(value, str):
        raise Invalid(f"{field} is not a string")
    value = (value or "").strip()
    if not value:
        if required:
            raise Invalid(f"{field} missing")
        return None
    if field in _TEXT_FIELDS:
        if not _fits(value, _TEXT_FIELDS[field]):
            raise Invalid(f"{field} is not 1-{_TEXT_FIELDS[field]} UTF-8 bytes of printable text")
        return value
    return _word(value, field)


def _message(text: str) -> Outcome:
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise Invalid("malformed JSON") from None
    if not isinstance(message, dict):
        raise Invalid("JSON message is not an object")
    event = message.get("event")
    if event == "call":
        return TicketCalled(_field(message, "ticket", required=True))
    if event == "rate":
        return RateRequested(
            ticket=_field(message, "ticket", required=False),
            case_no=_field(message, "case_no", required=True),
            item_code=_field(message, "item_code", required=False),
            item_name=_field(message, "item_name", required=False),
            source="queue",
        )
    if event == "pause":
        return WindowPaused()
    if event == "resume":
        return WindowResumed()
    raise Invalid("unknown event" if isinstance(event, str) else "event missing")


def parse_message(text: str) -> Outcome:
    """One decoded line as an event, or the BadFrame saying why not."""
    text = text.lstrip("\ufeff").strip()
    try:
        if text.startswith("{"):
            return _message(text)
        case_no = _word(text, "case_no")
    except Invalid as e:
        return BadFrame(str(e))
    return RateRequested(ticket=None, case_no=case_no, item_code=None, item_name=None, source="scanner")


class TicketParser(LineProtocol):
    terminators = b"\r\n\t"

    def __init__(self, encoding: str = "utf-8"):
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}")
        self._encoding = encoding
        super().__init__()

    def parse_line(self, line: bytes, now: float) -> Outcome | None:
        try:
            text = line.decode(self._encoding)
        except UnicodeDecodeError:
            return BadFrame(f"not {self._encoding} text")
        return parse_message(text) if text.strip() else None

"""What the devices tell the kiosk: one small immutable event per meaningful frame (docs/hardware.md)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CardSwiped:
    card: str  # card number text as read (10-hex EM4100 data, or the line a text reader sent)


@dataclass(frozen=True)
class TicketCalled:
    ticket: str


@dataclass(frozen=True)
class RateRequested:
    ticket: str | None
    case_no: str | None
    item_code: str | None
    item_name: str | None
    source: str  # "queue" (JSON rate message) or "scanner" (bare scanned code)


@dataclass(frozen=True)
class WindowPaused:
    pass


@dataclass(frozen=True)
class WindowResumed:
    pass


@dataclass(frozen=True)
class KeyPressed:
    satisfaction: int  # 1..5, 5 = 非常满意


DeviceEvent = CardSwiped | TicketCalled | RateRequested | WindowPaused | WindowResumed | KeyPressed


@dataclass(frozen=True)
class BadFrame:
    """A frame a parser rejected. ``reason`` is fixed text and never quotes the bytes (they may be personal)."""

    reason: str


Outcome = DeviceEvent | BadFrame

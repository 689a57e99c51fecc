"""The devices a terminal has, as the kiosk sees them: events on a callback, keypad answers, a status list.

``Devices`` wires each fitted ``[serial.X]`` device to a ``Port`` and the parser for its protocol, counts
good and bad frames, logs bad ones without their content (rate-limited, they may come by the thousand
from a loose cable) and calls ``on_event`` on the reader threads; the kiosk bridges that into Qt. Each
time a port (re)connects, its parser drops what it had half received, so nothing from before an unplug
is glued to what comes after.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from core.config import SerialConfig

from . import keypad
from .card import REPEAT_HOLD_S, CardLineParser, Em4100Parser
from .events import (
    BadFrame,
    CardSwiped,
    DeviceEvent,
    KeyPressed,
    Outcome,
    RateRequested,
    TicketCalled,
    WindowPaused,
    WindowResumed,
)
from .port import Port
from .ticket import TicketParser

__all__ = [
    "CardSwiped",
    "DeviceEvent",
    "DeviceStatus",
    "Devices",
    "KeyPressed",
    "RateRequested",
    "TicketCalled",
    "WindowPaused",
    "WindowResumed",
]

log = logging.getLogger(__name__)

DEVICE_NAMES = ("card", "ticket", "keypad")
BAD_FRAME_LOG_INTERVAL_S = 10.0


@dataclass(frozen=True)
class DeviceStatus:
    name: str  # "card" | "ticket" | "keypad"
    port: str
    state: str  # "connected" | "waiting" (device absent, retrying) | "error"
    detail: str  # human text for the admin panel / doctor, e.g. last error
    frames: int
    bad_frames: int
    reconnects: int
    last_frame_at: float | None  # time.time() of the last good frame


class Parser(Protocol):
    def feed(self, data: bytes, now: float) -> list[Outcome]: ...

    def reset(self) -> list[Outcome]: ...


def make_parser(config: SerialConfig, *, card_repeat_hold_s: float, key_bounce_s: float) -> Parser:
    if config.name == "card":
        parse = Em4100Parser if config.protocol == "em4100" else CardLineParser
        return parse(card_repeat_hold_s)
    if config.name == "ticket":
        return TicketParser(config.encoding)
    if config.name == "keypad":
        return keypad.KeypadParser(key_bounce_s)
    raise ValueError(f"unknown serial device {config.name!r}")


class _Channel:
    """One device: its port, its parser and its counters. Only the port's reader thread feeds the parser."""

    def __init__(
        self,
        config: SerialConfig,
        parser: Parser,
        on_event: Callable[[DeviceEvent], None],
        clock: Callable[[], float],
        bad_frame_log_interval_s: float,
    ):
        self.config = config
        self._parser = parser
        self._on_event = on_event
        self._clock = clock
        self._log_interval = bad_frame_log_interval_s
        self.port = Port(config.name, config.port, config.baudrate, self._on_data, self._on_connect)
        self.frames = self.bad_frames = 0
        self.last_frame_at: float | None = None
        self.last_bad_reason: str | None = None
        self._unlogged_bad = 0
        self._bad_logged_at = -math.inf

    def _on_connect(self) -> None:
        dropped = self._parser.reset()
        if dropped:
            self._handle(dropped, self._clock())

    def _on_data(self, data: bytes) -> None:
        now = self._clock()
        self._handle(self._parser.feed(data, now), now)

    def _handle(self, outcomes: list[Outcome], now: float) -> None:
        for outcome in outcomes:
            if isinstance(outcome, BadFrame):
                self._bad(outcome.reason, now)
                continue
            self.frames += 1
            self.last_frame_at = time.time()
            try:
                self._on_event(outcome)
            except Exception:
                log.exception("%s: event handler failed", self.config.name)

    def _bad(self, reason: str, now: float) -> None:
        self.bad_frames += 1
        self.last_bad_reason = reason
        if now - self._bad_logged_at < self._log_interval:
            self._unlogged_bad += 1
            return
        more = f" (+{self._unlogged_bad} more since the last report)" if self._unlogged_bad else ""
        log.warning("%s: bad frame: %s%s; %d bad so far", self.config.name, reason, more, self.bad_frames)
        self._bad_logged_at, self._unlogged_bad = now, 0

    def status(self) -> DeviceStatus:
        port = self.port
        detail = port.detail
        if not detail and self.last_bad_reason:
            detail = f"last bad frame: {self.last_bad_reason}"
        return DeviceStatus(
            name=self.config.name,
            port=self.config.port,
            state=port.state,
            detail=detail,
            frames=self.frames,
            bad_frames=self.bad_frames,
            reconnects=port.reconnects,
            last_frame_at=self.last_frame_at,
        )


class Devices:
    def __init__(
        self,
        serial: Mapping[str, SerialConfig],
        on_event: Callable[[DeviceEvent], None],
        *,
        clock: Callable[[], float] = time.monotonic,
        card_repeat_hold_s: float = REPEAT_HOLD_S,
        key_bounce_s: float = keypad.BOUNCE_S,
        bad_frame_log_interval_s: float = BAD_FRAME_LOG_INTERVAL_S,
    ):
        self._channels = {
            name: _Channel(
                serial[name],
                make_parser(serial[name], card_repeat_hold_s=card_repeat_hold_s, key_bounce_s=key_bounce_s),
                on_event,
                clock,
                bad_frame_log_interval_s,
            )
            for name in DEVICE_NAMES
            if name in serial
        }

    def start(self) -> None:
        """Opens every fitted device on its own thread; never raises for absent devices."""
        for channel in self._channels.values():
            channel.port.start()

    def stop(self) -> None:
        for channel in self._channels.values():
            channel.port.stop()

    def answer_keypad(self, satisfaction: int | None) -> None:
        """Writes ``OK<d>\\r\\n`` (rating stored) or ``NO\\r\\n`` (``None``: not taken); no-op without a keypad."""
        channel = self._channels.get("keypad")
        if channel is not None:
            channel.port.write(keypad.answer(satisfaction))

    def status(self) -> list[DeviceStatus]:
        """One entry per fitted device, in the order card, ticket, keypad."""
        return [channel.status() for channel in self._channels.values()]

    def __enter__(self) -> Devices:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

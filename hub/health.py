"""Device health rules (docs/fleet.md): whether a device is online, which alarms its latest heartbeat
raises, and which alarms to raise or clear. Plain Python, no I/O; ``hub.fleet`` is the shell around it.

A device is online when its latest heartbeat arrived within ``OFFLINE_PERIODS`` of its own heartbeat
period (which it reports). Alarms: ``device_offline``; and from the latest report, while the device is
online: ``device_backlog`` (the oldest pending event older than a threshold), ``device_clock`` (clock
offset against the hub over 60 s), ``device_serial_error`` (a serial device in error), ``device_disk_full``
(free disk nearly gone). An alarm is raised once when its condition starts and cleared once when it ends.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

OFFLINE_PERIODS = 3
DEFAULT_HEARTBEAT_S = 60
MIN_HEARTBEAT_S, MAX_HEARTBEAT_S = 5, 86400

OFFLINE = "device_offline"
BACKLOG = "device_backlog"
CLOCK = "device_clock"
SERIAL_ERROR = "device_serial_error"
DISK_FULL = "device_disk_full"
REPORTED_KINDS = (BACKLOG, CLOCK, SERIAL_ERROR, DISK_FULL)  # judged from the report, while online
ALARM_KINDS = (OFFLINE, *REPORTED_KINDS)


@dataclass(frozen=True)
class Thresholds:
    backlog_s: float = 3600.0  # the oldest pending event older than this
    clock_s: float = 60.0
    disk_free_fraction: float = 0.05
    disk_free_bytes: int = 200 * 1024 * 1024  # below both is nearly full


DEFAULT_THRESHOLDS = Thresholds()


def heartbeat_period_s(report: Mapping[str, Any]) -> float:
    """The period the device says it reports at; the default when it says nothing usable."""
    value = report.get("heartbeat_s")
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not MIN_HEARTBEAT_S <= value <= MAX_HEARTBEAT_S
    ):
        return DEFAULT_HEARTBEAT_S
    return value


def is_online(received_at: float | None, report: Mapping[str, Any], now: float) -> bool:
    """Heard from within ``OFFLINE_PERIODS`` heartbeat periods."""
    return received_at is not None and now - received_at <= OFFLINE_PERIODS * heartbeat_period_s(report)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def conditions(
    report: Mapping[str, Any], received_at: float | None, now: float, limits: Thresholds = DEFAULT_THRESHOLDS
) -> dict[str, str | None]:
    """Each alarm kind that can be judged now: its detail text when its condition holds, None when it does
    not. An offline device's last report is stale: only ``device_offline`` is judged then."""
    if not is_online(received_at, report, now):
        if received_at is None:
            return {OFFLINE: "never heard from"}
        period = heartbeat_period_s(report)
        return {OFFLINE: f"no heartbeat for {now - received_at:.0f} s (period {period:.0f} s)"}
    found: dict[str, str | None] = dict.fromkeys(ALARM_KINDS)
    oldest, sent = _time(report.get("oldest_pending_at")), _time(report.get("sent_at"))
    pending = report.get("pending")
    if oldest is not None and sent is not None:  # both on the device's clock
        age = (sent - oldest).total_seconds()
        if age > limits.backlog_s:
            found[BACKLOG] = f"{pending} events pending, the oldest for {age / 60:.0f} min"
    offset = _number(report.get("clock_offset_s"))
    if offset is not None and abs(offset) > limits.clock_s:
        found[CLOCK] = f"clock {offset:+.0f} s against the hub's"
    serial = report.get("serial")
    if isinstance(serial, list):
        failing = [
            f"{d.get('name')} ({d.get('detail') or 'error'})"
            for d in serial
            if isinstance(d, dict) and d.get("state") == "error"
        ]
        if failing:
            found[SERIAL_ERROR] = "serial device in error: " + ", ".join(map(str, failing))
    free, total = _number(report.get("disk_free_bytes")), _number(report.get("disk_total_bytes"))
    if (
        free is not None
        and total
        and free < limits.disk_free_bytes
        and free / total < limits.disk_free_fraction
    ):
        found[DISK_FULL] = f"{free / 2**20:.0f} MB free of {total / 2**30:.1f} GB"
    return found


@dataclass(frozen=True)
class Transition:
    kind: str
    state: str  # "raised" or "cleared"
    detail: str


def transitions(raised: Mapping[str, str], judged: Mapping[str, str | None]) -> list[Transition]:
    """What to append, given the alarms ``raised`` now (kind → detail) and the conditions ``judged``:
    a raise for each condition that holds and is not raised, a clear for each raised one that no longer
    holds. Kinds not judged keep their state."""
    changes = []
    for kind in ALARM_KINDS:
        if kind not in judged:
            continue
        detail = judged[kind]
        if detail is not None and kind not in raised:
            changes.append(Transition(kind, "raised", detail))
        elif detail is None and kind in raised:
            changes.append(Transition(kind, "cleared", raised[kind]))
    return changes

"""The fleet at the hub (docs/fleet.md): heartbeats kept (the latest and a bounded history), remote
settings per scope (every version kept, checked before they are stored), the device list of the
management API, and the alarms: judged on each heartbeat and by a sweep for devices gone silent, each
raise and clear appended, and every one delivered through ``FleetMonitor.deliver``.

Alarm delivery: ``deliver`` logs every alarm and passes it to each function in ``channels`` (the alert
channels connect there: one call with a ``DeviceAlarm``). A channel that fails is logged, never fatal.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, text, update

from core.settings import SettingError, check_settings, settings_version

from . import health
from .desk.store import section_of
from .desk.tables import device_sections
from .fleet_schema import device_alarms, device_health, heartbeats, settings_versions
from .once import lock_key
from .schema import devices
from .storage import HubStore, utc_now_iso

log = logging.getLogger("hub")

HISTORY_PER_DEVICE = 100  # heartbeats kept per device, the latest included
ALL_SCOPE = "*"
SWEEP_S = 5.0  # at most; shorter for devices with a short heartbeat period (a fifth of the shortest)
MIN_SWEEP_S = 1.0


def scope_of(kind: str, name: str | None = None) -> str:
    """``*`` for every device, ``dept:CODE`` for a section, ``device:ID`` for one device."""
    return ALL_SCOPE if kind == "all" else f"{kind}:{name}"


@dataclass(frozen=True)
class DeviceAlarm:
    """What an alert channel gets: nothing personal, only the device and what is wrong with it."""

    event: str  # health.ALARM_KINDS: device_offline, device_backlog, …
    state: str  # "raised" or "cleared"
    device_id: str
    dept: str
    window: str | None
    detail: str
    at: str  # when the alarm was raised or cleared
    last_seen: str  # the device's latest heartbeat (for device_offline: since when it is silent)


class Fleet:
    """The fleet's data, over the hub's store."""

    def __init__(self, store: HubStore, clock: Callable[[], float] = time.time):
        self.store, self.engine, self.clock = store, store.engine, clock

    # --- heartbeats

    def record_heartbeat(self, device_id: str, report: dict[str, Any]) -> float:
        now = self.clock()
        text = json.dumps(report, ensure_ascii=False, separators=(",", ":"))
        with self.engine.begin() as conn:
            updated = conn.execute(
                update(device_health)
                .where(device_health.c.device_id == device_id)
                .values(received_at=now, report=text)
            ).rowcount
            if not updated:
                conn.execute(insert(device_health).values(device_id=device_id, received_at=now, report=text))
            conn.execute(insert(heartbeats).values(device_id=device_id, received_at=now, report=text))
            # Bounded history: what came before the newest HISTORY_PER_DEVICE goes.
            cutoff = conn.execute(
                select(heartbeats.c.id)
                .where(heartbeats.c.device_id == device_id)
                .order_by(heartbeats.c.id.desc())
                .offset(HISTORY_PER_DEVICE)
                .limit(1)
            ).scalar()
            if cutoff is not None:
                conn.execute(
                    delete(heartbeats).where(heartbeats.c.device_id == device_id, heartbeats.c.id <= cutoff)
                )
        return now

    def history(self, device_id: str, limit: int = HISTORY_PER_DEVICE) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(heartbeats.c.received_at, heartbeats.c.report)
                .where(heartbeats.c.device_id == device_id)
                .order_by(heartbeats.c.id.desc())
                .limit(limit)
            ).all()
        return [{"receivedAt": _iso(r.received_at), "report": json.loads(r.report)} for r in rows]

    def latest_reports(
        self, known: dict[str, tuple[float, dict[str, Any]]] | None = None
    ) -> dict[str, tuple[float, dict[str, Any]]]:
        """device id → (received_at, latest report), for every device that ever reported. ``known``: a
        copy read before; only the reports received since (a received_at not in it) are read and parsed
        again, the others are taken from it (a sweep of 5,000 devices parsed every report every 5 s)."""
        if known is None:
            with self.engine.connect() as conn:
                rows = conn.execute(select(device_health)).all()
            return {r.device_id: (r.received_at, json.loads(r.report)) for r in rows}
        with self.engine.connect() as conn:
            times = [
                (str(r.device_id), r.received_at)
                for r in conn.execute(select(device_health.c.device_id, device_health.c.received_at))
            ]
            changed = [d for d, at in times if d not in known or known[d][0] != at]
            fresh: dict[str, tuple[float, dict[str, Any]]] = {}
            for start in range(0, len(changed), 1000):
                fresh.update(
                    (r.device_id, (r.received_at, json.loads(r.report)))
                    for r in conn.execute(
                        select(device_health).where(
                            device_health.c.device_id.in_(changed[start : start + 1000])
                        )
                    )
                )
        return {d: fresh[d] if d in fresh else known[d] for d, _at in times if d in fresh or d in known}

    # --- settings

    def set_settings(self, scope: str, settings: Any, by: str) -> int:
        """Store a new version of ``scope``'s settings (the whole set); its number. SettingError (the
        reason) for a bad set, which is not stored; KeyError for an unknown device."""
        kind, _, name = scope.partition(":")
        if scope != ALL_SCOPE and (kind not in ("dept", "device") or not name):
            raise SettingError(f"scope: expected *, dept:CODE or device:ID, got {scope!r}")
        check_settings(settings)
        if kind == "device" and self.store.device_secret(name) is None:
            raise KeyError(name)
        text = json.dumps(settings, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        with self.engine.begin() as conn:
            key = conn.execute(
                insert(settings_versions).values(
                    scope=scope, settings=text, created_at=utc_now_iso(), created_by=by
                )
            ).inserted_primary_key
        number = int(key[0]) if key else 0
        log.info("settings of %s: version %d by %s", scope, number, by)
        return number

    def scope_settings(self, scope: str) -> list[dict[str, Any]]:
        """Every version of ``scope``'s settings, the newest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(settings_versions)
                .where(settings_versions.c.scope == scope)
                .order_by(settings_versions.c.id.desc())
            ).all()
        return [
            {
                "number": r.id,
                "settings": json.loads(r.settings),
                "createdAt": r.created_at,
                "createdBy": r.created_by,
            }
            for r in rows
        ]

    def _current(self, conn, scopes: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """scope → its newest settings, of ``scopes`` (None: every scope)."""
        query = select(settings_versions.c.scope, func.max(settings_versions.c.id).label("id"))
        if scopes is not None:
            query = query.where(settings_versions.c.scope.in_(scopes))
        newest = query.group_by(settings_versions.c.scope).subquery()
        rows = conn.execute(
            select(settings_versions.c.scope, settings_versions.c.settings).join(
                newest, settings_versions.c.id == newest.c.id
            )
        ).all()
        return {r.scope: json.loads(r.settings) for r in rows}

    def settings_for(self, device_id: str) -> tuple[str, dict[str, Any]]:
        """(version, settings) of one device: every device's, under its section's, under its own."""
        with self.engine.connect() as conn:
            dept = section_of(conn, device_id) or ""
            current = self._current(conn, [ALL_SCOPE, scope_of("dept", dept), scope_of("device", device_id)])
        return merged_settings(current, device_id, dept)

    # --- alarms

    def raised_alarms(self) -> dict[str, dict[str, str]]:
        """device id → {kind → detail} of the alarms raised and not cleared."""
        newest = (
            select(func.max(device_alarms.c.id).label("id"))
            .group_by(device_alarms.c.device_id, device_alarms.c.kind)
            .subquery()
        )
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(device_alarms)
                .join(newest, device_alarms.c.id == newest.c.id)
                .where(device_alarms.c.state == "raised")
            ).all()
        found: dict[str, dict[str, str]] = {}
        for r in rows:
            found.setdefault(r.device_id, {})[r.kind] = r.detail
        return found

    def alarm_history(self, device_id: str, limit: int = 50) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(device_alarms)
                .where(device_alarms.c.device_id == device_id)
                .order_by(device_alarms.c.id.desc())
                .limit(limit)
            ).all()
        return [{"event": r.kind, "state": r.state, "at": r.at, "detail": r.detail} for r in rows]

    # --- the management API's list

    def registered(self, only: str | None = None) -> list[tuple[str, str]]:
        """(id, section or "") of every registered device (or of ``only``)."""
        section = (  # each device's latest section, as section_of reads it: one query for the whole fleet
            select(device_sections.c.dept)
            .where(device_sections.c.device_id == devices.c.id)
            .order_by(device_sections.c.id.desc())
            .limit(1)
            .correlate(devices)
            .scalar_subquery()
        )
        query = select(devices.c.id, section).order_by(devices.c.id)
        if only is not None:
            query = query.where(devices.c.id == only)
        with self.engine.connect() as conn:
            return [(str(device_id), str(dept or "")) for device_id, dept in conn.execute(query).all()]

    def devices(self, now: float | None = None, dept: str | None = None) -> list[dict[str, Any]]:
        """Every registered device (of section ``dept`` only, if given) as ``GET /api/v1/manage/devices``
        lists it (docs/fleet.md)."""
        now = self.clock() if now is None else now
        registered = [(d, s) for d, s in self.registered() if dept is None or s == dept]
        with self.engine.connect() as conn:
            current = self._current(conn)
        seen, alarms = self.latest_reports(), self.raised_alarms()
        listed = []
        for device_id, section in registered:
            received_at, report = seen.get(device_id, (None, {}))
            wanted, _ = merged_settings(current, device_id, section)
            listed.append(
                device_row(device_id, section, received_at, report, now, wanted, alarms.get(device_id, {}))
            )
        return listed


def merged_settings(
    current: dict[str, dict[str, Any]], device_id: str, dept: str
) -> tuple[str, dict[str, Any]]:
    """(version, settings) of one device: every device's, under its section's, under its own."""
    merged: dict[str, Any] = {}
    for scope in (ALL_SCOPE, scope_of("dept", dept), scope_of("device", device_id)):
        merged.update(current.get(scope, {}))
    return settings_version(merged), merged


def device_row(
    device_id: str,
    dept: str,
    received_at: float | None,
    report: dict[str, Any],
    now: float,
    settings_wanted: str,
    alarms: dict[str, str],
) -> dict[str, Any]:
    reported = report.get("serial")
    serial = reported if isinstance(reported, list) else []
    return {
        "id": device_id,
        "dept": dept,
        "window": report.get("window"),
        "online": health.is_online(received_at, report, now),
        "lastSeen": _iso(received_at) if received_at is not None else None,
        "pending": report.get("pending"),
        "version": report.get("version"),
        "serial": [
            {k: d.get(k) for k in ("name", "port", "state", "detail", "frames", "bad_frames", "reconnects")}
            for d in serial
            if isinstance(d, dict)
        ],
        "heartbeatS": health.heartbeat_period_s(report) if received_at is not None else None,
        "oldestPendingAt": report.get("oldest_pending_at"),
        "clockOffsetS": report.get("clock_offset_s"),
        "diskFreeBytes": report.get("disk_free_bytes"),
        "page": report.get("page"),
        "lastRatingAt": report.get("last_rating_at"),
        "uptimeS": report.get("uptime_s"),
        "logHead": report.get("log"),
        "settings": {
            "wanted": settings_wanted,
            "applied": report.get("settings_version"),
            "error": report.get("settings_error"),
        },
        "alarms": [{"event": kind, "detail": detail} for kind, detail in sorted(alarms.items())],
    }


def _raised(conn, device_id: str) -> dict[str, str]:
    """kind → detail of the device's alarms raised and not cleared."""
    newest = (
        select(func.max(device_alarms.c.id).label("id"))
        .where(device_alarms.c.device_id == device_id)
        .group_by(device_alarms.c.kind)
        .subquery()
    )
    rows = conn.execute(
        select(device_alarms.c.kind, device_alarms.c.detail)
        .join(newest, device_alarms.c.id == newest.c.id)
        .where(device_alarms.c.state == "raised")
    ).all()
    return {r.kind: r.detail for r in rows}


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class FleetMonitor:
    """Judges alarms on each heartbeat and, every ``sweep_s``, for every device (one gone silent raises
    ``device_offline``); appends each raise and clear and delivers it. One judgement of a device at a
    time (a lock per device)."""

    def __init__(
        self,
        fleet: Fleet,
        sweep_s: float | None = None,
        limits: health.Thresholds = health.DEFAULT_THRESHOLDS,
    ):
        """``sweep_s``: a fixed sweep period (None: a fifth of the shortest heartbeat period, 1-5 s)."""
        self.fleet, self.fixed_sweep_s, self.limits = fleet, sweep_s, limits
        self.sweep_s = sweep_s or SWEEP_S
        self.channels: list[Callable[[DeviceAlarm], None]] = []
        self.delivered: list[DeviceAlarm] = []  # this process's, newest last (bounded), for tests and the log
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The sweep's copies (only the sweep reads them): every device's latest report as last read, and
        # the conditions of the devices online then, by the received_at they were judged from.
        self._seen: dict[str, tuple[float, dict[str, Any]]] = {}
        self._online: dict[str, tuple[float, dict[str, str | None]]] = {}

    def deliver(self, alarm: DeviceAlarm) -> None:
        """The one way out for a device alarm: the hub's log, then each alert channel."""
        log.warning("device alarm %s %s: %s (%s)", alarm.event, alarm.state, alarm.device_id, alarm.detail)
        self.delivered = [*self.delivered[-999:], alarm]
        for channel in self.channels:
            try:
                channel(alarm)
            except Exception:
                log.exception("alert channel failed for %s %s", alarm.event, alarm.device_id)

    def judge(self, only: str | None = None, reported: tuple[float, dict[str, Any]] | None = None) -> None:
        """Judge ``only`` (its heartbeat just came), or every device (the sweep). The sweep first looks at
        every device without a lock; each device whose alarms would change, and a heartbeat's device, is
        then judged again inside its own transaction holding its own lock, so an alarm is raised (and its
        alert sent) once however many hub processes judge at once. ``reported``: (received_at, report) of
        ``only``'s heartbeat just recorded, not read again."""
        if only is not None:
            self._judge_device(only, reported)
            return
        now = self.fleet.clock()
        seen = self._seen = self.fleet.latest_reports(self._seen)
        raised = self.fleet.raised_alarms()
        if self.fixed_sweep_s is None and seen:
            shortest = min(health.heartbeat_period_s(report) for _, report in seen.values())
            self.sweep_s = min(SWEEP_S, max(MIN_SWEEP_S, shortest / 5))
        online: dict[str, tuple[float, dict[str, str | None]]] = {}
        for device_id, _section in self.fleet.registered():
            if device_id not in seen:
                continue  # never reported (a hub before heartbeats, or not installed yet): no alarm
            received_at, report = seen[device_id]
            judged = self._conditions(device_id, received_at, report, now, online)
            if health.transitions(raised.get(device_id, {}), judged):
                self._judge_device(device_id)
        self._online = online

    def _conditions(
        self,
        device_id: str,
        received_at: float,
        report: dict[str, Any],
        now: float,
        online: dict[str, tuple[float, dict[str, str | None]]],
    ) -> dict[str, str | None]:
        """``health.conditions`` of a device for the sweep: while it is online they depend on its report
        alone, so the last sweep's are taken again until a new report comes (kept in ``online``)."""
        if not health.is_online(received_at, report, now):
            return health.conditions(report, received_at, now, self.limits)
        last = self._online.get(device_id)
        if last is None or last[0] != received_at:
            last = (received_at, health.conditions(report, received_at, now, self.limits))
        online[device_id] = last
        return last[1]

    def _judge_device(self, device_id: str, reported: tuple[float, dict[str, Any]] | None = None) -> None:
        """One device's judgement in one transaction, under that device's lock: on PostgreSQL an advisory
        lock of this very transaction (released by its commit, once the alarms it appended are visible to
        the next holder); on SQLite (one process) this monitor's thread lock."""
        alarms = []
        with self._local_lock(), self.fleet.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(f"fleet-judge:{device_id}")}
                )
            if reported is None:
                found = conn.execute(
                    select(device_health.c.received_at, device_health.c.report).where(
                        device_health.c.device_id == device_id
                    )
                ).first()
                if found is None:
                    return  # never reported: no alarm
                reported = found.received_at, json.loads(found.report)
            received_at, report = reported
            judged = health.conditions(report, received_at, self.fleet.clock(), self.limits)
            changes = health.transitions(_raised(conn, device_id), judged)
            if not changes:
                return
            section = section_of(conn, device_id) or ""
            at = utc_now_iso()
            conn.execute(
                insert(device_alarms),
                [
                    {"device_id": device_id, "kind": c.kind, "state": c.state, "at": at, "detail": c.detail}
                    for c in changes
                ],
            )
            window = report.get("window") if isinstance(report.get("window"), str) else None
            alarms = [
                DeviceAlarm(c.kind, c.state, device_id, section, window, c.detail, at, _iso(received_at))
                for c in changes
            ]
        for alarm in alarms:  # after the commit: delivered once, what was appended
            self.deliver(alarm)

    def _local_lock(self) -> AbstractContextManager[Any]:
        return nullcontext() if self.fleet.engine.dialect.name == "postgresql" else self._lock

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._sweep, name="fleet-sweep", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _sweep(self) -> None:
        while not self._stop.wait(self.sweep_s):
            try:
                self.judge()
            except Exception:
                log.exception("device sweep failed; trying again in %.0f s", self.sweep_s)


__all__ = ["DeviceAlarm", "Fleet", "FleetMonitor", "SettingError", "scope_of"]

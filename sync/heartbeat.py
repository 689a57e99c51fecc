"""The heartbeat: every ``[hub] heartbeat_s`` the agent reports the device's health to the hub
(``POST /api/v1/devices/{id}/heartbeat``, signed like every device request; docs/fleet.md).

What it reports comes from the log file the kiosk and the agent share: the serial devices' states and
counters and the page shown (which the kiosk publishes in the log's state), the settings version the
kiosk applied, the log head, what is pending and since when, free disk, the last rating's time, and the
clock offset against the hub's ``Date`` header. Nothing personal: no payloads, no names, no numbers.

A hub that does not know heartbeats (404) is noted once; the upload never waits for a heartbeat.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

from core import __version__
from core.store import EventLog, now_iso

from .client import HubClient, HubError, HubRefused
from .secret import Signer

logger = logging.getLogger("sync")

HEARTBEAT_KEY = "sync_heartbeat"  # what the last heartbeat came to, for `kiosk doctor`
KIOSK_KEY = "kiosk"  # published by the kiosk: page, started_at, settings applied
DEVICES_KEY = "devices"  # published by the kiosk: the serial devices' states


def heartbeat_path(device_id: str) -> str:
    return f"/api/v1/devices/{device_id}/heartbeat"


def clock_offset_s(date_header: str | None, sent_at: float, received_at: float) -> float | None:
    """This machine's clock minus the hub's, from an answer's ``Date`` (±0.5 s plus half the round trip:
    ``Date`` is whole seconds, truncated, so the hub's time was half a second past it on average)."""
    if not date_header:
        return None
    try:
        hub_time = parsedate_to_datetime(date_header).timestamp() + 0.5
    except (TypeError, ValueError):
        return None
    return round((sent_at + received_at) / 2 - hub_time, 1)


class Heartbeat:
    def __init__(
        self,
        event_log: EventLog,
        client: HubClient,
        signer: Signer,
        pending: Callable[[], tuple[int, int]],
        sync_status: Callable[[], dict[str, Any]],
        facts: dict[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        """``pending()``: (pending events, the seq the hub holds up to); ``sync_status()``: the upload's;
        ``facts``: fixed facts to report (window, heartbeat_s)."""
        self.log, self.client, self.signer = event_log, client, signer
        self.facts = dict(facts or {})
        self._pending, self._sync_status, self._clock = pending, sync_status, clock
        self.started_at = clock()
        self.clock_offset_s: float | None = None
        self.hub_lacks_heartbeat = False
        self.answer: dict[str, Any] = {}

    def report(self) -> dict[str, Any]:
        """The heartbeat body."""
        now = self._clock()
        pending, acked_seq = self._pending()
        oldest = next(iter(self.log.events_after(acked_seq, limit=1)), None) if pending else None
        head = self.log._conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        last_rating = self.log._conn.execute(
            "SELECT at FROM events WHERE type = 'rating' ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        kiosk = self.log.get_state(KIOSK_KEY) or {}
        devices = self.log.get_state(DEVICES_KEY) or {}
        sync = self._sync_status()
        free: int | None = None
        total: int | None = None
        try:
            disk = shutil.disk_usage(self.log.path.parent)
            free, total = disk.free, disk.total
        except OSError:
            pass
        kiosk_started = kiosk.get("started_at")
        return {
            "device_id": self.client.device_id,
            **self.facts,
            "version": __version__,
            "sent_at": now_iso(),
            "uptime_s": round(now - kiosk_started) if isinstance(kiosk_started, (int, float)) else None,
            "agent_uptime_s": round(now - self.started_at),
            "page": kiosk.get("page"),
            "kiosk_updated_at": kiosk.get("updated_at"),
            "settings_version": kiosk.get("settings_version"),
            "settings_error": kiosk.get("settings_error"),
            "serial": devices.get("devices", []),
            "serial_updated_at": devices.get("updated_at"),
            "pending": pending,
            "oldest_pending_at": oldest["at"] if oldest else None,
            "sync_state": sync.get("state"),
            "sync_alarm": sync.get("alarm"),
            "disk_free_bytes": free,
            "disk_total_bytes": total,
            "clock_offset_s": self.clock_offset_s,
            "last_rating_at": last_rating[0] if last_rating else None,
            "log": {
                "log_id": self.log.log_id,
                "head_seq": head[0] if head else 0,
                "head_hash": head[1] if head else None,
            },
        }

    def send(self) -> bool:
        """Report once; False if the hub did not take it. Never raises."""
        try:
            body = json.dumps(self.report(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            sent_at = self._clock()
            response = self.signer.signed(
                lambda: self.client._request(
                    "POST",
                    heartbeat_path(self.client.device_id),
                    body,
                    {"Content-Type": "application/json"},
                )
            )
            self.clock_offset_s = clock_offset_s(response.headers.get("Date"), sent_at, self._clock())
            answer = self.client._json(response)
            self.answer = answer if isinstance(answer, dict) else {}
        except HubRefused as e:
            if e.status == 404:
                if not self.hub_lacks_heartbeat:
                    logger.info("the hub does not take heartbeats (HTTP 404): carrying on without them")
                self.hub_lacks_heartbeat = True
            else:
                logger.warning("heartbeat refused: %s", e)
            self._note(f"refused: {e}")
            return False
        except HubError as e:
            self._note(str(e))
            return False
        except Exception as e:  # a heartbeat must never stop the upload
            logger.warning("heartbeat not sent: %r", e)
            self._note(repr(e))
            return False
        self.hub_lacks_heartbeat = False
        self._note(None)
        return True

    def _note(self, error: str | None) -> None:
        try:
            previous = self.log.get_state(HEARTBEAT_KEY) or {}
            self.log.set_state(
                HEARTBEAT_KEY,
                {
                    "last_sent_at": now_iso() if error is None else previous.get("last_sent_at"),
                    "error": error,
                    "clock_offset_s": self.clock_offset_s,
                    "updated_at": now_iso(),
                },
            )
        except Exception as e:
            logger.warning("heartbeat state not written: %r", e)

"""Remote settings on the kiosk (docs/fleet.md): the set the sync agent caches in the log (state
``sync_settings``) checked again and laid over the configuration file, keeping the last good set when a
new one is bad. Plain Python: ``kiosk.app`` applies the result at its next idle page.

Precedence (core.settings): a key written in kiosk.toml wins; the hub's value applies to keys the file
leaves out; a key neither sets keeps its default. What was applied is published in the log's ``kiosk``
state, which the agent reports in its heartbeat.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from core.config import Config
from core.settings import SettingError, apply_settings
from core.store import EventLog, now_iso

log = logging.getLogger(__name__)

SETTINGS_KEY = "sync_settings"  # written by the sync agent (sync.settings)
KIOSK_KEY = "kiosk"  # read by the sync agent (sync.heartbeat)


class RemoteSettings:
    def __init__(self, file_config: Config, event_log: EventLog):
        self.file_config = file_config  # as kiosk.toml says: every set is laid over this, not the last one
        self.log = event_log
        self.version: str | None = None  # applied
        self.error: str | None = None  # why the newest set was not applied
        self.local: tuple[str, ...] = ()  # remote keys the file sets, so kept as the file says
        self._seen: str | None = None  # the newest version looked at, applied or not

    def newer(self) -> dict[str, Any] | None:
        """The cached set if it is one not looked at yet."""
        cached = self.log.get_state(SETTINGS_KEY) or {}
        version = cached.get("version")
        return cached if isinstance(version, str) and version != self._seen else None

    def take(self, cached: dict[str, Any]) -> Config | None:
        """The configuration with ``cached`` applied; None (the last good set stays) when it is bad."""
        version = cached["version"]
        self._seen = version
        try:
            applied = apply_settings(self.file_config, cached.get("settings"))
        except SettingError as e:
            self.error = f"settings version {version} not applied, the last good ones stay: {e}"
            log.warning("%s", self.error)
            return None
        self.version, self.error, self.local = version, None, applied.local
        log.info(
            "settings version %s applied%s",
            version,
            f"; kept from kiosk.toml: {', '.join(applied.local)}" if applied.local else "",
        )
        return applied.config

    def publish(self, page: str | None, started_at: float) -> None:
        """What the agent's heartbeat reports about the kiosk."""
        self.log.set_state(
            KIOSK_KEY,
            {
                "page": page,
                "started_at": started_at,
                "settings_version": self.version,
                "settings_error": self.error,
                "settings_local": list(self.local),
                "updated_at": now_iso(),
                "updated_ts": time.time(),
            },
        )

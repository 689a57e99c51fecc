"""Remote settings: the hub's settings for this device, pulled with their ETag like the roster and cached
in the log's state (key ``sync_settings``), where the kiosk picks them up at its next idle page.

The agent only carries them: the kiosk checks them again (core.settings) and keeps its last good set if
they are bad. A hub without settings (404) is noted once and asked again at the next period.
"""

from __future__ import annotations

import logging
from typing import Any

from core.store import EventLog, now_iso

from .client import HubClient, HubError, HubRefused, HubUnavailable
from .secret import Signer

logger = logging.getLogger("sync")

SETTINGS_KEY = "sync_settings"


def settings_path(device_id: str) -> str:
    return f"/api/v1/devices/{device_id}/settings"


class SettingsCache:
    def __init__(self, event_log: EventLog, client: HubClient, signer: Signer):
        self.log, self.client, self.signer = event_log, client, signer
        self.hub_lacks_settings = False  # the hub answered 404: one that predates remote settings

    def cached(self) -> dict[str, Any]:
        return self.log.get_state(SETTINGS_KEY) or {}

    def pull(self) -> bool:
        """Cache the hub's settings if they changed; False if they could not be asked (cache kept).
        Never raises: nothing about settings may stop the upload."""
        etag = self.cached().get("etag")
        headers = {"If-None-Match": etag} if etag else {}
        try:
            response = self.signer.signed(
                lambda: self.client._request("GET", settings_path(self.client.device_id), headers=headers)
            )
            if response.status_code != 304:
                self._cache(self.client._json(response), response.headers.get("ETag"))
        except HubRefused as e:
            if e.status == 404:
                if not self.hub_lacks_settings:
                    logger.info("the hub has no remote settings (HTTP 404): carrying on without them")
                self.hub_lacks_settings = True
                return False
            logger.warning("settings not refreshed, the cached ones stay: %s", e)
            return False
        except (HubError, HubUnavailable) as e:
            logger.warning("settings not refreshed, the cached ones stay: %s", e)
            return False
        except Exception as e:  # whatever the hub sent, the upload goes on
            logger.warning("settings not refreshed, the cached ones stay: %r", e)
            return False
        self.hub_lacks_settings = False
        return True

    def _cache(self, answer: Any, etag: str | None) -> None:
        if (
            not isinstance(answer, dict)
            or not isinstance(answer.get("version"), str)
            or not isinstance(answer.get("settings"), dict)
        ):
            raise HubUnavailable("settings answer without version and a settings object")
        if answer["version"] == self.cached().get("version"):
            return
        self.log.set_state(
            SETTINGS_KEY,
            {
                "version": answer["version"],
                "etag": etag,
                "settings": answer["settings"],
                "pulled_at": now_iso(),
            },
        )
        logger.info("settings version %s cached for the kiosk", answer["version"])

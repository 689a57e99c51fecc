"""The roster cache: the hub's roster for this device, pulled with its ETag and kept in the log's
``roster`` table, where the kiosk reloads it from without a restart."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from core.store import EventLog, now_iso
from core.systemd import notify

from .client import HubClient, HubError, RosterUpdate
from .secret import Signer

logger = logging.getLogger("sync")

ROSTER_KEY = "sync_roster"


class RosterCache:
    def __init__(self, event_log: EventLog, client: HubClient, signer: Signer, error: str | None = None):
        self.log, self.client, self.signer = event_log, client, signer
        self.error: str | None = error  # what went wrong last, for the status; None when all is well

    def pull(self) -> bool:
        """Refresh the cached roster if the hub has a new one; False (cache kept) if that failed.

        Never raises: a roster the agent cannot use must not stop the upload. Entries it cannot use are
        left out and counted; what went wrong is ``error``.
        """
        etag = (self.log.get_state(ROSTER_KEY) or {}).get("etag")
        try:
            update = self.signer.signed(lambda: self.client.get_roster(etag))
            if update is not None:
                self._cache(update)
            ok = True
        except HubError as e:
            self.error, ok = f"roster not refreshed, the cached one stays in use: {e}", False
        except Exception as e:  # whatever the hub sent, the upload goes on
            self.error, ok = f"roster not refreshed, the cached one stays in use: {e!r}", False
        if not ok:
            logger.warning("%s", self.error)
        return ok

    def _cache(self, update: RosterUpdate) -> None:
        staff = usable_staff(update.staff)
        photos = {hashlib.sha256(r["photo"]).hexdigest(): r["photo"] for r in self.log.roster() if r["photo"]}
        for entry in staff:
            url = entry.pop("photo_url")
            entry["photo"] = photos.get(url.rsplit("/", 1)[-1]) if url else None
            if url and entry["photo"] is None:
                notify("WATCHDOG=1")  # one photo at a time on a slow link is being alive
                entry["photo"] = self.client.get_photo(url)
        self.log.replace_roster(update.version, staff)
        self.log.set_state(
            ROSTER_KEY,
            {"version": update.version, "etag": update.etag, "count": len(staff), "pulled_at": now_iso()},
        )
        skipped = len(update.staff) - len(staff)
        self.error = (
            f"{skipped} of {len(update.staff)} roster entries unusable, left out" if skipped else None
        )
        if skipped:
            logger.warning("roster version %s: %s", update.version, self.error)
        logger.info("roster version %s: %d staff", update.version, len(staff))


def usable_staff(entries: list[Any]) -> list[dict[str, Any]]:
    """The roster entries the kiosk can use: objects with card, staff_no and name as text, title and
    photo_url (a path on the hub) as text or null, each card once. Fresh dicts of those five keys."""
    usable: list[dict[str, Any]] = []
    cards: set[str] = set()
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        fields = {k: entry.get(k) for k in ("card", "staff_no", "name", "title", "photo_url")}
        required = all(isinstance(fields[k], str) and fields[k] for k in ("card", "staff_no", "name"))
        optional = all(fields[k] is None or isinstance(fields[k], str) for k in ("title", "photo_url"))
        photo_url = fields["photo_url"]
        if not required or not optional or fields["card"] in cards:
            continue
        if photo_url is not None and not photo_url.startswith("/"):
            continue
        cards.add(str(fields["card"]))
        usable.append(fields)
    return usable

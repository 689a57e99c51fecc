"""The roster the kiosk signs staff in with: loaded from the local file and the hub roster the sync
agent caches in the log, and watched cheaply for a change so that new staff can sign in without a
restart (the reload itself runs on a worker thread, kiosk/controller.py)."""

from __future__ import annotations

import logging
from pathlib import Path

from core.config import Config
from core.store import EventLog

from .roster import Roster

log = logging.getLogger(__name__)


def load_roster(config: Config) -> Roster:
    """The local roster file and the hub roster cached in the log, read on whichever thread calls it."""
    with EventLog(config.store_path) as event_log:
        cached = event_log.roster()
    roster = Roster.load(config.roster_path, cached)
    for problem in roster.problems:
        log.warning("roster: %s", problem)
    return roster


class RosterWatch:
    """Says whether the roster may have changed since the last look, cheaply enough for a GUI timer:
    SQLite's data_version moves only when another connection (the agent) commits, and only then are
    the cached roster's size and version read; the local file is judged by its size and mtime."""

    def __init__(self, event_log: EventLog, csv_path: Path | None):
        self._log = event_log
        self._csv_path = csv_path
        self._data_version: int | None = None
        self._cache: tuple = ()
        self._seen: tuple = self._fingerprint()

    def _fingerprint(self) -> tuple:
        data_version = self._log.data_version()
        if data_version != self._data_version:
            self._data_version = data_version
            self._cache = self._log.roster_version()
        try:
            st = self._csv_path.stat() if self._csv_path is not None else None
            csv = (st.st_size, st.st_mtime_ns) if st else None
        except OSError:
            csv = None
        return (self._cache, csv)

    def changed(self) -> bool:
        seen, self._seen = self._seen, self._fingerprint()
        return seen != self._seen

"""The sync agent (``kiosk sync``): the loop that runs the agent's jobs, one module each.

- ``upload``: the event log to the hub, exactly once and in order (the cursor, the alarms);
- ``roster``: the hub's roster cached for the kiosk;
- ``secret``: the device secret, taken again when ``[hub] secret_file`` changes;
- ``heartbeat``: the device's health every ``[hub] heartbeat_s``;
- ``settings``: the hub's remote settings cached for the kiosk.

Uploads come first: new events are noticed by watching the database, never by polling the hub; the
heartbeat, settings and roster are asked on their own timers, and a hub that does not know heartbeats
or settings (404) never stops or slows an upload. ``kiosk sync`` runs it forever under a
single-instance lock on the log; ``--once`` drains and exits.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from typing import Any

from core.config import ConfigError, load_config
from core.lock import hold_lock, lock_path
from core.progress import advance, set_total, task
from core.store import EventLog, StoreError
from core.systemd import notify

from .client import HubClient
from .heartbeat import KIOSK_KEY, Heartbeat
from .roster import ROSTER_KEY, RosterCache, usable_staff
from .secret import SecretFile, Signer
from .settings import SettingsCache
from .upload import CURSOR_KEY, STATUS_KEY, Backoff, ChainCheck, Outcome, Uploader

__all__ = [
    "CURSOR_KEY",
    "ROSTER_KEY",
    "STATUS_KEY",
    "Backoff",
    "Outcome",
    "SecretFile",
    "Signer",
    "SyncAgent",
    "usable_staff",
]

logger = logging.getLogger("sync")

ROSTER_INTERVAL_S = 300.0
ROSTER_RETRY_S = 60.0
HEARTBEAT_S = 60.0
WATCH_INTERVAL_S = 0.2  # how often the database is looked at for new events
ONCE_MAX_FAILURES = 3  # --once gives up after this many failed attempts in a row


class SyncAgent(Uploader):
    """The upload plus the periodic jobs, on one thread."""

    def __init__(
        self,
        event_log: EventLog,
        client: HubClient,
        *,
        roster_interval_s: float = ROSTER_INTERVAL_S,
        heartbeat_s: float | None = HEARTBEAT_S,
        watch_interval_s: float = WATCH_INTERVAL_S,
        window: str | None = None,
        **upload_options: Any,
    ):
        """``heartbeat_s`` None: no heartbeat and no settings (tests of the upload alone); ``window``: the
        window number the heartbeat reports."""
        super().__init__(event_log, client, **upload_options)
        self.roster_interval_s = roster_interval_s
        self.heartbeat_s = heartbeat_s
        self.watch_interval_s = watch_interval_s
        self.roster = RosterCache(event_log, client, self.signer, self._previous_status.get("roster_error"))
        self.settings = SettingsCache(event_log, client, self.signer)
        self._reported_applied: Any = None  # the kiosk's applied settings version, as last reported
        self.heartbeat = Heartbeat(
            event_log,
            client,
            self.signer,
            lambda: (self.pending(), self.acked_seq),
            self.status,
            {"window": window, "heartbeat_s": heartbeat_s},
        )

    @property
    def roster_error(self) -> str | None:
        return self.roster.error

    def status(self) -> dict[str, Any]:
        return {**super().status(), "roster_error": self.roster.error}

    def pull_roster(self) -> bool:
        ok = self.roster.pull()
        self._publish()
        return ok

    def _kiosk_applied(self) -> Any:
        return (self.log.get_state(KIOSK_KEY) or {}).get("settings_version")

    def beat(self) -> None:
        """One heartbeat, then the settings if the hub's answer names others than those cached (or the
        hub did not answer with a version)."""
        self._reported_applied = self._kiosk_applied()
        self.heartbeat.send()
        version = self.heartbeat.answer.get("settings_version")
        if version is None or version != self.settings.cached().get("version"):
            self.settings.pull()

    # --- loops ---------------------------------------------------------------------------------

    def drain(self, max_failures: int = ONCE_MAX_FAILURES) -> bool:
        """Send everything pending (``--once``), then refresh the roster; True if nothing is left and
        nothing is wrong."""
        self.check_local_chain()
        failures = 0
        set_total(self.pending())  # a bar when `kiosk sync --once` runs on a terminal (core/progress.py)
        while True:
            before = self.pending()
            outcome = self.step()
            if outcome.kind == "sent":
                failures = 0
                advance(before - self.pending())
                continue
            if outcome.kind != "unavailable":
                break
            failures += 1
            if failures >= max_failures:
                break
            time.sleep(max(outcome.retry_after_s or 0, self.backoff.after(failures, self.rng)))
        self.pull_roster()
        return self.pending() == 0 and self.alarm is None

    def run(self, stop: threading.Event) -> None:
        """Forward forever, until ``stop`` is set. Ready at once: the chain is verified meanwhile (a
        long log would outlast systemd's start timeout), and pending events go before the roster."""
        self._publish()
        notify("READY=1")
        logger.info(
            "forwarding log %s from seq %d to %s", self.log.log_id, self.acked_seq + 1, self.client.base_url
        )
        self._chain_check = ChainCheck(self.log.path)
        failures = 0
        retry_at = next_roster_at = next_beat_at = time.monotonic()
        period = self.heartbeat_s if self.heartbeat_s is not None else float("inf")
        if self.heartbeat_s is None:
            next_beat_at = period
        while not stop.is_set():
            notify("WATCHDOG=1")  # also between batches: draining a long backlog is being alive
            if self.signer.changed() and self.signer.reload():
                retry_at = time.monotonic()  # a rotated secret: try it now, not after a refusal's wait
            if self._chain_check is not None and self._chain_check.done():
                self._report_chain(self._chain_check.result())
                self._chain_check = None
            if self.heartbeat_s is not None and self._kiosk_applied() != self._reported_applied:
                next_beat_at = time.monotonic()  # the kiosk applied new settings: say so now, not a period on
            if time.monotonic() >= next_beat_at:
                # On its own clock, even while a backlog drains: the backlog is what it reports.
                next_beat_at = time.monotonic() + period
                self.beat()
            if time.monotonic() >= retry_at:
                outcome = self.step()
                if outcome.kind == "sent":
                    failures = 0
                    continue
                if outcome.kind == "unavailable":
                    failures += 1
                    retry_at = time.monotonic() + max(
                        outcome.retry_after_s or 0, self.backoff.after(failures, self.rng)
                    )
                elif outcome.kind == "refused":
                    retry_at = time.monotonic() + self.backoff.refused(self.rng)
            if time.monotonic() >= next_roster_at:
                next_roster_at = time.monotonic() + (
                    self.roster_interval_s if self.pull_roster() else ROSTER_RETRY_S
                )
            backing_off = retry_at > time.monotonic()
            timers = min(next_roster_at, next_beat_at)
            self._wait(stop, min(retry_at, timers) if backing_off else timers, not backing_off)

    def _wait(self, stop: threading.Event, deadline: float, wake_on_new_events: bool) -> None:
        while not stop.wait(self.watch_interval_s):
            notify("WATCHDOG=1")
            if time.monotonic() >= deadline:
                return
            if self._chain_check is not None and self._chain_check.done():
                return
            if wake_on_new_events and self.can_upload() and self.log.head_seq() > self.acked_seq:
                return
            if self.signer.changed():
                return
            if self.heartbeat_s is not None and self._kiosk_applied() != self._reported_applied:
                return


def main(args) -> int:
    """``kiosk sync [--once]``."""
    config = load_config(args.config)
    if config.hub is None:
        raise ConfigError(config.path, "[hub]", "kiosk sync needs a [hub] section with url and secret_file")
    secret_file = SecretFile(config.path, config.hub.secret_file)
    if not args.once:
        # Two agents on one log would race for its cursor; --once beside a running agent only resends.
        try:
            lock = hold_lock(lock_path(config.store_path, "sync"))
        except OSError as e:
            print(f"kiosk sync: cannot lock {config.store_path}: {e.strerror}", file=sys.stderr)
            return 1
        if lock is None:
            print(
                f"kiosk sync: another kiosk sync is already running on {config.store_path}", file=sys.stderr
            )
            return 1
    try:
        event_log = EventLog(config.store_path)
    except StoreError as e:
        logger.error("%s", e)
        return 1
    with event_log:
        client = HubClient(config.hub.url, config.device.id, secret_file.secret)
        agent = SyncAgent(
            event_log,
            client,
            secret_file=secret_file,
            heartbeat_s=config.hub.heartbeat_s,
            max_unsynced_age_s=config.hub.max_unsynced_age_s,
            window=config.device.window,
        )
        if args.once:
            with task("kiosk sync: sending", unit="events"):
                ok = agent.drain()
            print(agent.summary())
            return 0 if ok else 1
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        agent.run(stop)
        logger.info("stopped: %s", agent.summary())
    return 0

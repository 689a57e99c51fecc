"""The sync agent: sends the kiosk's event log to the hub in signed batches, exactly once and in order,
and keeps the kiosk's roster cache fresh. ``kiosk sync`` runs it forever; ``--once`` drains and exits.

The cursor (``sync_cursor`` in the log's state table) only ever moves to what the hub holds of the log
(its ``acked_seq``, or the seq before one it refuses as altered), so a crash at any point resends at most
one batch, which the hub recognises. A ``gap`` answer moves the cursor to where the hub wants to resume;
a ``fork`` or ``bad_hash`` (the log was edited or replaced) stops this log's upload and raises the alarm
in the status (key ``sync``) that the admin panel and ``kiosk doctor`` show. New events are noticed by
watching the database, never by polling the hub; the hub is asked what it holds once even with nothing to
send, so a log restored from a backup behind it is reported before new events reuse its seqs. A rotated
device secret is taken from ``[hub] secret_file`` as soon as the file changes. Logs name seqs, counts and
HTTP answers, never an event's payload.
"""

from __future__ import annotations

import hashlib
import logging
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from core.config import ConfigError, file_stamp, load_config, read_device_secret
from core.store import EventLog, StoreError, VerifyResult, now_iso
from core.systemd import notify

from .client import (
    AnswerNotGenuine,
    ChainConflict,
    HubClient,
    HubError,
    HubRefused,
    HubUnavailable,
    RosterUpdate,
    batch_body,
    encode_event,
)

logger = logging.getLogger("sync")

BATCH_EVENTS = 1000
BATCH_BYTES = 512 * 1024
ROSTER_INTERVAL_S = 300.0
ROSTER_RETRY_S = 60.0
WATCH_INTERVAL_S = 0.2  # how often the database is looked at for new events
ONCE_MAX_FAILURES = 3  # --once gives up after this many failed attempts in a row

CURSOR_KEY = "sync_cursor"
STATUS_KEY = "sync"
ROSTER_KEY = "sync_roster"

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Full-jitter exponential backoff: a random wait up to ``base_s * 2**failures``, at most ``cap_s``."""

    base_s: float = 1.0
    cap_s: float = 60.0

    def after(self, failures: int, rng: random.Random) -> float:
        return rng.uniform(0, min(self.cap_s, self.base_s * 2 ** min(failures, 30)))

    def refused(self, rng: random.Random) -> float:
        """After an answer that retrying will not change (401, 400, 413): slow, but never give up."""
        return rng.uniform(self.cap_s / 2, self.cap_s)


@dataclass(frozen=True)
class Outcome:
    """What one upload attempt came to."""

    kind: str  # "sent", "idle", "unavailable", "refused" or "alarm"
    retry_after_s: float | None = None


class SecretFile:
    """The device secret in ``[hub] secret_file``, read again when the file changes: a secret rotated with
    ``kiosk hub device add`` is taken without restarting the agent."""

    def __init__(self, config_path: Path, path: Path):
        self.config_path, self.path = config_path, path
        self._stamp = file_stamp(path)
        self.secret = read_device_secret(config_path, path)  # ConfigError at start: the agent cannot run

    def changed(self) -> bool:
        """Whether the file looks rewritten since it was last read (mtime, size or inode)."""
        return file_stamp(self.path) != self._stamp

    def reload(self) -> bool:
        """Read the file again; True if it now holds another secret. A file that cannot be used (being
        rewritten, or emptied) keeps the secret in use, and is read again at the next change."""
        self._stamp = file_stamp(self.path)
        try:
            secret = read_device_secret(self.config_path, self.path)
        except ConfigError as e:
            logger.warning("device secret not reloaded, the one in use stays: %s", e)
            return False
        if secret == self.secret:
            return False
        self.secret = secret
        logger.info("device secret in %s changed: signing with the new one", self.path)
        return True


class SyncAgent:
    """Forwards one EventLog through one HubClient. Not thread-safe: one agent, one thread.

    ``secret_file``: where the client's secret came from, watched for a rotated one (None: fixed)."""

    def __init__(
        self,
        event_log: EventLog,
        client: HubClient,
        *,
        backoff: Backoff = Backoff(),
        batch_events: int = BATCH_EVENTS,
        batch_bytes: int = BATCH_BYTES,
        roster_interval_s: float = ROSTER_INTERVAL_S,
        watch_interval_s: float = WATCH_INTERVAL_S,
        rng: random.Random | None = None,
        secret_file: SecretFile | None = None,
    ):
        self.log = event_log
        self.client = client
        self.secret_file = secret_file
        self.backoff = backoff
        self.batch_events = batch_events
        self.batch_bytes = batch_bytes
        self.roster_interval_s = roster_interval_s
        self.watch_interval_s = watch_interval_s
        self.rng = rng or random.Random()
        cursor = event_log.get_state(CURSOR_KEY) or {}
        # A cursor of another log (the database was replaced) means nothing for this one.
        # acked_seq: the last seq of this log the hub holds as the same event (everything after is pending).
        self.acked_seq: int = cursor.get("acked_seq", 0) if cursor.get("log_id") == event_log.log_id else 0
        self.hub_acked_seq: int | None = None  # what the hub last said it holds of this log; None: not asked
        previous = event_log.get_state(STATUS_KEY) or {}
        self.last_success_at: str | None = previous.get("last_success_at")
        self.last_error: str | None = None
        self.roster_error: str | None = previous.get("roster_error")
        self.alarm: str | None = None
        self.upload_stopped = False  # the hub refused this log, or it is damaged: send no more of it
        self._chain_check: ChainCheck | None = None  # run(): the chain verified in the background
        self.state = "ok"
        self.sent_events = 0
        self.sent_batches = 0

    # --- status --------------------------------------------------------------------------------

    def pending(self) -> int:
        return max(0, self.log.head_seq() - self.acked_seq)

    def status(self) -> dict[str, Any]:
        return {
            "state": "alarm" if self.alarm else self.state,
            "last_success_at": self.last_success_at,
            "last_error": self.last_error,
            "pending": self.pending(),
            "acked_seq": self.acked_seq,
            "alarm": self.alarm,
            "roster_error": self.roster_error,
            "updated_at": now_iso(),
        }

    def _publish(self) -> None:
        # Cursor and status in one commit: one fsync per batch, and they never disagree.
        with self.log.db.atomic():
            self.log.set_state(CURSOR_KEY, {"log_id": self.log.log_id, "acked_seq": self.acked_seq})
            self.log.set_state(STATUS_KEY, self.status())

    def _raise_alarm(self, message: str) -> None:
        if self.alarm != message:
            logger.error("ALARM: %s", message)
            notify(f"STATUS=ALARM: {message}")  # shown by systemctl status kiosk-sync
        self.alarm = message

    def _set_state(self, state: str, error: str | None) -> None:
        if state != self.state:
            logger.log(
                logging.INFO if state == "ok" else logging.WARNING,
                "hub %s%s",
                state,
                f": {error}" if error else "",
            )
        self.state = state
        if error:
            self.last_error = error

    def summary(self) -> str:
        s = self.status()
        hub = self.hub_acked_seq  # the hub's own answer; the cursor may be older than that
        held = "the hub did not answer" if hub is None else f"hub holds seq {hub}"
        text = (
            f"sent {self.sent_events} events in {self.sent_batches} batches; {held} of log {self.log.log_id}; "
            f"local log ends at seq {self.log.head_seq()}; {s['pending']} pending; state {s['state']}"
        )
        if s["alarm"]:
            text += f"; ALARM: {s['alarm']}"
        elif s["state"] != "ok" and s["last_error"]:
            text += f"; last error: {s['last_error']}"
        return text

    # --- the log -------------------------------------------------------------------------------

    def check_local_chain(self) -> bool:
        """Recompute the local chain; an edited, deleted or relinked row raises the alarm."""
        return self._report_chain(self.log.verify())

    def _report_chain(self, result: VerifyResult) -> bool:
        if not result.ok:
            self._raise_alarm(
                f"local log fails verification at seq {result.first_bad_seq} ({result.problem}): "
                "a row was edited or deleted"
            )
            self._publish()
        return result.ok

    def can_upload(self) -> bool:
        return not self.upload_stopped

    def next_batch(self) -> tuple[list[int], bytes] | None:
        """The seqs and body of the batch after the cursor: up to batch_events events, batch_bytes bytes."""
        seqs: list[int] = []
        encoded: list[bytes] = []
        size = 0
        for event in self.log.events_after(self.acked_seq, limit=self.batch_events):
            data = encode_event(event)
            if encoded and size + len(data) + 1 > self.batch_bytes:
                break
            seqs.append(event["seq"])
            encoded.append(data)
            size += len(data) + 1
        if not seqs:
            return None
        return seqs, batch_body(self.client.device_id, self.log.log_id, encoded)

    def step(self) -> Outcome:
        """Send the next batch once and record what came of it. With nothing to send, ask the hub once
        (an empty batch) what it holds of this log."""
        if not self.can_upload():
            return Outcome("alarm")
        batch = self.next_batch()
        if batch is None:
            if self.hub_acked_seq is not None:
                return Outcome("idle")
            seqs, body = [], batch_body(self.client.device_id, self.log.log_id, [])
        else:
            seqs, body = batch
        if seqs and seqs[0] != self.acked_seq + 1:
            self._stop_upload(f"local log is missing seq {self.acked_seq + 1}: a row was deleted")
            return Outcome("alarm")
        try:
            acked = self._signed(lambda: self.client.post_batch(body))
        except ChainConflict as e:
            self.hub_acked_seq = e.expected_seq - 1
            return self._conflict(e, seqs)
        except AnswerNotGenuine as e:  # acked_seq not believed: everything stays pending
            logger.error("%s", e)
            self._set_state("error", str(e))
            self._publish()
            return Outcome("unavailable", e.retry_after_s)
        except HubUnavailable as e:
            self._set_state("offline", str(e))
            self._publish()
            return Outcome("unavailable", e.retry_after_s)
        except HubRefused as e:
            self._set_state("error", self._refusal(e))
            self._publish()
            return Outcome("refused")
        self.hub_acked_seq = acked
        if acked > self.log.head_seq():
            # The hub holds more of this log than exists here: a backup restored after its events were
            # sent. New events would take seqs the hub holds as others, and look sent when they are not.
            self.acked_seq = seqs[-1] if seqs else self.acked_seq
            self._stop_upload(
                f"the local log is behind the hub: the hub holds seq {acked} of log {self.log.log_id}, "
                f"this log ends at seq {self.log.head_seq()} (restored from a backup?); upload stopped"
            )
            return Outcome("alarm")
        resend = acked < self.acked_seq  # only after an empty batch: a hub restored from an old backup
        self.acked_seq = acked
        self.last_success_at = now_iso()
        self._set_state("ok", None)
        self._publish()
        if not seqs:
            logger.info("hub holds seq %d of log %s", acked, self.log.log_id)
            return Outcome("sent" if resend else "idle")
        self.sent_events += len(seqs)
        self.sent_batches += 1
        logger.debug("sent seq %d-%d, hub holds %d", seqs[0], seqs[-1], acked)
        return Outcome("sent")

    def _reload_secret(self) -> bool:
        """Sign with the secret now in the secret file; True if it is another than before."""
        if self.secret_file is None or not self.secret_file.reload():
            return False
        self.client.secret = self.secret_file.secret
        return True

    def _secret_file_changed(self) -> bool:
        return self.secret_file is not None and self.secret_file.changed()

    def _signed(self, request: Callable[[], T]) -> T:
        """``request`` signed with the secret now in the secret file; after a 401, once more if the file
        holds another secret than the one refused (rewritten with its size and times kept)."""
        if self._secret_file_changed():
            self._reload_secret()
        try:
            return request()
        except HubRefused as e:
            if e.status != 401 or not self._reload_secret():
                raise
        return request()

    def _refusal(self, refused: HubRefused) -> str:
        """The status text of a refusal, naming what to check."""
        if refused.status != 401:
            return f"the hub refuses this device: {refused}"
        key = self.secret_file.path if self.secret_file is not None else "the device secret"
        return (
            f"the hub refuses this device's signature: check {key} against "
            f"`kiosk hub device add {self.client.device_id}` ({refused})"
        )

    def _conflict(self, conflict: ChainConflict, seqs: list[int]) -> Outcome:
        hub_acked = conflict.expected_seq - 1
        if conflict.error == "gap":
            if not seqs or conflict.expected_seq == seqs[0]:  # a hub contradicting itself: retry slowly
                self._set_state("error", f"the hub answers gap but expects seq {conflict.expected_seq}")
                self._publish()
                return Outcome("refused")
            if hub_acked > self.log.head_seq():
                self._stop_upload(
                    f"the hub holds seq {hub_acked} of this log but the local log has {self.log.head_seq()}: "
                    "the local log was truncated or replaced"
                )
                return Outcome("alarm")
            logger.info(
                "hub expects seq %d (we sent from %d); resending from there", conflict.expected_seq, seqs[0]
            )
            self.acked_seq = min(hub_acked, self.log.head_seq())
            self._publish()
            return Outcome("sent")
        # The hub holds none of this log's events from the refused one on, whatever it holds past it.
        refused_seq = conflict.seq if isinstance(conflict.seq, int) else conflict.expected_seq
        self.acked_seq = max(0, min(hub_acked, refused_seq - 1, self.log.head_seq()))
        self._stop_upload(
            f"the hub refuses seq {conflict.seq} ({conflict.error}): the local log was edited or replaced; "
            f"upload of log {self.log.log_id} stopped"
        )
        return Outcome("alarm")

    def _stop_upload(self, message: str) -> None:
        self.upload_stopped = True
        self._raise_alarm(message)
        self._publish()

    # --- roster --------------------------------------------------------------------------------

    def pull_roster(self) -> bool:
        """Refresh the cached roster if the hub has a new one; False (cache kept) if that failed.

        Never raises: a roster the agent cannot use must not stop the upload. Entries it cannot use are
        left out and counted; what went wrong is ``roster_error`` in the status.
        """
        etag = (self.log.get_state(ROSTER_KEY) or {}).get("etag")
        try:
            update = self._signed(lambda: self.client.get_roster(etag))
            if update is not None:
                self._cache_roster(update)
            ok = True
        except HubError as e:
            self.roster_error, ok = f"roster not refreshed, the cached one stays in use: {e}", False
        except Exception as e:  # whatever the hub sent, the upload goes on
            self.roster_error, ok = f"roster not refreshed, the cached one stays in use: {e!r}", False
        if not ok:
            logger.warning("%s", self.roster_error)
        self._publish()
        return ok

    def _cache_roster(self, update: RosterUpdate) -> None:
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
        self.roster_error = (
            f"{skipped} of {len(update.staff)} roster entries unusable, left out" if skipped else None
        )
        if skipped:
            logger.warning("roster version %s: %s", update.version, self.roster_error)
        logger.info("roster version %s: %d staff", update.version, len(staff))

    # --- loops ---------------------------------------------------------------------------------

    def drain(self, max_failures: int = ONCE_MAX_FAILURES) -> bool:
        """Send everything pending (``--once``), then refresh the roster; True if nothing is left and
        nothing is wrong."""
        self.check_local_chain()
        failures = 0
        while True:
            outcome = self.step()
            if outcome.kind == "sent":
                failures = 0
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
        retry_at = next_roster_at = time.monotonic()
        while not stop.is_set():
            notify("WATCHDOG=1")  # also between batches: draining a long backlog is being alive
            if self._secret_file_changed() and self._reload_secret():
                retry_at = time.monotonic()  # a rotated secret: try it now, not after a refusal's wait
            if self._chain_check is not None and self._chain_check.done():
                self._report_chain(self._chain_check.result())
                self._chain_check = None
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
            self._wait(
                stop, min(retry_at, next_roster_at) if backing_off else next_roster_at, not backing_off
            )

    def _wait(self, stop: threading.Event, deadline: float, wake_on_new_events: bool) -> None:
        while not stop.wait(self.watch_interval_s):
            notify("WATCHDOG=1")
            if time.monotonic() >= deadline:
                return
            if self._chain_check is not None and self._chain_check.done():
                return
            if wake_on_new_events and self.can_upload() and self.log.head_seq() > self.acked_seq:
                return
            if self._secret_file_changed():
                return


class ChainCheck:
    """``EventLog.verify`` of the log at ``path`` on its own connection, in a thread of its own."""

    def __init__(self, path: Path):
        self._result: VerifyResult | None = None
        self._thread = threading.Thread(target=self._verify, args=(path,), name="chain-check", daemon=True)
        self._thread.start()

    def _verify(self, path: Path) -> None:
        try:
            with EventLog(path) as own:
                self._result = own.verify()
        except Exception as e:  # reported as a failed check, never lost in the thread
            self._result = VerifyResult(False, 0, None, f"could not be read: {e!r}")

    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self) -> VerifyResult:
        assert self._result is not None, "result() before done()"
        return self._result


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
        cards.add(fields["card"])
        usable.append(fields)
    return usable


def main(args) -> int:
    """``kiosk sync [--once]``."""
    config = load_config(args.config)
    if config.hub is None:
        raise ConfigError(config.path, "[hub]", "kiosk sync needs a [hub] section with url and secret_file")
    secret_file = SecretFile(config.path, config.hub.secret_file)
    try:
        event_log = EventLog(config.store_path)
    except StoreError as e:
        logger.error("%s", e)
        return 1
    with event_log:
        client = HubClient(config.hub.url, config.device.id, secret_file.secret)
        agent = SyncAgent(event_log, client, secret_file=secret_file)
        if args.once:
            ok = agent.drain()
            print(agent.summary())
            return 0 if ok else 1
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        agent.run(stop)
        logger.info("stopped: %s", agent.summary())
    return 0

"""The upload: sends the kiosk's event log to the hub in signed batches, exactly once and in order.

The cursor (``sync_cursor`` in the log's state table) only ever moves to what the hub holds of the log
(its ``acked_seq``, or the seq before one it refuses as altered), so a crash at any point resends at most
one batch, which the hub recognises. A ``gap`` answer moves the cursor to where the hub wants to resume;
a ``fork`` or ``bad_hash`` (the log was edited or replaced) stops this log's upload and raises the alarm
in the status (key ``sync``) that the admin panel and ``kiosk doctor`` show. The hub is asked what it
holds once even with nothing to send, so a log restored from a backup behind it is reported before new
events reuse its seqs. Logs name seqs, counts and HTTP answers, never an event's payload.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from core.store import EventLog, VerifyResult, now_iso
from core.systemd import notify

from .client import (
    AnswerNotGenuine,
    ChainConflict,
    HubClient,
    HubRefused,
    HubUnavailable,
    batch_body,
    encode_event,
)
from .secret import SecretFile, Signer

logger = logging.getLogger("sync")

BATCH_EVENTS = 1000
BATCH_BYTES = 512 * 1024

CURSOR_KEY = "sync_cursor"
STATUS_KEY = "sync"

T = TypeVar("T")


def _plural(n: int, word: str) -> str:
    return word if n == 1 else (word + "es" if word.endswith("ch") else word + "s")


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


class Uploader:
    """Forwards one EventLog through one HubClient. Not thread-safe: one uploader, one thread.

    ``secret_file``: where the client's secret came from, watched for a rotated one (None: fixed)."""

    def __init__(
        self,
        event_log: EventLog,
        client: HubClient,
        *,
        backoff: Backoff = Backoff(),
        batch_events: int = BATCH_EVENTS,
        batch_bytes: int = BATCH_BYTES,
        rng: random.Random | None = None,
        secret_file: SecretFile | None = None,
    ):
        self.log = event_log
        self.client = client
        self.secret_file = secret_file
        self.signer = Signer(client, secret_file)
        self.backoff = backoff
        self.batch_events = batch_events
        self.batch_bytes = batch_bytes
        self.rng = rng or random.Random()
        cursor = event_log.get_state(CURSOR_KEY) or {}
        # A cursor of another log (the database was replaced) means nothing for this one.
        # acked_seq: the last seq of this log the hub holds as the same event (everything after is pending).
        self.acked_seq: int = cursor.get("acked_seq", 0) if cursor.get("log_id") == event_log.log_id else 0
        self.hub_acked_seq: int | None = None  # what the hub last said it holds of this log; None: not asked
        previous = event_log.get_state(STATUS_KEY) or {}
        self.last_success_at: str | None = previous.get("last_success_at")
        self.last_error: str | None = None
        self._previous_status = previous
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
        held = "the hub did not answer about" if hub is None else f"hub holds seq {hub} of"
        text = (
            f"sent {self.sent_events} {_plural(self.sent_events, 'event')} in {self.sent_batches} "
            f"{_plural(self.sent_batches, 'batch')}; {held} log {self.log.log_id}; "
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
            seqs: list[int] = []
            body = batch_body(self.client.device_id, self.log.log_id, [])
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

    def _signed(self, request: Callable[[], T]) -> T:
        return self.signer.signed(request)

    def _refusal(self, refused: HubRefused) -> str:
        return self.signer.refusal(refused)

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

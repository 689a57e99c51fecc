"""Start-up that does not grow with the log: the flow's state and the window's figures, saved beside the
log (its ``state`` table) at a seq, verified against the hash chain when read back.

A checkpoint names the seq it was taken at and that event's hash. At start it is used only when the
event at that seq is in the log with that hash, its hash is right, and every event after it links to
the one before (the tail that is replayed anyway); the flow then rebuilds from the checkpoint plus the
events after it, the figures likewise. Anything else (no checkpoint, unreadable, another version, a
seq the log does not have, a hash that does not match, a state the flow does not accept) is logged and
the whole log is replayed, as before checkpoints: a checkpoint can make start-up faster, never
different. The kiosk saves one every ``CHECKPOINT_EVERY`` events, after a full replay, and when it
closes; tests/test_flow_stateful.py proves the flow from a checkpoint equals the flow from the log.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from core.events import event_hash
from core.store import EventLog

log = logging.getLogger(__name__)

CHECKPOINT_KEY = "kiosk_checkpoint"
VERSION = 2  # 2: the flow keeps the level of the 差评 awaiting its detail (rating_corrected)
CHECKPOINT_EVERY = 1000  # events: the most a start replays beyond the checkpoint


@dataclass(frozen=True)
class Checkpoint:
    seq: int  # the last event the state includes
    flow: dict[str, Any]  # Flow.durable_state()
    stats: dict[str, Any]  # WindowStats.snapshot()


class CheckpointError(ValueError):
    """Why a saved checkpoint cannot be used."""


def save(event_log: EventLog, seq: int, flow: dict[str, Any], stats: dict[str, Any]) -> None:
    """Record the state as of ``seq`` (the log's head when the flow and figures have followed it)."""
    event = event_log.get(seq)
    if event is None:
        return  # an empty log: nothing to save time on
    event_log.set_state(
        CHECKPOINT_KEY, {"version": VERSION, "seq": seq, "hash": event["hash"], "flow": flow, "stats": stats}
    )


def load(event_log: EventLog) -> Checkpoint | None:
    """The saved checkpoint if it can be trusted, else None (and why, logged): replay the whole log."""
    try:
        return _verified(event_log)
    except CheckpointError as e:
        log.warning("checkpoint not used (%s): replaying the whole log", e)
        return None


def _verified(event_log: EventLog) -> Checkpoint | None:
    try:
        saved = event_log.get_state(CHECKPOINT_KEY)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"unreadable: {e}") from None
    if saved is None:
        return None
    if not isinstance(saved, dict) or saved.get("version") != VERSION:
        raise CheckpointError("not a checkpoint of this version")
    seq, hash_ = saved.get("seq"), saved.get("hash")
    if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(hash_, str):
        raise CheckpointError("no seq and hash")
    flow, stats = saved.get("flow"), saved.get("stats")
    if not isinstance(flow, dict) or not isinstance(stats, dict):
        raise CheckpointError("no flow or figures")
    anchor = event_log.get(seq)
    if anchor is None:
        raise CheckpointError(f"the log has no event {seq}")
    if anchor["hash"] != hash_ or event_hash(anchor) != hash_:
        raise CheckpointError(f"event {seq} does not have the checkpoint's hash")
    previous = hash_
    for event in event_log.events_after(seq):
        if event["prev_hash"] != previous or event_hash(event) != event["hash"]:
            raise CheckpointError(f"the chain breaks at event {event['seq']}")
        previous = event["hash"]
    return Checkpoint(seq=seq, flow=flow, stats=stats)

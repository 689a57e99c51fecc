"""The 差评 item's life (seed 第十三条, 第十四条) as a pure state machine over its action record.

open → callback (回访, reached or not; may be repeated) → rectify (整改) → close (feedback to the rater).
复核: request_review (the staff member's reason, recorded by the section) → review_opinion (the section's
first opinion) → review_decide (supervisor only): adopted returns the item where it was; not adopted
marks it 不属实 (``not_adopted``): the rating stays, marked, and drops out of the figures. One 复核 per
item. A wrong role is refused before a wrong order (403 before 409).
改评: when the citizen corrected the 差评 to a good level on the kiosk (``rating_corrected``, docs/flow.md),
the hub's ingest appends ``withdraw`` (role ``system``): the item leaves the open list as ``withdrawn``,
kept with its record. Only the system takes it, and not on a finished item. No I/O here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .roles import DEPT, SUPERVISOR

OPEN, CALLED, RECTIFIED, CLOSED, REVIEW, NOT_ADOPTED, WITHDRAWN = (
    "open",
    "called",
    "rectified",
    "closed",
    "review",
    "not_adopted",
    "withdrawn",
)
STATUSES = (OPEN, CALLED, RECTIFIED, CLOSED, REVIEW, NOT_ADOPTED, WITHDRAWN)
FINISHED = frozenset({CLOSED, NOT_ADOPTED, WITHDRAWN})  # no deadline runs for these
STATUS_LABELS = {
    OPEN: "待回访",
    CALLED: "已回访",
    RECTIFIED: "已整改",
    CLOSED: "已办结",
    REVIEW: "复核中",
    NOT_ADOPTED: "不属实",
    WITHDRAWN: "已改评撤销",
}

CALLBACK, RECTIFY, CLOSE, REQUEST_REVIEW, REVIEW_OPINION, REVIEW_DECIDE = (
    "callback",
    "rectify",
    "close",
    "request_review",
    "review_opinion",
    "review_decide",
)
ACTIONS = (CALLBACK, RECTIFY, CLOSE, REQUEST_REVIEW, REVIEW_OPINION, REVIEW_DECIDE)
WITHDRAW = "withdraw"  # the system's, at ingest: the rater corrected the 差评 to a good level
SYSTEM = "system"  # the role of what the hub itself appends (never a user's)
SYSTEM_USER = "kiosk"  # by_user of a withdraw: the rater's own correction at the kiosk
ACTION_LABELS = {
    CALLBACK: "回访",
    RECTIFY: "整改",
    CLOSE: "办结反馈",
    REQUEST_REVIEW: "申请复核",
    REVIEW_OPINION: "科室初审意见",
    REVIEW_DECIDE: "督查复核决定",
    WITHDRAW: "评价人改评（撤销差评）",
}
# Who may take each action (the item must also be in the user's scope).
ACTION_ROLES = {
    CALLBACK: frozenset({DEPT, SUPERVISOR}),
    RECTIFY: frozenset({DEPT, SUPERVISOR}),
    CLOSE: frozenset({DEPT, SUPERVISOR}),
    REQUEST_REVIEW: frozenset({DEPT, SUPERVISOR}),
    REVIEW_OPINION: frozenset({DEPT, SUPERVISOR}),
    REVIEW_DECIDE: frozenset({SUPERVISOR}),
    WITHDRAW: frozenset({SYSTEM}),
}
MAX_NOTE_CHARS = 2000


class Refused(Exception):
    """An action that may not be taken: ``status`` 403 (role), 409 (order) or 422 (input)."""

    def __init__(self, status: int, error: str, detail: str):
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


@dataclass(frozen=True)
class ItemState:
    status: str = OPEN
    before_review: str | None = None  # where an adopted 复核 returns the item
    opinion: bool | None = None  # the section's first opinion during a 复核
    reviewed: bool = False  # a 复核 was decided already
    reached: bool | None = None  # the last 回访's outcome


def check_input(action: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The payload to record for ``action`` from a request's fields; Refused 422 on bad input."""
    if action not in ACTIONS:
        raise Refused(422, "bad_action", f"action must be one of {', '.join(ACTIONS)}")
    note = fields.get("note", "")
    if note is None:
        note = ""
    if not isinstance(note, str) or len(note) > MAX_NOTE_CHARS or "\x00" in note:
        raise Refused(422, "bad_note", f"note: text of at most {MAX_NOTE_CHARS} characters")
    note = note.strip()
    payload: dict[str, Any] = {"note": note}
    if action in (RECTIFY, REQUEST_REVIEW) and not note:
        raise Refused(422, "note_required", f"{action}: a note saying what was done or why is required")
    flag = {CALLBACK: "reached", REVIEW_OPINION: "adopt", REVIEW_DECIDE: "adopt"}.get(action)
    if flag is not None:
        value = fields.get(flag)
        if not isinstance(value, bool):
            raise Refused(422, f"{flag}_required", f"{action}: {flag} must be true or false")
        payload[flag] = value
    return payload


def step(state: ItemState, action: str, role: str, payload: Mapping[str, Any]) -> ItemState:
    """The state after ``action`` by a user of ``role``; Refused 403 or 409 when not allowed."""
    if role not in ACTION_ROLES.get(action, ()):
        raise Refused(403, "forbidden", f"a {role} user may not {action}")
    s = state.status
    if action == CALLBACK and s in (OPEN, CALLED):
        return replace(state, status=CALLED, reached=payload["reached"])
    if action == RECTIFY and s == CALLED:
        return replace(state, status=RECTIFIED)
    if action == CLOSE and s == RECTIFIED:
        return replace(state, status=CLOSED)
    if action == REQUEST_REVIEW and s in (OPEN, CALLED, RECTIFIED) and not state.reviewed:
        return replace(state, status=REVIEW, before_review=s, opinion=None)
    if action == REVIEW_OPINION and s == REVIEW and state.opinion is None:
        return replace(state, opinion=payload["adopt"])
    if action == WITHDRAW and s not in FINISHED:
        return replace(state, status=WITHDRAWN, before_review=None)
    if action == REVIEW_DECIDE and s == REVIEW and state.opinion is not None:
        status = (state.before_review or OPEN) if payload["adopt"] else NOT_ADOPTED
        return replace(state, status=status, before_review=None, reviewed=True)
    raise Refused(409, "wrong_order", f"{action} is not possible while the item is {s}")


def replay(actions: Iterable[tuple[str, str, Mapping[str, Any]]]) -> ItemState:
    """The state after a recorded history of (action, role, payload); the record only holds steps
    that were allowed, so this never refuses on a sound record."""
    state = ItemState()
    for action, role, payload in actions:
        state = step(state, action, role, payload)
    return state


def allowed_actions(state: ItemState, role: str) -> list[str]:
    """The actions ``role`` may take now, for the console's buttons."""
    sample = {"reached": True, "adopt": True, "note": "x"}
    allowed = []
    for action in ACTIONS:
        try:
            step(state, action, role, sample)
        except Refused:
            continue
        allowed.append(action)
    return allowed

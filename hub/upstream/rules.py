"""The outbox's rules, without I/O: the state machine of an upward record, backoff with jitter,
Retry-After, and the circuit breaker that stops hammering a target that is down.

States (docs/upstream.md):

- ``awaiting_detail``: a window 差评 whose reasons (its rating_detail event) have not reached the hub;
- ``pending``: to be sent; ``failing``: sent, no usable answer (transport, 5xx, 429, a broken answer),
  retried with backoff, never dropped;
- ``sent``: the target holds it (final);
- ``rejected``: the target refused it (final until a person resends it after fixing the cause);
- ``needs_linkage``: a required field is missing or unusable (no case number, no item code…): waits for
  a person to link it to a case number, or to mark it not reportable with a reason;
- ``not_reportable``: a person decided it cannot be reported, with the reason (final).
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass, replace
from datetime import datetime

AWAITING_DETAIL = "awaiting_detail"
PENDING = "pending"
FAILING = "failing"
SENT = "sent"
REJECTED = "rejected"
NEEDS_LINKAGE = "needs_linkage"
NOT_REPORTABLE = "not_reportable"
STATUSES = (PENDING, FAILING, SENT, REJECTED, NEEDS_LINKAGE, NOT_REPORTABLE, AWAITING_DETAIL)
SENDABLE = (PENDING, FAILING)
FINAL = (SENT, NOT_REPORTABLE)

# What happens to a record -> {from state: to state}. Anything not listed is refused.
TRANSITIONS: dict[str, dict[str, str]] = {
    # the sender
    "accepted": {PENDING: SENT, FAILING: SENT},
    "refused": {PENDING: REJECTED, FAILING: REJECTED},
    "failed": {PENDING: FAILING, FAILING: FAILING},
    "incomplete": {PENDING: NEEDS_LINKAGE, FAILING: NEEDS_LINKAGE},
    # the hub's ingest
    "detail_arrived": {AWAITING_DETAIL: PENDING},
    # a person (appended actions with who, when and why)
    "link": {NEEDS_LINKAGE: PENDING, REJECTED: PENDING},
    "not_reportable": {NEEDS_LINKAGE: NOT_REPORTABLE, REJECTED: NOT_REPORTABLE},
    "resend": {REJECTED: PENDING, NEEDS_LINKAGE: PENDING},
    "retry": {FAILING: PENDING},
}
PERSON_ACTIONS = ("link", "not_reportable", "resend", "retry")


class TransitionError(ValueError):
    """The action does not apply to a record in this state."""


def next_status(status: str, what: str) -> str:
    """The status after ``what`` happens to a record in ``status``; TransitionError if it cannot."""
    to = TRANSITIONS.get(what, {}).get(status)
    if to is None:
        raise TransitionError(f"{what!r} does not apply to a record that is {status}")
    return to


# --- backoff -------------------------------------------------------------------------------------------

BASE_S = 2.0
CAP_S = 600.0
MAX_RETRY_AFTER_S = 3600.0


def backoff_s(attempts: int, jitter: float, *, base_s: float = BASE_S, cap_s: float = CAP_S) -> float:
    """Seconds before the next try after ``attempts`` failed ones: exponential, capped, with "equal
    jitter" (``jitter`` in [0, 1)): half the step is fixed, half random, so hub processes that failed
    together do not retry together, and the wait never collapses to nothing."""
    step = min(cap_s, base_s * 2 ** max(0, min(attempts, 64) - 1))
    return step / 2 + step / 2 * jitter


def retry_after_s(value: str | None, now: datetime) -> float | None:
    """A Retry-After header (delta-seconds or an HTTP date) as seconds from ``now`` (aware), bounded;
    None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None or when.tzinfo is None:
            return None
        seconds = (when - now).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def delay_after_failure(
    attempts: int, jitter: float, retry_after: float | None, base_s: float = BASE_S
) -> float:
    """The wait before the next try: the backoff, but never sooner than the target asked."""
    delay = backoff_s(attempts, jitter, base_s=base_s)
    return max(delay, retry_after) if retry_after is not None else delay


# --- circuit breaker ---------------------------------------------------------------------------------

FAILURES_TO_OPEN = 5
OPEN_S = 30.0
MAX_OPEN_S = 600.0


@dataclass(frozen=True)
class Circuit:
    """Closed: send. Open until ``open_until``: send nothing. After that, half-open: one probe batch; its
    success closes the circuit, its failure opens it again for twice as long (up to MAX_OPEN_S)."""

    failures: int = 0  # consecutive failed batches
    open_until: float | None = None  # monotonic seconds
    open_s: float = OPEN_S
    base_open_s: float = OPEN_S  # the first opening's length, again after a success

    @property
    def is_open(self) -> bool:
        return self.open_until is not None

    def allows(self, now: float) -> bool:
        return self.open_until is None or now >= self.open_until

    def state(self, now: float) -> str:
        if self.open_until is None:
            return "closed"
        return "open" if now < self.open_until else "half-open"

    def after_success(self) -> Circuit:
        return Circuit(open_s=self.base_open_s, base_open_s=self.base_open_s)

    def after_failure(self, now: float) -> Circuit:
        failures = self.failures + 1
        if self.open_until is not None:  # the half-open probe failed
            open_s = min(MAX_OPEN_S, self.open_s * 2)
            return replace(self, failures=failures, open_until=now + open_s, open_s=open_s)
        if failures >= FAILURES_TO_OPEN:
            return replace(self, failures=failures, open_until=now + self.open_s)
        return replace(self, failures=failures)

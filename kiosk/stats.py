"""This window's 满意率 and rating count per month, from the local log (公开透明 on the ready page).

满意率 = ratings of 基本满意 or better / all ratings (docs/protocol.md §6). A month is the local calendar month in
the event's own ``at`` timestamp. The counts follow the log incrementally: ``update_from`` reads only
the ratings written since its last call, so the ready page can refresh after every rating for free.
A ``rating_corrected`` (a 差评 changed on its reasons page) counts the corrected level instead, in the
rating's own month: the figures remember the level of the last 差评 until its rating_detail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.domain import check_satisfaction, is_bad, is_satisfied

if TYPE_CHECKING:
    from core.store import EventLog


@dataclass(frozen=True)
class MonthStats:
    month: str  # "2026-11"
    count: int
    satisfied: int

    @property
    def satisfaction_rate(self) -> float | None:
        """满意率 as a fraction; None without ratings (nothing to show, not 0 %)."""
        return self.satisfied / self.count if self.count else None


COUNTED_TYPES = ("rating", "rating_corrected", "rating_detail")


class WindowStats:
    """Rating counts of one window, by month."""

    def __init__(self, window: str):
        self.window = window
        self.seen_seq = 0  # the highest seq already counted
        self._months: dict[str, list[int]] = {}  # month -> [count, satisfied]
        # The 差评 of this window that may still be corrected: [rating seq, month, level], or None.
        self._correctable: list[Any] | None = None

    def add(self, event: dict[str, Any]) -> None:
        """Count one event of the log (anything but a rating of this window is passed over)."""
        if event["seq"] <= self.seen_seq:
            return  # already counted: counting twice would alter the published figure
        self.seen_seq = event["seq"]
        payload = event["payload"]
        if event["type"] == "rating_corrected":
            self._correct(payload)
            return
        if event["type"] == "rating_detail":
            self._correctable = None
            return
        if event["type"] != "rating":
            return
        self._correctable = None  # a new rating: the kiosk wrote the last 差评's detail before it
        if payload["window"] != self.window:
            return
        month, level = event["at"][:7], payload["satisfaction"]
        counts = self._months.setdefault(month, [0, 0])
        counts[0] += 1
        counts[1] += is_satisfied(level)
        if is_bad(level):
            self._correctable = [event["seq"], month, level]

    def _correct(self, payload: dict[str, Any]) -> None:
        """The 差评 counted as its corrected level from now on (same month, same count)."""
        found = self._correctable
        if found is None or found[0] != payload["rating_seq"] or found[1] not in self._months:
            return
        counts = self._months[found[1]]
        counts[1] += is_satisfied(payload["satisfaction"]) - is_satisfied(found[2])
        found[2] = payload["satisfaction"]

    def update_from(self, log: EventLog) -> None:
        """Count the ratings written to ``log`` since the last call."""
        for event in log.events_after(self.seen_seq, types=COUNTED_TYPES):
            self.add(event)

    def snapshot(self) -> dict[str, Any]:
        """The counts as JSON-able data, for a checkpoint."""
        months = {m: list(c) for m, c in self._months.items()}
        correctable = list(self._correctable) if self._correctable else None
        return {"window": self.window, "months": months, "correctable": correctable}

    def restore(self, snapshot: dict[str, Any], seq: int) -> None:
        """Take over a ``snapshot()`` that counted every event up to ``seq``; ValueError if it is not one."""
        months = snapshot.get("months")
        if snapshot.get("window") != self.window or not isinstance(months, dict):
            raise ValueError("not this window's figures")
        parsed = {}
        for month, counts in months.items():
            ok = (
                isinstance(counts, list)
                and len(counts) == 2
                and all(type(c) is int and c >= 0 for c in counts)
            )
            if not (isinstance(month, str) and ok and counts[1] <= counts[0]):
                raise ValueError(f"bad figures for {month!r}")
            parsed[month] = list(counts)
        correctable = snapshot.get("correctable")
        if correctable is not None:
            ok = isinstance(correctable, list) and len(correctable) == 3
            if not ok or type(correctable[0]) is not int or correctable[1] not in parsed:
                raise ValueError("bad correctable 差评")
            check_satisfaction(correctable[2])
        self._months, self.seen_seq, self._correctable = parsed, seq, correctable

    def month(self, month: str) -> MonthStats:
        """The figures for ``month`` ("YYYY-MM", local time), zero when nothing was rated."""
        count, satisfied = self._months.get(month, (0, 0))
        return MonthStats(month=month, count=count, satisfied=satisfied)

"""Ingest of ``rating_corrected`` events (a 差评 changed by the rater on the kiosk's reasons page, before
its rating_detail: docs/flow.md), in the transaction that stores them.

- The ratings row takes the corrected level, and ``corrected_from`` keeps the level first given; only
  while the row is a 差评 awaiting its detail (``hub.ratings.correctable``), the same rule
  ``hub.derived.derive_ratings`` applies, so ``kiosk hub verify`` derives the same row.
- When the detail arrives for a 差评 corrected to a good level, its desk item leaves the open list
  through a ``withdraw`` appended to its record (hub.desk.store.withdraw_window_items), never deleted.
- The upward record needs nothing: it waits for the detail and is mapped from the ratings row at send
  time, so it carries the corrected level.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, select, update

from .desk.store import withdraw_window_items
from .ratings import correction_values, detail_values
from .schema import ratings

log = logging.getLogger(__name__)
GOOD_MIN = 3  # 基本满意 and better are not 差评 (core.domain.is_bad), in SQL


def apply_corrections(
    conn, device_id: str, log_id: str, accepted: Sequence[dict[str, Any]], now: str
) -> None:
    """Follow the batch's corrections; call after its ratings are inserted and before its details are
    applied (a correction comes before its rating's detail in the log)."""
    key = (ratings.c.device_id == device_id) & (ratings.c.log_id == log_id)
    detailed: set[int] = set()  # ratings whose detail came earlier in this batch: no correction after it
    settled: list[int] = []  # ratings whose detail is in this batch
    for e in accepted:
        if e["type"] == "rating_detail":
            found = detail_values(e)
            if found is not None:
                detailed.add(found[0])
                settled.append(found[0])
        elif e["type"] == "rating_corrected":
            found_correction = correction_values(e)
            if found_correction is None:
                log.warning(
                    "device %s log %s seq %d: rating_corrected payload unusable; stored, not applied",
                    device_id,
                    log_id,
                    e["seq"],
                )
                continue
            rating_seq, level = found_correction
            if rating_seq in detailed:
                continue
            first = func.coalesce(ratings.c.corrected_from, ratings.c.satisfaction)
            # Only the log's newest rating before the correction (this batch's are inserted already).
            newest = select(func.max(ratings.c.seq)).where(key & (ratings.c.seq < e["seq"])).scalar_subquery()
            conn.execute(
                update(ratings)
                .where(
                    key
                    & (ratings.c.seq == rating_seq)
                    & (ratings.c.seq == newest)
                    & ratings.c.reasons.is_(None)
                    & (first < GOOD_MIN)
                )
                .values(satisfaction=level, corrected_from=first)
            )
    if settled:
        # The detail closes the 差评's page: its level is final. Not yet applied, so reasons is NULL.
        good = conn.execute(
            select(ratings.c.seq).where(
                and_(
                    key,
                    ratings.c.seq.in_(sorted(set(settled))),
                    ratings.c.reasons.is_(None),
                    ratings.c.corrected_from.is_not(None),
                    ratings.c.satisfaction >= GOOD_MIN,
                )
            )
        ).scalars()
        withdraw_window_items(conn, device_id, log_id, list(good), now)

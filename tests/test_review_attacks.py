"""Attacks on 改评价, the console's shared sessions and throttle, ``--workers`` and the progress bars, as a
hostile device, a hostile console user and an unlucky operator would make them, on real parts (a real
hub store on SQLite, a real hub on 127.0.0.1). Each test names the attack; a defect found here is fixed
with its test, or left as a strict xfail that says what remains."""

from __future__ import annotations

import figures_data as data
import pytest

from hub.figures.store import FigureStore
from hub.storage import HubStore, database_url
from hub.verify import run_checks

LOG = "00000000-0000-4000-8000-00000000a77a"
W = data.W03


def _case(n: int) -> tuple[str, str, dict]:
    return ("case_opened", data.t("02", "09:00:00"), data.case(f"C{n}", "I1"))


def _rating(case_seq: int, level: int) -> tuple[str, str, dict]:
    return (
        "rating",
        data.t("02", "09:01:00"),
        data.rating(case_seq, "0371", "王晓燕", "03", f"C{case_seq}", "I1", level),
    )


def _corrected(rating_seq, level) -> tuple[str, str, dict]:
    return (
        "rating_corrected",
        data.t("02", "09:01:10"),
        {"rating_seq": rating_seq, "satisfaction": level, "input": "touch"},
    )


def _detail(rating_seq: int) -> tuple[str, str, dict]:
    return (
        "rating_detail",
        data.t("02", "09:01:20"),
        {"rating_seq": rating_seq, "reasons": [], "contact_sealed": None},
    )


# A hostile device's logs: each is chained correctly, so the hub takes every event; what it may not do is
# let the batches decide what the tables hold. Seq 1 is the case, seq 2 (or 3) the rating.
HOSTILE_LOGS = {
    "a correction naming a rating later in the log": [_case(1), _corrected(3, 5), _rating(1, 1), _detail(3)],
    "a detail naming a rating later in the log": [
        _case(1),
        _detail(3),
        _rating(1, 1),
        _corrected(3, 5),
        _detail(3),
    ],
    "a forward detail alone": [_case(1), _detail(3), _rating(1, 1)],
    "good, then bad again, then the detail": [
        _case(1),
        _rating(1, 1),
        _corrected(2, 5),
        _corrected(2, 1),
        _detail(2),
    ],
    "satisfaction true": [_case(1), _rating(1, 1), _corrected(2, True), _detail(2)],
    "satisfaction '5'": [_case(1), _rating(1, 1), _corrected(2, "5"), _detail(2)],
    "satisfaction 0": [_case(1), _rating(1, 1), _corrected(2, 0), _detail(2)],
    "satisfaction 6": [_case(1), _rating(1, 1), _corrected(2, 6), _detail(2)],
    "after its detail": [_case(1), _rating(1, 1), _detail(2), _corrected(2, 5)],
    "twice, and two details": [
        _case(1),
        _rating(1, 1),
        _corrected(2, 5),
        _corrected(2, 4),
        _detail(2),
        _detail(2),
    ],
    "of a good rating": [_case(1), _rating(1, 5), _corrected(2, 1), _detail(2)],
    "of the case, not the rating": [_case(1), _rating(1, 1), _corrected(1, 5), _detail(2)],
    "naming itself": [_case(1), _rating(1, 1), _corrected(3, 5), _detail(2)],
    "rating_seq absent": [_case(1), _rating(1, 1), _corrected(None, 5), _detail(2)],
}


@pytest.mark.parametrize("name", sorted(HOSTILE_LOGS))
def test_a_hostile_devices_corrections_give_the_same_tables_and_figures_whatever_the_batches(tmp_path, name):
    """Found: a rating_corrected (or rating_detail) naming a rating later in the same upload was applied
    by the ingest (which inserts the batch's ratings first) but not by ``derive_ratings`` nor the figures'
    fold (which read the log in order), so ``kiosk hub verify`` failed after one upload and passed after
    another. Fixed in hub.ratings: a reference must name an earlier seq."""
    batch = data.chain(LOG, HOSTILE_LOGS[name])
    for cut in range(1, len(batch) + 1):
        store = HubStore(database_url(tmp_path / f"hub{cut}", None))
        try:
            store.add_device(W)
            figures = FigureStore(store.engine)
            for lo in range(0, len(batch), cut):
                store.ingest(W, LOG, batch[lo : lo + cut])
                figures.refresh()
            assert [(r.name, r.first) for r in run_checks(store) if not r.ok] == [], cut
            assert figures.verify() == [], cut
        finally:
            store.close()

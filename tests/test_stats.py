"""This window's monthly 满意率 and count, followed incrementally from a real event log."""

import pytest

from core.store import EventLog
from kiosk.stats import MonthStats, WindowStats


def rating(satisfaction: int, window: str = "03") -> dict:
    return {
        "case_seq": 1,
        "staff_no": "0371",
        "staff_name": "王晓燕",
        "window": window,
        "ticket_no": None,
        "case_no": None,
        "item_code": None,
        "item_name": None,
        "satisfaction": satisfaction,
        "input": "touch",
    }


def event(seq: int, at: str, satisfaction: int, window: str = "03") -> dict:
    return {"seq": seq, "type": "rating", "at": at, "payload": rating(satisfaction, window)}


@pytest.fixture
def log(tmp_path):
    with EventLog(tmp_path / "kiosk.db") as log:
        yield log


def test_satisfied_means_basically_satisfied_or_better(log):
    for satisfaction in (5, 4, 3, 2, 1, 5):
        log.append("rating", rating(satisfaction))
    stats = WindowStats("03")
    stats.update_from(log)
    month = log.get(1)["at"][:7]
    assert stats.month(month) == MonthStats(month, count=6, satisfied=4)
    assert stats.month(month).satisfaction_rate == pytest.approx(4 / 6)


def test_only_ratings_of_this_window_count(log):
    log.append("rating", rating(5, window="04"))
    log.append("staff_signout", {"staff_no": "0371"})
    log.append("rating", rating(1))
    stats = WindowStats("03")
    stats.update_from(log)
    assert stats.month(log.get(1)["at"][:7]) == MonthStats(log.get(1)["at"][:7], count=1, satisfied=0)


def test_updates_read_only_what_is_new_and_never_count_twice(log):
    stats = WindowStats("03")
    log.append("rating", rating(5))
    stats.update_from(log)
    month = log.get(1)["at"][:7]
    stats.update_from(log)
    stats.add(log.get(1))  # the same event handed over again
    assert stats.month(month).count == 1
    log.append("rating", rating(2))
    stats.update_from(log)
    assert (stats.month(month).count, stats.month(month).satisfied, stats.seen_seq) == (2, 1, 2)


def test_months_are_kept_apart_by_the_local_time_of_each_event():
    stats = WindowStats("03")
    stats.add(event(1, "2026-10-31T23:59:59.999+08:00", 1))
    stats.add(event(2, "2026-11-01T00:00:00.000+08:00", 5))
    stats.add(event(3, "2026-11-15T10:00:00.000+08:00", 3))
    assert stats.month("2026-10") == MonthStats("2026-10", 1, 0)
    assert stats.month("2026-11") == MonthStats("2026-11", 2, 2)


def test_a_month_without_ratings_has_no_rate_rather_than_zero():
    empty = WindowStats("03").month("2026-11")
    assert (empty.count, empty.satisfaction_rate) == (0, None)


def test_a_corrected_rating_counts_as_its_corrected_level_in_its_own_month(log):
    first = log.append("rating", rating(1))
    stats = WindowStats("03")
    stats.update_from(log)
    month = first["at"][:7]
    assert stats.month(month) == MonthStats(month, count=1, satisfied=0)
    log.append("rating_corrected", {"rating_seq": first["seq"], "satisfaction": 2, "input": "touch"})
    log.append("rating_corrected", {"rating_seq": first["seq"], "satisfaction": 4, "input": "keypad"})
    stats.update_from(log)
    assert stats.month(month) == MonthStats(month, count=1, satisfied=1)  # one rating, now good
    log.append("rating_detail", {"rating_seq": first["seq"], "reasons": [], "contact_sealed": None})
    log.append("rating_corrected", {"rating_seq": first["seq"], "satisfaction": 1, "input": "touch"})
    stats.update_from(log)  # after its detail a correction changes nothing (the kiosk writes none)
    assert stats.month(month) == MonthStats(month, count=1, satisfied=1)


def test_a_correction_after_a_checkpoint_of_the_figures_counts_too(log):
    first = log.append("rating", rating(2))
    stats = WindowStats("03")
    stats.update_from(log)
    saved = stats.snapshot()
    log.append("rating_corrected", {"rating_seq": first["seq"], "satisfaction": 5, "input": "touch"})
    resumed = WindowStats("03")
    resumed.restore(saved, first["seq"])
    resumed.update_from(log)
    whole = WindowStats("03")
    whole.update_from(log)
    month = first["at"][:7]
    assert resumed.month(month) == whole.month(month) == MonthStats(month, count=1, satisfied=1)
    with pytest.raises(ValueError):
        WindowStats("03").restore(saved | {"correctable": [first["seq"], "2099-01", 2]}, first["seq"])

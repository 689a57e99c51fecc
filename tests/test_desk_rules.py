"""The desk's pure rules: working-day deadlines, the item workflow, roles."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.desk import calendar as cal
from hub.desk import workflow as wf
from hub.desk.roles import ADMIN, DEPT, ROLES, SUPERVISOR, VIEWER, Principal, check_user_fields

OFFICIAL = cal.load(None)


def test_just_before_national_day_skips_the_holiday_and_counts_the_tiaoxiu_saturday():
    # 2026: 10-01…10-07 off, Saturday 10-10 worked (调休). Received Wednesday 09-30 = day 0.
    assert cal.deadline(OFFICIAL, date(2026, 9, 30), 5) == date(2026, 10, 13)
    assert OFFICIAL.is_workday(date(2026, 10, 10))


def test_received_on_a_tiaoxiu_saturday_counts_from_that_day():
    assert cal.deadline(OFFICIAL, date(2026, 10, 10), 5) == date(2026, 10, 16)
    assert cal.deadline(OFFICIAL, date(2026, 10, 10), 1) == date(2026, 10, 12)


def test_received_on_a_sunday_counts_from_monday():
    assert cal.deadline(OFFICIAL, date(2026, 11, 29), 5) == date(2026, 12, 4)


def test_a_year_the_package_does_not_know_raises_a_gap_naming_it():
    with pytest.raises(cal.CalendarGap) as e:
        cal.deadline(OFFICIAL, date(2026, 12, 28), 5)  # runs into 2027
    assert e.value.year == 2027 and "2027" in str(e.value)


def test_a_calendar_file_adds_a_year():
    text = '["2027"]\nholidays = ["2027-01-01"]\nworkdays = ["2027-01-02"]\n'
    from chinese_calendar import constants

    calendar = cal.build(constants.holidays, constants.workdays, cal.parse_calendar_file(text, "cal.toml"))
    # 12-28 Mon day 0; 29, 30, 31, (01-01 holiday), 01-02 Saturday worked.
    assert cal.deadline(calendar, date(2026, 12, 28), 4) == date(2027, 1, 2)
    with pytest.raises(cal.CalendarGap):
        calendar.is_workday(date(2028, 1, 3))


def test_calendar_file_load_from_disk(tmp_path):
    path = tmp_path / "calendar.toml"
    path.write_text('["2027"]\nholidays = []\n', encoding="utf-8")
    assert cal.load(path).is_workday(date(2027, 3, 1))


@pytest.mark.parametrize(
    "text, where",
    [
        ("2027 = 1", "[2027]"),
        ('["27"]\nholidays = []', "[27]"),
        ('["2027"]\nholiday = []', "holiday"),
        ('["2027"]\nholidays = ["2028-01-01"]', "holidays"),
        ('["2027"]\nholidays = "2027-01-01"', "holidays"),
        ('["2027"]\nholidays = ["2027-01-01"]\nworkdays = ["2027-01-01"]', "both"),
        ("[[", "not TOML"),
    ],
)
def test_a_bad_calendar_file_names_file_and_key(text, where):
    with pytest.raises(cal.CalendarFileError) as e:
        cal.parse_calendar_file(text, "cal.toml")
    assert "cal.toml" in str(e.value) and where in str(e.value)


days_2025_2026 = st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 11, 30))


@given(days_2025_2026, st.integers(min_value=1, max_value=10))
@settings(max_examples=300)
def test_deadline_is_the_nth_working_day_after_receipt(received, n):
    due = cal.deadline(OFFICIAL, received, n)
    between = [received + timedelta(days=i) for i in range(1, (due - received).days + 1)]
    assert sum(OFFICIAL.is_workday(d) for d in between) == n
    assert OFFICIAL.is_workday(due)
    assert OFFICIAL.working_days_left(received, due) == n


@given(days_2025_2026, days_2025_2026, st.integers(min_value=1, max_value=8))
@settings(max_examples=300)
def test_deadlines_never_go_backwards_and_the_overdue_cutoff_is_exact(a, b, n):
    first, second = sorted((a, b))
    assert cal.deadline(OFFICIAL, first, n) <= cal.deadline(OFFICIAL, second, n)
    today = second
    cutoff = OFFICIAL.first_received_due_on_or_after(today, n)
    assert (cal.deadline(OFFICIAL, first, n) < today) == (first < cutoff)


@given(days_2025_2026, days_2025_2026)
def test_days_left_is_zero_on_the_deadline_and_negative_after(today, due):
    left = OFFICIAL.working_days_left(today, due)
    assert (left < 0) == (today > due) or (left == 0)
    if today == due:
        assert left == 0


# --- workflow ----------------------------------------------------------------------------------

REACHED = {"reached": True, "note": ""}
ADOPT = {"adopt": True, "note": ""}
REJECT = {"adopt": False, "note": ""}


def run(*steps):
    state = wf.ItemState()
    for action, role, payload in steps:
        state = wf.step(state, action, role, payload)
    return state


def test_the_whole_life_of_an_item():
    state = run(
        ("callback", DEPT, {"reached": False}),
        ("callback", DEPT, REACHED),
        ("rectify", DEPT, {"note": "培训"}),
        ("close", DEPT, {"note": ""}),
    )
    assert state.status == wf.CLOSED and state.reached is True


def test_review_not_adopted_marks_the_item():
    state = run(
        ("request_review", DEPT, {"note": "误评"}),
        ("review_opinion", DEPT, REJECT),
        ("review_decide", SUPERVISOR, REJECT),
    )
    assert state.status == wf.NOT_ADOPTED


def test_review_adopted_returns_where_it_was_and_once_only():
    state = run(
        ("callback", DEPT, REACHED),
        ("request_review", DEPT, {"note": "误评"}),
        ("review_opinion", DEPT, ADOPT),
        ("review_decide", SUPERVISOR, ADOPT),
    )
    assert state.status == wf.CALLED
    with pytest.raises(wf.Refused) as e:
        wf.step(state, "request_review", DEPT, {"note": "again"})
    assert e.value.status == 409


def test_only_a_supervisor_decides_a_review_even_at_the_right_time():
    state = run(("request_review", DEPT, {"note": "x"}), ("review_opinion", DEPT, ADOPT))
    for role in (DEPT, ADMIN, VIEWER):
        with pytest.raises(wf.Refused) as e:
            wf.step(state, "review_decide", role, ADOPT)
        assert e.value.status == 403


def test_a_decision_needs_the_sections_opinion_first():
    state = run(("request_review", DEPT, {"note": "x"}))
    with pytest.raises(wf.Refused) as e:
        wf.step(state, "review_decide", SUPERVISOR, ADOPT)
    assert e.value.status == 409


@pytest.mark.parametrize(
    "action, fields, error",
    [
        ("callback", {}, "reached_required"),
        ("callback", {"reached": "yes"}, "reached_required"),
        ("rectify", {"note": "  "}, "note_required"),
        ("request_review", {}, "note_required"),
        ("review_opinion", {"adopt": 1}, "adopt_required"),
        ("close", {"note": "x" * 2001}, "bad_note"),
        ("close", {"note": 5}, "bad_note"),
        ("delete", {}, "bad_action"),
    ],
)
def test_bad_input_is_422(action, fields, error):
    with pytest.raises(wf.Refused) as e:
        wf.check_input(action, fields)
    assert (e.value.status, e.value.error) == (422, error)


PAYLOADS = {"reached": True, "adopt": False, "note": "n"}


@given(st.lists(st.tuples(st.sampled_from(wf.ACTIONS), st.sampled_from(ROLES), st.booleans()), max_size=12))
@settings(max_examples=400)
def test_any_sequence_refuses_cleanly_and_keeps_the_invariants(attempts):
    state = wf.ItemState()
    for action, role, flag in attempts:
        payload = {"reached": flag, "adopt": flag, "note": "n"}
        allowed = action in wf.allowed_actions(state, role)
        try:
            new = wf.step(state, action, role, payload)
        except wf.Refused as e:
            assert not allowed
            assert e.status == (403 if role not in wf.ACTION_ROLES[action] else 409)
            continue
        assert allowed
        assert new.status in wf.STATUSES
        if state.status in wf.FINISHED:
            pytest.fail(f"{action} changed a finished item")
        if new.status == wf.NOT_ADOPTED:
            assert action == "review_decide" and role == SUPERVISOR and payload["adopt"] is False
        state = new
    assert wf.allowed_actions(state, VIEWER) == [] and wf.allowed_actions(state, ADMIN) == []


# --- roles -------------------------------------------------------------------------------------


def test_scopes():
    dept = Principal("a", DEPT, "D1")
    assert dept.may_see_item("D1") and not dept.may_see_item("D2") and not dept.may_see_item(None)
    assert dept.item_scope() == "D1"
    sup = Principal("s", SUPERVISOR)
    assert sup.may_see_item(None) and sup.item_scope() is None
    for role in (ADMIN, VIEWER):
        p = Principal("x", role)
        assert not p.sees_items() and not p.may_see_item("D1") and not p.may_reveal_contact("D1")
    assert not Principal("d", DEPT, None).may_see_item(None)


def test_user_fields():
    assert check_user_fields(DEPT, None)
    assert check_user_fields(SUPERVISOR, "D1")
    assert check_user_fields("root", None)
    assert check_user_fields(DEPT, "D1") is None

"""The evaluation flow, rule by rule, recording into a real event log with a real roster."""

from pathlib import Path

import pytest

from core.store import EventLog
from kiosk.flow import (
    ALREADY_RATED_NOTICE,
    DEBOUNCE_S,
    NOT_SERVING_NOTICE,
    NOTICE_S,
    SWIPE_GUARD_S,
    UNKNOWN_CARD_NOTICE,
    WALKIN_WAIT_NOTICE,
    Flow,
    Staff,
)
from kiosk.roster import Roster, RosterEntry

WANG = Staff("0371", "王晓燕", "科员", b"\x89PNG wang")
LI = Staff("0372", "李明")
ROSTER = Roster([RosterEntry("26DEFAE7", WANG), RosterEntry("0006102437", LI)])
WANG_CARD, WANG_CARD_REVERSED, LI_CARD, UNKNOWN_CARD = "26DEFAE7", "E7FADE26", "0006102437", "12345678"
CASE = {"ticket_no": "A012", "case_no": "370211202611280012", "item_code": "11370211MB0000001X"}
CASE |= {"item_name": "不动产登记", "source": "queue"}


@pytest.fixture
def log(tmp_path: Path):
    with EventLog(tmp_path / "kiosk.db") as log:
        yield log


def make_flow(log: EventLog, now: float = 0.0, **options) -> Flow:
    settings = {"window": "03", "rating_timeout_s": 60, "thanks_s": 3, "reasons_timeout_s": 60} | options
    return Flow(
        record=log.append,
        find_staff=ROSTER.find,
        staff_by_no=ROSTER.by_staff_no,
        now=now,
        history=log.events_after(0),
        **settings,
    )


def recorded(log: EventLog, after: int = 0) -> list[tuple[str, dict]]:
    return [(e["type"], e["payload"]) for e in log.events_after(after)]


def types(log: EventLog, after: int = 0) -> list[str]:
    return [t for t, _ in recorded(log, after)]


def serving(log: EventLog, now: float = 0.0, **options) -> Flow:
    flow = make_flow(log, now, **options)
    flow.swipe(WANG_CARD, now)
    return flow


def rating_page(log: EventLog, now: float = 0.0, **options) -> Flow:
    flow = serving(log, now, **options)
    flow.rate_request(**CASE, now=now)
    return flow


# --- signing in and out ------------------------------------------------------------------------------


def test_nobody_signed_in_shows_paused_and_records_nothing(log):
    view = make_flow(log).view
    assert (view.page, view.staff, view.case, view.deadline) == ("paused", None, None, None)
    assert log.head_seq() == 0


def test_known_card_signs_in_and_the_same_card_in_another_form_signs_out(log):
    flow = make_flow(log)
    view = flow.swipe(WANG_CARD, 1)
    assert (view.page, view.staff) == ("ready", WANG)
    view = flow.swipe(WANG_CARD_REVERSED, 1 + SWIPE_GUARD_S)
    assert (view.page, view.staff) == ("paused", None)
    assert recorded(log) == [
        ("staff_signin", {"staff_no": "0371", "staff_name": "王晓燕"}),
        ("staff_signout", {"staff_no": "0371"}),
    ]


def test_another_known_card_switches_staff(log):
    flow = serving(log)
    view = flow.swipe(LI_CARD, 1)
    assert (view.page, view.staff) == ("ready", LI)
    assert recorded(log, 1) == [
        ("staff_signout", {"staff_no": "0371"}),
        ("staff_signin", {"staff_no": "0372", "staff_name": "李明"}),
    ]


def test_the_same_card_read_again_soon_is_a_card_lying_on_the_reader(log):
    flow = serving(log, 0)
    guard = SWIPE_GUARD_S
    assert flow.swipe(WANG_CARD, guard - 0.1).staff == WANG
    assert flow.swipe(WANG_CARD_REVERSED, 2 * guard - 0.2).staff == WANG  # each read holds it off again
    assert flow.swipe(WANG_CARD, 3 * guard).staff is None  # taken away and presented again: signs out
    assert flow.swipe(WANG_CARD, 4 * guard - 0.1).staff is None  # and it cannot sign straight back in
    assert flow.swipe(WANG_CARD, 5 * guard).staff == WANG
    assert types(log) == ["staff_signin", "staff_signout", "staff_signin"]


def test_another_card_switches_at_once_and_back(log):
    flow = serving(log, 0)
    assert flow.swipe(LI_CARD, 0.1).staff == LI
    assert flow.swipe(WANG_CARD, 0.2).staff == WANG
    assert types(log) == ["staff_signin", *["staff_signout", "staff_signin"] * 2]


def test_after_a_restart_the_card_guard_starts_again(log):
    serving(log, 0)
    flow = make_flow(log, now=1000)  # a new monotonic clock; the card may still lie on the reader
    assert flow.swipe(WANG_CARD, 1000 + SWIPE_GUARD_S - 0.1).staff == WANG
    assert flow.swipe(WANG_CARD, 1000 + 2 * SWIPE_GUARD_S).staff is None


def test_unknown_card_shows_a_notice_that_fades_and_changes_nothing(log):
    flow = serving(log)
    view = flow.swipe(UNKNOWN_CARD, 10)
    assert (view.page, view.staff, view.notice) == ("ready", WANG, UNKNOWN_CARD_NOTICE)
    assert flow.tick(10 + NOTICE_S - 0.1).notice == UNKNOWN_CARD_NOTICE
    assert flow.tick(10 + NOTICE_S).notice is None
    assert types(log) == ["staff_signin"]


def test_signing_out_with_an_open_case_skips_it_first(log):
    flow = rating_page(log)
    view = flow.swipe(WANG_CARD, 5)
    assert (view.page, view.case) == ("paused", None)
    assert recorded(log, 2) == [
        ("rating_skipped", {"case_seq": 2, "why": "signout"}),
        ("staff_signout", {"staff_no": "0371"}),
    ]


def test_switching_with_an_open_case_skips_it_and_the_new_member_is_ready(log):
    flow = rating_page(log)
    view = flow.swipe(LI_CARD, 5)
    assert (view.page, view.staff, view.case) == ("ready", LI, None)
    assert types(log, 2) == ["rating_skipped", "staff_signout", "staff_signin"]


# --- rate requests -----------------------------------------------------------------------------------


def test_rate_request_opens_a_case_and_shows_the_rate_page_with_a_countdown(log):
    flow = serving(log, 0)
    view = flow.rate_request(**CASE, now=7)
    assert (view.page, view.deadline, view.satisfaction) == ("rate", 67, None)
    assert view.case.seq == 2 and view.case.case_no == CASE["case_no"] and view.case.source == "queue"
    assert recorded(log, 1) == [("case_opened", CASE)]


def test_rate_request_fields_are_trimmed_and_empty_ones_are_null(log):
    flow = serving(log)
    flow.rate_request(ticket_no=" ", case_no=" X1 ", item_code="", item_name=None, source="scanner", now=1)
    assert recorded(log, 1) == [
        (
            "case_opened",
            {"ticket_no": None, "case_no": "X1", "item_code": None, "item_name": None, "source": "scanner"},
        )
    ]


def test_rate_request_from_an_unknown_source_is_refused(log):
    with pytest.raises(ValueError, match="source"):
        serving(log).rate_request(**(CASE | {"source": "walkin"}), now=1)


def test_new_rate_request_supersedes_the_open_case(log):
    flow = rating_page(log)
    view = flow.rate_request(**(CASE | {"case_no": "OTHER"}), now=5)
    assert (view.page, view.case.case_no, view.case.seq, view.deadline) == ("rate", "OTHER", 4, 65)
    assert recorded(log, 2) == [
        ("rating_skipped", {"case_seq": 2, "why": "superseded"}),
        ("case_opened", CASE | {"case_no": "OTHER"}),
    ]


def test_the_same_rate_request_again_is_the_same_visit(log):
    flow = rating_page(log)
    view = flow.rate_request(**CASE, now=5)
    assert (view.page, view.case.seq, view.deadline) == ("rate", 2, 60)
    assert flow.press(4, "touch", 6)
    flow.rate_request(**CASE, now=6.5)  # a double scan while the thanks page shows
    assert flow.view.page == "thanks"
    assert types(log) == ["staff_signin", "case_opened", "rating"]


def rate_and_finish(flow: Flow, now: float, case: dict = CASE, satisfaction: int = 5) -> None:
    """One citizen: the request, a press, the thanks page running its course."""
    flow.rate_request(**case, now=now)
    assert flow.press(satisfaction, "touch", now + 1)
    assert flow.tick(now + 10).page == "ready"


def test_a_rated_case_number_is_never_rated_again(log):
    flow = serving(log, 0)
    rate_and_finish(flow, 0)
    after = log.head_seq()
    view = flow.rate_request(**(CASE | {"ticket_no": "A099", "source": "scanner"}), now=20)
    assert (view.page, view.case, view.notice) == ("ready", None, ALREADY_RATED_NOTICE)
    assert not flow.press(1, "keypad", 21)
    assert recorded(log, after) == [
        ("case_opened", CASE | {"ticket_no": "A099", "source": "scanner"}),
        ("rating_skipped", {"case_seq": after + 1, "why": "already_rated"}),
    ]
    assert flow.tick(20 + NOTICE_S).notice is None


def test_rated_case_numbers_are_remembered_after_a_restart(log):
    rate_and_finish(serving(log, 0), 0)
    flow = make_flow(log, now=0)
    flow.rate_request(**CASE, now=1)
    assert (flow.view.page, flow.view.notice) == ("ready", ALREADY_RATED_NOTICE)
    assert types(log).count("rating") == 1


def test_a_case_that_went_unrated_may_be_asked_again(log):
    flow = rating_page(log, 0)
    flow.tick(60)  # timeout
    assert flow.rate_request(**CASE, now=61).page == "rate"
    assert flow.press(4, "touch", 62)


def test_an_already_rated_request_supersedes_a_waiting_case_and_spares_a_citizen_giving_reasons(log):
    flow = serving(log, 0)
    rate_and_finish(flow, 0)
    flow.rate_request(**(CASE | {"case_no": "NEXT"}), now=20)
    after = log.head_seq()
    flow.rate_request(**CASE, now=21)  # a request always closes the waiting case: the counter moved on
    assert recorded(log, after)[0] == ("rating_skipped", {"case_seq": after, "why": "superseded"})
    flow.rate_request(**(CASE | {"case_no": "THIRD"}), now=30)
    assert flow.press(1, "touch", 31)
    after = log.head_seq()
    view = flow.rate_request(**CASE, now=32)
    assert (view.page, view.notice) == ("reasons", ALREADY_RATED_NOTICE)
    assert types(log, after) == ["case_opened", "rating_skipped"]
    assert flow.submit_reasons(["101"], None, 33).page == "thanks"


def test_the_case_on_screen_scanned_again_is_the_same_visit_whatever_else_differs(log):
    flow = rating_page(log, 0)
    assert flow.press(1, "touch", 1)
    view = flow.rate_request(
        ticket_no=None, case_no=CASE["case_no"], item_code=None, item_name=None, source="scanner", now=2
    )
    assert (view.page, view.notice) == ("reasons", None)
    assert types(log) == ["staff_signin", "case_opened", "rating"]


def test_rated_case_numbers_are_remembered_up_to_a_bound(log, monkeypatch):
    monkeypatch.setattr("kiosk.flow.RATED_CASES_KEPT", 2)
    flow = serving(log, 0)
    for number, case_no in enumerate(["C1", "C2", "C3"]):
        rate_and_finish(flow, 20 * number, CASE | {"case_no": case_no})
    assert flow.rate_request(**(CASE | {"case_no": "C3"}), now=100).page == "ready"
    assert flow.rate_request(**(CASE | {"case_no": "C2"}), now=101).page == "ready"
    assert flow.rate_request(**(CASE | {"case_no": "C1"}), now=102).page == "rate"  # long forgotten


@pytest.mark.parametrize("pause", [True, False], ids=["paused", "nobody_signed_in"])
def test_rate_request_while_nobody_serves_leaves_an_unrated_trace(log, pause):
    flow = serving(log) if pause else make_flow(log)
    if pause:
        flow.pause(1)
    after = log.head_seq()
    view = flow.rate_request(**CASE, now=2)
    assert (view.page, view.case, view.notice) == ("paused", None, NOT_SERVING_NOTICE)
    why = "paused" if pause else "no_staff"
    assert recorded(log, after) == [
        ("case_opened", CASE),
        ("rating_skipped", {"case_seq": after + 1, "why": why}),
    ]
    assert not flow.press(5, "touch", 10)


# --- pressing ----------------------------------------------------------------------------------------


def test_press_records_the_rating_with_its_full_linkage_before_it_returns(log, tmp_path):
    flow = rating_page(log, 0)
    assert flow.press(5, "keypad", 1)
    with EventLog(tmp_path / "kiosk.db") as other_reader:
        rating = list(other_reader.events_after(2))
    linkage = {k: CASE[k] for k in ("ticket_no", "case_no", "item_code", "item_name")}
    expected = {"case_seq": 2, "staff_no": "0371", "staff_name": "王晓燕", "window": "03"} | linkage
    assert [(e["type"], e["payload"]) for e in rating] == [
        ("rating", expected | {"satisfaction": 5, "input": "keypad"})
    ]


@pytest.mark.parametrize("satisfaction", [5, 4, 3])
def test_a_good_rating_thanks_for_thanks_s_then_the_ready_page(log, satisfaction):
    flow = rating_page(log, 0)
    assert flow.press(satisfaction, "touch", 1)
    view = flow.view
    assert (view.page, view.satisfaction, view.deadline, view.case.seq) == ("thanks", satisfaction, 4, 2)
    assert flow.tick(3.9).page == "thanks"
    view = flow.tick(4)
    assert (view.page, view.case, view.satisfaction, view.deadline) == ("ready", None, None, None)


@pytest.mark.parametrize("satisfaction", [2, 1])
def test_a_bad_rating_asks_for_reasons_then_thanks(log, satisfaction):
    flow = rating_page(log, 0)
    assert flow.press(satisfaction, "touch", 1)
    assert (flow.view.page, flow.view.deadline) == ("reasons", 61)
    view = flow.submit_reasons(["201", "101", "201"], "sealed-phone", 20)
    assert (view.page, view.deadline, view.satisfaction) == ("thanks", 23, satisfaction)
    assert recorded(log, 3) == [
        ("rating_detail", {"rating_seq": 3, "reasons": ["201", "101"], "contact_sealed": "sealed-phone"})
    ]


def test_skipping_reasons_keeps_the_rating_and_records_an_empty_detail(log):
    flow = rating_page(log, 0)
    flow.press(1, "touch", 1)
    assert flow.skip_reasons(2).page == "thanks"
    assert recorded(log, 3) == [("rating_detail", {"rating_seq": 3, "reasons": [], "contact_sealed": None})]


def test_reasons_time_out_into_an_empty_detail_and_thanks(log):
    flow = rating_page(log, 0)
    flow.press(2, "touch", 1)
    assert flow.tick(60.9).page == "reasons"
    view = flow.tick(61)
    assert (view.page, view.deadline) == ("thanks", 64)
    assert recorded(log, 3) == [("rating_detail", {"rating_seq": 3, "reasons": [], "contact_sealed": None})]
    assert flow.tick(64).page == "ready"


@pytest.mark.parametrize(
    ("reasons", "contact"),
    [([], None), (["bad code!"], None), ([201], None), (["101"], "")],
    ids=["none", "bad_code", "not_text", "empty_contact"],
)
def test_submit_reasons_refuses_what_is_not_a_reason(log, reasons, contact):
    flow = rating_page(log, 0)
    flow.press(1, "touch", 1)
    with pytest.raises(ValueError):
        flow.submit_reasons(reasons, contact, 2)
    assert flow.view.page == "reasons"
    assert types(log, 3) == []


def test_reasons_outside_the_reasons_page_are_ignored(log):
    flow = rating_page(log, 0)
    flow.submit_reasons(["101"], None, 1)
    flow.skip_reasons(1)
    assert flow.view.page == "rate"
    assert types(log) == ["staff_signin", "case_opened"]


def test_one_rating_per_case(log):
    flow = rating_page(log, 0)
    assert flow.press(5, "touch", 1)
    assert not flow.press(1, "keypad", 2)
    flow.tick(4)
    assert not flow.press(1, "touch", 5)
    assert types(log).count("rating") == 1


def test_presses_right_after_the_page_appears_or_each_other_are_ignored(log):
    flow = rating_page(log, 10)
    assert not flow.press(5, "touch", 10 + DEBOUNCE_S - 0.01)
    assert not flow.press(5, "touch", 10 + 2 * DEBOUNCE_S - 0.02)  # too soon after the ignored one
    assert flow.press(1, "touch", 10 + 3 * DEBOUNCE_S)
    assert types(log, 2) == ["rating"]
    assert list(log.events_after(2))[0]["payload"]["satisfaction"] == 1


def test_the_rate_page_times_out_into_a_skip_never_a_rating(log):
    flow = rating_page(log, 0)
    assert flow.tick(59.9).page == "rate"
    assert flow.tick(60).page == "ready"
    assert not flow.press(5, "touch", 60.5)
    assert recorded(log, 2) == [("rating_skipped", {"case_seq": 2, "why": "timeout"})]


def test_a_press_after_the_deadline_is_too_late_even_before_the_tick(log):
    flow = rating_page(log, 0)
    assert not flow.press(5, "touch", 61)
    assert types(log, 2) == ["rating_skipped"]


def test_press_arguments_are_checked(log):
    flow = rating_page(log, 0)
    with pytest.raises(ValueError):
        flow.press(6, "touch", 1)
    with pytest.raises(ValueError):
        flow.press(5, "voice", 1)
    assert flow.press(5, "touch", 1)


@pytest.mark.parametrize("page", ["paused", "ready"])
def test_presses_without_an_open_case_are_ignored(log, page):
    flow = serving(log) if page == "ready" else make_flow(log)
    assert flow.view.page == page
    assert not flow.press(5, "keypad", 10)
    assert log.head_seq() == (page == "ready")


# --- pause and resume ---------------------------------------------------------------------------------


def test_pause_skips_the_open_case_and_resume_returns_to_ready(log):
    flow = rating_page(log)
    view = flow.pause(5)
    assert (view.page, view.case, view.staff) == ("paused", None, WANG)
    assert flow.pause(6).page == "paused"  # once is enough
    assert flow.resume(7).page == "ready"
    assert flow.resume(8).page == "ready"
    assert recorded(log, 2) == [
        ("rating_skipped", {"case_seq": 2, "why": "paused"}),
        ("window_paused", {}),
        ("window_resumed", {}),
    ]


def test_signing_in_while_paused_stays_paused_until_resume(log):
    flow = make_flow(log)
    flow.pause(1)
    assert flow.swipe(WANG_CARD, 2).page == "paused"
    assert flow.resume(3).page == "ready"


def test_pause_or_signout_lets_a_citizen_finish_the_reasons(log):
    flow = rating_page(log, 0)
    flow.press(1, "touch", 1)
    flow.pause(2)
    flow.swipe(WANG_CARD, 3)
    assert flow.view.page == "reasons"
    view = flow.submit_reasons(["301"], None, 4)
    assert view.page == "thanks"
    assert flow.tick(7).page == "paused"
    assert types(log, 3) == ["window_paused", "staff_signout", "rating_detail"]


def bad_rating_on_the_reasons_page(log: EventLog, **options) -> Flow:
    """A citizen who rated 不满意 at 1 (rating seq 3) and chooses reasons until 61. Unless told otherwise
    they count as busy however long between touches (the rule for an untouched page has its own tests)."""
    flow = rating_page(log, 0, **({"reasons_idle_s": 1000} | options))
    assert flow.press(1, "touch", 1)
    return flow


NEXT = CASE | {"ticket_no": "A013", "case_no": "NEXT"}


def test_a_rate_request_during_reasons_waits_for_the_citizen_and_their_thanks(log):
    flow = bad_rating_on_the_reasons_page(log)
    view = flow.rate_request(**NEXT, now=30)
    assert (view.page, view.case.seq, view.deadline) == ("reasons", 2, 61)  # not cut off
    assert recorded(log, 3) == [("case_opened", NEXT)]  # recorded at once, the 差评 detail still due
    assert not flow.press(2, "touch", 31)  # the tap meant for 提交评价 rates nobody
    view = flow.submit_reasons(["101"], None, 40)
    assert (view.page, view.case.seq, view.deadline) == ("thanks", 2, 43)
    assert flow.tick(42.9).page == "thanks"
    assert not flow.press(2, "touch", 42.95)
    view = flow.tick(43)
    assert (view.page, view.case.seq, view.case.case_no, view.deadline) == ("rate", 4, "NEXT", 103)
    assert not flow.press(5, "touch", 43 + DEBOUNCE_S / 2)  # the page just appeared
    assert flow.press(5, "touch", 44)
    assert types(log, 3) == ["case_opened", "rating_detail", "rating"]
    assert recorded(log, 5)[0][1]["case_seq"] == 4


def test_a_case_waiting_for_the_citizen_gets_its_full_countdown_from_when_it_shows(log):
    flow = bad_rating_on_the_reasons_page(log)
    flow.rate_request(**NEXT, now=2)
    assert flow.tick(61).page == "thanks"  # the reasons time out, then the thanks page runs its course
    assert flow.tick(64).deadline == 124
    assert flow.tick(123.9).page == "rate"
    assert flow.press(4, "keypad", 123.95)


def test_a_request_during_the_thanks_page_after_reasons_waits_for_it_too(log):
    flow = bad_rating_on_the_reasons_page(log)
    flow.skip_reasons(2)
    assert flow.rate_request(**NEXT, now=3).page == "thanks"
    view = flow.tick(5)
    assert (view.page, view.case.case_no, view.deadline) == ("rate", "NEXT", 65)


def test_a_request_during_the_thanks_page_after_a_good_rating_shows_at_once(log):
    flow = rating_page(log, 0)
    assert flow.press(5, "touch", 1)
    view = flow.rate_request(**NEXT, now=2)
    assert (view.page, view.case.case_no, view.deadline) == ("rate", "NEXT", 62)


def test_a_second_request_supersedes_the_waiting_one_which_never_shows(log):
    flow = bad_rating_on_the_reasons_page(log)
    flow.rate_request(**NEXT, now=10)
    view = flow.rate_request(**(NEXT | {"case_no": "THIRD"}), now=20)
    assert (view.page, view.case.seq) == ("reasons", 2)
    assert recorded(log, 4) == [
        ("rating_skipped", {"case_seq": 4, "why": "superseded"}),
        ("case_opened", NEXT | {"case_no": "THIRD"}),
    ]
    flow.tick(61)
    assert flow.tick(64).case.case_no == "THIRD"


def test_the_waiting_case_scanned_again_is_the_same_visit(log):
    flow = bad_rating_on_the_reasons_page(log)
    flow.rate_request(**NEXT, now=10)
    flow.rate_request(
        ticket_no=None, case_no="NEXT", item_code=None, item_name=None, source="scanner", now=11
    )
    assert types(log, 3) == ["case_opened"]


@pytest.mark.parametrize(
    ("ending", "then"), [("paused", "paused"), ("signout", "paused"), ("restart", "ready")]
)
def test_pause_signout_or_restart_close_the_waiting_case_as_usual(log, ending, then):
    flow = bad_rating_on_the_reasons_page(log)
    flow.rate_request(**NEXT, now=10)
    if ending == "paused":
        flow.pause(11)
    elif ending == "signout":
        flow.swipe(WANG_CARD, 11)
    else:
        flow = make_flow(log, now=0)
    assert recorded(log, 4)[0] == ("rating_skipped", {"case_seq": 4, "why": ending})
    if ending != "restart":
        assert flow.view.page == "reasons"  # the citizen still finishes
        flow.submit_reasons(["101"], None, 12)
    assert flow.tick(100).page == then
    assert types(log, 4).count("rating_detail") == 1


# --- nobody refused: an untouched reasons page gives way --------------------------------------------


def test_a_rate_request_finds_an_untouched_reasons_page_and_opens_the_new_case_at_once(log):
    flow = bad_rating_on_the_reasons_page(log, reasons_idle_s=10)
    flow.note_reasons(["101"], 5)  # the citizen chose one reason, then walked away
    assert flow.rate_request(**NEXT, now=14.9).page == "reasons"  # touched 9.9 s ago: still theirs
    view = flow.tick(15)  # the waiting case need wait no longer
    assert (view.page, view.case.case_no, view.deadline) == ("rate", "NEXT", 75)
    assert detail_reasons(log) == [["101"]]  # what was noted counts, as on a timeout
    assert flow.press(4, "keypad", 16)  # the next citizen is not refused


def test_an_untouched_reasons_page_closes_when_the_request_comes(log):
    flow = bad_rating_on_the_reasons_page(log, reasons_idle_s=10)
    view = flow.rate_request(**NEXT, now=11)
    assert (view.page, view.case.case_no) == ("rate", "NEXT")
    assert types(log, 3) == ["rating_detail", "case_opened"]
    assert detail_reasons(log) == [[]]


def test_each_touch_keeps_the_reasons_page_and_restarts_its_countdown(log):
    flow = bad_rating_on_the_reasons_page(log, reasons_idle_s=10)
    for now in (9, 18, 27, 36, 45, 54, 63):  # a digit every 9 s: still choosing, long past 60 s
        view = flow.touch_reasons(now)
        assert (view.page, view.deadline, view.touched_at) == ("reasons", now + 60, now)
    assert flow.rate_request(**NEXT, now=72).page == "reasons"  # 9 s after the last touch: waits
    assert flow.submit_reasons(["201"], None, 72.5).page == "thanks"


def test_touching_any_other_page_changes_nothing(log):
    flow = rating_page(log, 0)
    assert flow.touch_reasons(5).deadline == 60
    assert types(log, 4) == []


def test_without_a_touch_screen_the_reasons_page_gives_way_to_any_request(log):
    flow = bad_rating_on_the_reasons_page(log, touch_screen=False, reasons_timeout_s=15)
    assert flow.view.deadline == 16  # a short page offering the QR code
    view = flow.rate_request(**NEXT, now=2)
    assert (view.page, view.case.case_no) == ("rate", "NEXT")
    assert detail_reasons(log) == [[]]


# --- reasons chosen but not submitted ---------------------------------------------------------------


def detail_reasons(log: EventLog) -> list[list[str]]:
    return [e["payload"]["reasons"] for e in log.events_after(0, types=("rating_detail",))]


def test_reasons_noted_on_the_page_are_recorded_when_it_times_out(log):
    flow = bad_rating_on_the_reasons_page(log)
    view = flow.note_reasons(["101"], 5)
    assert (view.page, view.deadline) == ("reasons", 65)  # noting records nothing; a touch gives time
    flow.note_reasons(["201", "101", "201"], 6)
    assert types(log, 3) == []
    assert flow.tick(65.9).page == "reasons"
    assert flow.tick(66).page == "thanks"
    assert recorded(log, 3) == [
        ("rating_detail", {"rating_seq": 3, "reasons": ["201", "101"], "contact_sealed": None})
    ]


def test_reasons_noted_and_cleared_again_are_not_given(log):
    flow = bad_rating_on_the_reasons_page(log)
    flow.note_reasons(["101"], 5)
    flow.note_reasons([], 6)
    flow.tick(66)
    assert recorded(log, 3) == [("rating_detail", {"rating_seq": 3, "reasons": [], "contact_sealed": None})]


def test_noted_reasons_survive_pause_and_signout_and_a_waiting_request(log):
    flow = bad_rating_on_the_reasons_page(log)
    flow.note_reasons(["301"], 5)
    flow.pause(6)
    flow.resume(7)
    flow.rate_request(**NEXT, now=8)
    flow.swipe(WANG_CARD, 9)
    flow.tick(65)
    assert detail_reasons(log) == [["301"]]


def test_skipping_declines_the_noted_reasons_and_submitting_replaces_them(log):
    flow = bad_rating_on_the_reasons_page(log)
    flow.note_reasons(["101"], 5)
    flow.skip_reasons(6)
    flow.tick(10)
    flow.rate_request(**NEXT, now=20)
    assert flow.press(2, "touch", 21)
    flow.note_reasons(["101"], 22)
    flow.submit_reasons(["201"], None, 23)
    assert detail_reasons(log) == [[], ["201"]]


def test_noted_reasons_belong_to_their_page_only(log):
    flow = bad_rating_on_the_reasons_page(log)
    flow.note_reasons(["101"], 5)
    flow.tick(65)
    assert flow.note_reasons(["201"], 66).page == "thanks"  # too late: the detail is recorded
    flow.tick(70)
    flow.rate_request(**NEXT, now=71)
    assert flow.note_reasons(["201"], 72).page == "rate"  # nothing to note on the rate page
    assert flow.press(1, "touch", 73)
    flow.tick(133)  # the next 差评's page starts with nothing noted
    assert detail_reasons(log) == [["101"], []]


@pytest.mark.parametrize(
    "reasons", [["bad code!"], [201], ["101", None]], ids=["bad_code", "not_text", "none"]
)
def test_note_reasons_refuses_what_is_not_a_reason(log, reasons):
    flow = bad_rating_on_the_reasons_page(log)
    flow.note_reasons(["101"], 5)
    with pytest.raises(ValueError):
        flow.note_reasons(reasons, 6)
    flow.tick(65)
    assert recorded(log, 3)[0][1]["reasons"] == ["101"]


# --- tickets and walk-in ------------------------------------------------------------------------------


def test_called_tickets_are_recorded_and_shown_until_signout(log):
    flow = serving(log)
    assert flow.call(" A013 ", 1).called_ticket == "A013"
    assert flow.call("", 2).called_ticket == "A013"
    assert flow.swipe(WANG_CARD, 3).called_ticket is None
    assert recorded(log, 1)[0] == ("ticket_called", {"ticket_no": "A013"})


def scan(flow: Flow, case_no: str, now: float) -> None:
    flow.rate_request(
        ticket_no=None, case_no=case_no, item_code=None, item_name=None, source="scanner", now=now
    )


def test_a_scanned_case_takes_the_called_ticket_which_its_rating_consumes(log):
    flow = serving(log, 0)
    flow.call("A012", 1)
    scan(flow, "C1", 2)
    assert flow.view.case.ticket_no == "A012"
    assert flow.press(5, "keypad", 3)
    assert list(log.events_after(0, types=("rating",)))[0]["payload"]["ticket_no"] == "A012"
    assert flow.view.called_ticket is None  # served
    assert flow.tick(10).page == "ready"
    scan(flow, "C2", 11)
    assert flow.view.case.ticket_no is None  # never the ticket of an earlier case


def test_a_skipped_case_consumes_its_called_ticket_too_also_after_a_restart(log):
    flow = serving(log, 0)
    flow.call("A012", 1)
    scan(flow, "C1", 2)
    flow.tick(62)  # timeout
    assert flow.view.called_ticket is None
    flow.call("A013", 63)
    scan(flow, "C2", 64)
    view = make_flow(log, now=0).view  # the restart closes C2 and consumes A013
    assert view.called_ticket is None


def test_only_the_called_tickets_own_case_consumes_it(log):
    flow = serving(log, 0)
    flow.call("A013", 1)
    rate_and_finish(flow, 2, CASE)  # ticket A012 in the request: another ticket's case
    assert flow.view.called_ticket == "A013"
    rate_and_finish(flow, 20, CASE | {"case_no": "C2", "ticket_no": None})  # the queue says: no ticket
    assert list(log.events_after(0, types=("rating",)))[-1]["payload"]["ticket_no"] is None
    rate_and_finish(flow, 40, CASE | {"case_no": "C3", "ticket_no": "A013"})
    assert flow.view.called_ticket is None


def test_an_already_rated_scan_does_not_take_the_called_ticket(log):
    flow = serving(log, 0)
    rate_and_finish(flow, 0, CASE | {"ticket_no": None, "source": "scanner"})
    flow.call("A020", 20)
    scan(flow, CASE["case_no"], 21)
    assert list(log.events_after(0, types=("case_opened",)))[-1]["payload"]["ticket_no"] is None
    assert flow.view.called_ticket == "A020"
    scan(flow, "C2", 22)
    assert flow.view.case.ticket_no == "A020"


def test_walkin_ready_page_takes_one_rating_per_interval(log):
    flow = serving(log, 0, walkin=True, walkin_interval_s=30)
    assert flow.view.walkin
    assert flow.press(4, "touch", 1)
    assert recorded(log, 1) == [
        (
            "case_opened",
            {"ticket_no": None, "case_no": None, "item_code": None, "item_name": None, "source": "walkin"},
        ),
        ("rating", recorded(log, 2)[0][1]),
    ]
    assert recorded(log, 2)[0][1]["case_seq"] == 2
    assert flow.tick(4).page == "ready"
    assert not flow.press(4, "touch", 30.9)
    assert flow.view.notice == WALKIN_WAIT_NOTICE
    assert flow.press(2, "keypad", 31.5)
    assert flow.view.page == "reasons"
    assert types(log).count("rating") == 2


def test_walkin_windows_still_take_rate_requests(log):
    flow = rating_page(log, 0, walkin=True)
    assert flow.press(5, "touch", 1)
    assert recorded(log, 2)[0][1]["case_seq"] == 2


def test_after_a_restart_the_walkin_interval_starts_again(log):
    serving(log, 0, walkin=True).press(5, "touch", 1)
    flow = make_flow(log, now=1000, walkin=True)  # a new monotonic clock, which may start anywhere
    assert not flow.press(5, "touch", 1000 + 29)
    assert flow.press(5, "touch", 1000 + 30)


# --- restart --------------------------------------------------------------------------------------------


def test_restart_restores_staff_pause_and_ticket(log):
    flow = serving(log)
    flow.call("A020", 1)
    flow.pause(2)
    view = make_flow(log, now=0).view
    assert (view.page, view.staff, view.called_ticket) == ("paused", WANG, "A020")
    make_flow(log).resume(1)
    view = make_flow(log).view
    assert (view.page, view.staff) == ("ready", WANG)


def test_restart_closes_the_open_case_instead_of_resuming_it(log):
    rating_page(log)
    view = make_flow(log, now=100).view
    assert (view.page, view.case) == ("ready", None)
    assert recorded(log, 2) == [("rating_skipped", {"case_seq": 2, "why": "restart"})]


def test_restart_closes_a_bad_rating_waiting_for_reasons(log):
    rating_page(log, 0).press(1, "touch", 1)
    make_flow(log, now=0)
    assert recorded(log, 3) == [("rating_detail", {"rating_seq": 3, "reasons": [], "contact_sealed": None})]
    make_flow(log, now=0)
    assert log.head_seq() == 4


def test_restart_keeps_a_member_who_left_the_roster_by_the_name_in_the_log(log):
    log.append("staff_signin", {"staff_no": "0999", "staff_name": "已调岗"})
    view = make_flow(log).view
    assert view.staff == Staff("0999", "已调岗")


# --- failures -----------------------------------------------------------------------------------------


class FailingDisk:
    """The event log, except that the write numbered ``fail_at`` (from 0) raises, as a full disk would."""

    def __init__(self, log: EventLog, fail_at: int):
        self.log, self.fail_at, self.writes = log, fail_at, 0

    def append(self, type_: str, payload: dict) -> dict:
        self.writes += 1
        if self.writes - 1 == self.fail_at:
            raise OSError("disk full")
        return self.log.append(type_, payload)


def flow_on(disk: FailingDisk, **options) -> Flow:
    settings = {"window": "03", "rating_timeout_s": 60, "thanks_s": 3} | options
    return Flow(record=disk.append, find_staff=ROSTER.find, now=0, **settings)


def test_a_failed_write_changes_nothing(log):
    flow = flow_on(FailingDisk(log, fail_at=0))
    with pytest.raises(OSError):
        flow.swipe(WANG_CARD, 0)
    assert (flow.view.page, flow.view.staff, log.head_seq()) == ("paused", None, 0)
    assert flow.swipe(WANG_CARD, 1).staff == WANG


def test_a_switch_that_fails_halfway_shows_what_the_log_holds(log):
    flow = flow_on(FailingDisk(log, fail_at=2))  # signin, signout, then the second signin fails
    flow.swipe(WANG_CARD, 0)
    with pytest.raises(OSError):
        flow.swipe(LI_CARD, 1)
    assert (flow.view.page, flow.view.staff) == ("paused", None)
    assert types(log) == ["staff_signin", "staff_signout"]


def test_a_case_nobody_could_rate_is_closed_by_the_next_input_when_its_skip_failed(log):
    flow = flow_on(FailingDisk(log, fail_at=1))  # case_opened, then its rating_skipped fails
    with pytest.raises(OSError):
        flow.rate_request(**CASE, now=0)
    flow.swipe(WANG_CARD, 1)
    assert types(log) == ["case_opened", "rating_skipped", "staff_signin"]
    assert recorded(log, 1)[0] == ("rating_skipped", {"case_seq": 1, "why": "no_staff"})


def test_a_walkin_rating_that_failed_can_be_given_again_on_its_rate_page(log):
    flow = flow_on(FailingDisk(log, fail_at=2), walkin=True)  # signin, case_opened, then the rating fails
    flow.swipe(WANG_CARD, 0)
    with pytest.raises(OSError):
        flow.press(5, "touch", 1)
    assert (flow.view.page, flow.view.case.source) == ("rate", "walkin")
    assert flow.press(5, "touch", 2)
    assert types(log) == ["staff_signin", "case_opened", "rating"]


def test_the_log_a_whole_session_leaves_verifies(log):
    flow = rating_page(log, 0)
    flow.press(2, "touch", 1)
    flow.submit_reasons(["101"], None, 2)
    flow.tick(10)
    flow.rate_request(**CASE, now=11)
    flow.tick(100)
    flow.swipe(WANG_CARD, 101)
    assert log.verify().ok


def test_a_refused_request_whose_skip_failed_is_closed_as_already_rated_at_the_next_input(log):
    # Writes: signin, case, rating, NEXT, NEXT superseded, the rated case again; then its skip fails.
    flow = flow_on(FailingDisk(log, fail_at=6))
    flow.swipe(WANG_CARD, 0)
    rate_and_finish(flow, 0)
    flow.rate_request(**(CASE | {"case_no": "NEXT"}), now=20)
    with pytest.raises(OSError):
        flow.rate_request(**CASE, now=21)
    assert (flow.view.page, flow.view.case) == ("ready", None)  # NEXT was superseded; nothing to rate
    flow.tick(22)
    assert recorded(log, 5)[-1] == ("rating_skipped", {"case_seq": 6, "why": "already_rated"})


# --- 改评价: a 差评 changed on its reasons page (rating_corrected) ----------------------------------------


def bad_rating(log: EventLog, satisfaction: int = 1, now: float = 0.0, **options) -> Flow:
    """A citizen rated 差评 at ``now + 1`` and is on the reasons page."""
    flow = rating_page(log, now, **options)
    assert flow.press(satisfaction, "touch", now + 1)
    assert flow.view.page == "reasons"
    return flow


def test_change_rating_shows_the_rate_page_again_for_the_same_case(log):
    flow = bad_rating(log)
    case = flow.view.case
    view = flow.correct(2)
    assert (view.page, view.case, view.satisfaction, view.deadline) == ("correct", case, 1, 2 + 60)
    assert types(log)[-1] == "rating"  # nothing written by asking to change


def test_a_correction_to_good_writes_it_then_the_one_detail_and_thanks(log):
    flow = bad_rating(log)
    rating_seq = log.head_seq()
    flow.correct(2)
    assert flow.press(4, "touch", 3)
    assert recorded(log, rating_seq) == [
        ("rating_corrected", {"rating_seq": rating_seq, "satisfaction": 4, "input": "touch"}),
        ("rating_detail", {"rating_seq": rating_seq, "reasons": [], "contact_sealed": None}),
    ]
    view = flow.view
    assert (view.page, view.satisfaction) == ("thanks", 4)
    assert types(log).count("rating") == 1  # never a second rating


def test_a_correction_to_another_bad_level_returns_to_the_reasons_page_with_its_choices(log):
    flow = bad_rating(log, 1)
    rating_seq = log.head_seq()
    flow.note_reasons(["201"], 1.5)
    flow.correct(2)
    assert flow.press(2, "keypad", 3)  # the keypad works as a touch does
    view = flow.view
    assert (view.page, view.satisfaction, view.deadline) == ("reasons", 2, 3 + 60)
    assert recorded(log, rating_seq) == [
        ("rating_corrected", {"rating_seq": rating_seq, "satisfaction": 2, "input": "keypad"})
    ]
    flow.tick(3 + 60)  # the reasons noted before the correction still count
    assert recorded(log, rating_seq)[-1] == (
        "rating_detail",
        {"rating_seq": rating_seq, "reasons": ["201"], "contact_sealed": None},
    )


def test_the_same_level_again_returns_to_the_reasons_page_writing_nothing(log):
    flow = bad_rating(log, 2)
    flow.correct(2)
    head = log.head_seq()
    assert flow.press(2, "touch", 3)
    assert flow.view.page == "reasons" and log.head_seq() == head


def test_several_corrections_each_an_event_the_last_one_counts(log):
    flow = bad_rating(log, 1)
    rating_seq = log.head_seq()
    flow.correct(2)
    flow.press(2, "touch", 3)
    flow.correct(4)
    flow.press(5, "touch", 5)
    levels = [p["satisfaction"] for t, p in recorded(log, rating_seq) if t == "rating_corrected"]
    assert levels == [2, 5] and types(log)[-1] == "rating_detail"
    assert flow.view.satisfaction == 5


def test_a_press_as_the_correct_page_appears_is_a_double_tap(log):
    flow = bad_rating(log)
    flow.correct(2)
    assert not flow.press(5, "touch", 2 + DEBOUNCE_S / 2)
    assert flow.view.page == "correct"


def test_the_correct_page_timing_out_lets_the_rating_stand_with_the_noted_reasons(log):
    flow = bad_rating(log, 1)
    rating_seq = log.head_seq()
    flow.note_reasons(["101", "201"], 1.5)
    flow.correct(2)
    view = flow.tick(2 + 60)
    assert (view.page, view.satisfaction) == ("thanks", 1)
    assert recorded(log, rating_seq) == [
        ("rating_detail", {"rating_seq": rating_seq, "reasons": ["101", "201"], "contact_sealed": None})
    ]


def test_no_correction_after_the_detail_nor_outside_the_reasons_page(log):
    flow = bad_rating(log)
    flow.skip_reasons(2)
    assert flow.correct(2.5).page == "thanks"
    head = log.head_seq()
    assert not flow.press(5, "touch", 2.6)
    assert log.head_seq() == head
    flow.rate_request(**(CASE | {"case_no": "370211202611280099"}), now=10)
    assert flow.press(5, "touch", 11)
    assert flow.correct(12).page == "thanks"


def test_without_a_touch_screen_there_is_no_change_of_rating(log):
    flow = bad_rating(log, touch_screen=False)
    assert flow.correct(2).page == "reasons"


def test_an_untouched_correct_page_gives_way_to_the_next_case_like_the_reasons_page(log):
    flow = bad_rating(log, 1)
    rating_seq = log.head_seq()
    flow.correct(2)
    other = CASE | {"case_no": "370211202611280099", "ticket_no": "A013"}
    view = flow.rate_request(**other, now=2 + 5)  # the citizen is still there: the case waits
    assert view.page == "correct"
    view = flow.tick(2 + 10)
    assert (view.page, view.case.case_no) == ("rate", "370211202611280099")
    assert ("rating_detail", {"rating_seq": rating_seq, "reasons": [], "contact_sealed": None}) in recorded(
        log
    )


def test_a_pause_or_signout_lets_a_citizen_finish_a_correction(log):
    flow = bad_rating(log, 1)
    flow.correct(2)
    flow.pause(3)
    assert flow.view.page == "correct"
    flow.press(3, "touch", 4)
    assert flow.view.page == "thanks" and types(log)[-2:] == ["rating_corrected", "rating_detail"]


def test_restart_on_the_correct_page_closes_the_detail_and_keeps_the_corrected_level(log):
    flow = bad_rating(log, 1)
    rating_seq = log.head_seq()
    flow.correct(2)
    flow.press(2, "touch", 3)
    assert flow.durable_state()["due_satisfaction"] == 2
    again = make_flow(log, now=1000)
    assert again.durable_state()["detail_due"] is None
    assert recorded(log, rating_seq)[-1] == (
        "rating_detail",
        {"rating_seq": rating_seq, "reasons": [], "contact_sealed": None},
    )


def test_a_checkpoint_carries_the_corrected_level(log):
    flow = bad_rating(log, 1)
    flow.correct(2)
    flow.press(2, "touch", 3)
    state = flow.durable_state()
    restored = Flow(
        record=log.append,
        find_staff=ROSTER.find,
        window="03",
        rating_timeout_s=60,
        thanks_s=3,
        now=10,
        checkpoint=state,
        history=[],
    )
    assert restored.durable_state()["due_satisfaction"] is None  # the restart wrote the detail
    assert types(log)[-1] == "rating_detail"
    with pytest.raises(ValueError):
        make_flow(log, checkpoint=state | {"due_satisfaction": 7})
    with pytest.raises(ValueError):
        make_flow(log, checkpoint=state | {"detail_due": None})


def test_a_correction_whose_detail_failed_shows_the_corrected_level_and_can_be_finished(log):
    disk = FailingDisk(log, fail_at=4)  # signin, case_opened, rating, rating_corrected; the detail fails
    flow = flow_on(disk, reasons_timeout_s=60)
    flow.swipe(WANG_CARD, 0)
    flow.rate_request(**CASE, now=0)
    flow.press(1, "touch", 1)
    flow.correct(2)
    with pytest.raises(OSError):
        flow.press(4, "touch", 3)
    view = flow.view
    assert (view.page, view.satisfaction) == ("correct", 4)  # what the log holds: corrected, no detail
    assert types(log)[-1] == "rating_corrected"
    assert flow.press(4, "touch", 4)  # the same level again: the detail, and thanks
    assert types(log)[-1] == "rating_detail" and flow.view.page == "thanks"
    assert recorded(log)[-1][1]["reasons"] == []

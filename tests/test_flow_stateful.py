"""Random sequences of swipes, calls, rate requests, presses, reasons, pauses, ticks and restarts against
the flow, with the disk failing now and then, checking after every step that the log it writes keeps
the 一次一评 invariants (one rating per case and per case number, a card lying on the reader never
toggles, a called ticket goes to one case at most), that a citizen giving reasons is never cut off (a
rate request meanwhile waits for the thanks page to end), that a reasons page nobody has touched for
10 s gives way to the next case at once (nobody refused), that a 差评's reasons are those submitted, or
noted on the page when it timed out or gave way, and that the screen shows only what the log holds.
改评价: a correction (rating_corrected) only follows its own 差评, the last rating, before its detail;
each 差评 still gets exactly one rating_detail (none of reasons once corrected to good), and a correction
changes nothing else of the flow's state."""

import json

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from core.domain import is_bad
from core.events import check_payload
from kiosk.flow import DEBOUNCE_S, HISTORY_TYPES, REASONS_PAGES, SKIP_WHYS, SWIPE_GUARD_S, Flow, Staff

STAFF = {"card-a": Staff("0371", "王晓燕"), "card-b": Staff("0372", "李明")}
CARDS = (*STAFF, "card-unknown")
RATING_TIMEOUT_S, REASONS_TIMEOUT_S, WALKIN_INTERVAL_S, REASONS_IDLE_S = 60, 60, 30, 10
# Time steps around every threshold: debounce, card guard, thanks, timeouts, walk-in interval.
STEPS = st.sampled_from([0.0, 0.1, 0.29, 0.31, 1.0, 2.9, 3.0, 10.0, 29.0, 31.0, 59.0, 61.0, 200.0])
# A citizen's press comes mostly a moment after the page appears.
PRESS_STEPS = st.sampled_from([0.0, 0.29, 0.31, 0.5, 1.0, 1.0, 2.0, 2.0, 5.0, 59.0, 61.0])
TEXT = st.sampled_from([None, "", "A012", "370211-2026-0001", "事项"])
# Few case numbers, so that cases come back after their rating (一次一评 across visits).
CASE_NOS = st.sampled_from([None, "", "370211-2026-0001", "370211-2026-0002"])
REASONS = st.sampled_from(["101", "201", "901"])


class WriteFailed(OSError):
    """The fault the machine injects: the disk refuses one write (full, or an I/O error)."""


class MemoryLog:
    """The event log's contract without the disk: payloads checked, seqs from 1, no gaps. Each event
    also notes the test's clock (``now``) so that timing rules can be checked afterwards. ``fail_in``
    arms one failure: that many writes succeed, then one raises WriteFailed and writes nothing."""

    def __init__(self, clock):
        self.clock = clock
        self.events: list[dict] = []
        self.fail_in: int | None = None

    def append(self, type_: str, payload: dict) -> dict:
        if self.fail_in is not None:
            self.fail_in -= 1
            if self.fail_in < 0:
                self.fail_in = None
                raise WriteFailed("disk full")
        check_payload(type_, payload)
        event = {"seq": len(self.events) + 1, "type": type_, "payload": payload, "now": self.clock()}
        self.events.append(event)
        return event


class FlowMachine(RuleBasedStateMachine):
    @initialize(walkin=st.booleans(), signed_in=st.booleans(), touch_screen=st.booleans())
    def start(self, walkin, signed_in, touch_screen):
        self.now = 0.0
        self.log = MemoryLog(lambda: self.now)
        self.walkin = walkin
        self.touch_screen = touch_screen
        self.idle_s = REASONS_IDLE_S if touch_screen else 0.0
        self.touched: dict[int, float] = {}  # rating seq -> when its reasons page was last touched
        self.checked = 0  # events before this index have passed the log invariants
        self.staff: str | None = None  # staff_no signed in, per the log
        self.called_ticket: str | None = None
        self.last_walkin_at: float | None = None
        self.paused = False
        self.open_case: int | None = None
        self.closed: set[int] = set()
        self.opened: dict[int, dict] = {}
        self.ratings: dict[int, dict] = {}
        self.rated_at: dict[int, float] = {}
        self.shown_at: dict[int, float] = {}  # case seq -> when the rate page first showed it
        self.details: set[int] = set()
        self.levels: dict[int, int] = {}  # rating seq -> its level as last corrected
        self.rated_case_nos: set[str] = set()
        self.must_refuse: int | None = None  # seq of a case opened for a case number already rated
        self.request: dict | None = None  # the rate request being handled
        self.submitted: list[str] | None = None  # the reasons being submitted
        self.skipping = self.restarting = False  # the citizen declines the reasons; the kiosk restarts
        self.noted: dict[int, list[str]] = {}  # rating seq -> reasons noted on its page
        self.last_toggle: tuple[str, float] | None = None  # staff_no whose sign-in or -out was last, when
        self.flow = self.make_flow()
        self.checkpoint: tuple[int, dict] | None = None  # (seq, durable state) taken at some point
        if signed_in:
            self.flow.swipe("card-a", self.now)
            self.last_toggle = ("0371", self.now)

    def make_flow(self, log: MemoryLog | None = None, checkpoint: tuple[int, dict] | None = None) -> Flow:
        log = log or self.log
        after = checkpoint[0] if checkpoint else 0
        return Flow(
            record=log.append,
            find_staff=STAFF.get,
            window="03",
            rating_timeout_s=RATING_TIMEOUT_S,
            thanks_s=3,
            reasons_timeout_s=REASONS_TIMEOUT_S,
            reasons_idle_s=REASONS_IDLE_S,
            touch_screen=self.touch_screen,
            walkin=self.walkin,
            walkin_interval_s=WALKIN_INTERVAL_S,
            now=self.now,
            history=[e for e in log.events if e["type"] in HISTORY_TYPES and e["seq"] > after],
            checkpoint=checkpoint[1] if checkpoint else None,
        )

    def attempt(self, step: float, action):
        """Run one input at a later time; an injected write failure is the only error allowed."""
        self.now += step
        before, written_before = self.flow.view, len(self.log.events)
        try:
            return action(self.now)
        except WriteFailed:
            return None
        finally:
            self.note_shown(before, written_before)

    def note_shown(self, before, written_before: int) -> None:
        """When the rate page first shows a case; one opened by an earlier input waited for a citizen giving
        reasons and may show only when their thanks page has ended."""
        view = self.flow.view
        if view.page != "rate" or view.case.seq in self.shown_at:
            return
        self.shown_at[view.case.seq] = self.now
        if view.case.seq <= written_before:
            assert self.giving_reasons(before), "a waiting case cut a citizen off"
            if before.page == "thanks":
                assert self.now >= before.deadline, "a waiting case shown before the thanks page ended"
            else:
                assert self.now >= before.touched_at + self.idle_s, "a waiting case cut a citizen off"

    @rule(writes_before=st.integers(0, 3))
    def disk_fails(self, writes_before):
        self.log.fail_in = writes_before

    @rule(card=st.sampled_from(CARDS), step=STEPS)
    def swipe(self, card, step):
        member, before, staff_before = STAFF.get(card), len(self.log.events), self.staff
        now = self.now + step
        lying = member is not None and self.last_toggle is not None and self.last_toggle[0] == member.staff_no
        lying = lying and now - self.last_toggle[1] < SWIPE_GUARD_S
        done = self.attempt(step, lambda now: self.flow.swipe(card, now))
        toggles = [e for e in self.log.events[before:] if e["type"] in ("staff_signin", "staff_signout")]
        self.follow_log()
        if lying:
            assert not toggles, "a card lying on the reader toggled"
            if done is not None:
                self.last_toggle = (member.staff_no, now)  # each read of it holds it off again
        elif done is not None and member is not None and member.staff_no != staff_before:
            assert self.staff == member.staff_no, "another card did not switch at once"
        if toggles:
            self.last_toggle = (toggles[-1]["payload"]["staff_no"], now)
        event(f"swipe: {'lying on the reader' if lying else 'toggled' if toggles else 'no change'}")

    @rule(ticket=TEXT, step=STEPS)
    def call(self, ticket, step):
        self.attempt(step, lambda now: self.flow.call(ticket or "", now))

    @rule(ticket=TEXT, case=CASE_NOS, item=TEXT, source=st.sampled_from(["queue", "scanner"]), step=STEPS)
    def rate_request(self, ticket, case, item, source, step):
        fields = {
            "ticket_no": ticket,
            "case_no": case,
            "item_code": item,
            "item_name": item,
            "source": source,
        }
        self.request, before, shown = fields, len(self.log.events), self.flow.view
        at = self.now + step
        busy = self.giving_reasons(shown) and at < shown.deadline  # and so they stay
        untouched = shown.page in REASONS_PAGES and at >= shown.touched_at + self.idle_s
        idle = untouched and not names_case(fields, shown.case)  # the same visit again leaves it be
        # A case already waiting for an untouched page takes the screen before this request is seen.
        busy = busy and not idle and not (untouched and self.open_case is not None)
        done = self.attempt(step, lambda now: self.flow.rate_request(**fields, now=now))
        self.follow_log()
        self.request = None
        written = self.log.events[before:]
        if busy:
            assert (self.flow.view.page, self.flow.view.case) == (shown.page, shown.case), "citizen cut off"
            assert "rating_detail" not in [e["type"] for e in written]
        if idle and done is not None:
            assert self.flow.view.page not in REASONS_PAGES, (
                "an untouched reasons page held up the next citizen"
            )
            event("rate request: closed an untouched reasons page")
        skips = [e["payload"]["why"] for e in written if e["type"] == "rating_skipped"]
        outcome = "skipped " + skips[-1] if skips else "waits" if busy and written else "shown or ignored"
        event(f"rate request: {outcome}")

    @precondition(lambda self: self.rated_case_nos)
    @rule(pick=st.integers(0, 3), source=st.sampled_from(["queue", "scanner"]), step=STEPS)
    def rate_again(self, pick, source, step):
        """Someone asks for a rated case to be rated once more, and a citizen presses at once."""
        case_no = sorted(self.rated_case_nos)[pick % len(self.rated_case_nos)]
        self.rate_request(ticket=None, case=case_no, item=None, source=source, step=step)
        self.press(satisfaction=1, input="keypad", step=1.0)

    @rule(satisfaction=st.integers(1, 2), case=CASE_NOS, step=STEPS)
    def rate_badly(self, satisfaction, case, step):
        """A service and at once a 差评: the reasons page, where the next request may find the citizen."""
        self.rate_request(ticket="A012", case=case, item="事项", source="queue", step=step)
        self.press(satisfaction=satisfaction, input="touch", step=1.0)

    @rule(step=STEPS)
    def pause(self, step):
        self.attempt(step, self.flow.pause)

    @rule(step=STEPS)
    def resume(self, step):
        self.attempt(step, self.flow.resume)

    @rule(satisfaction=st.integers(1, 5), input=st.sampled_from(["touch", "keypad"]), step=PRESS_STEPS)
    def press(self, satisfaction, input, step):
        page, before = self.flow.view.page, len(self.log.events)
        state_before = self.flow.durable_state()
        accepted = self.attempt(step, lambda now: self.flow.press(satisfaction, input, now))
        written = [e["type"] for e in self.log.events[before:]]
        event(f"press on {page}: {'failed' if accepted is None else 'recorded' if accepted else 'ignored'}")
        if not accepted:
            # Ignored or failed presses write no rating, only what time itself closed (timeouts).
            assert "rating" not in written
            return
        if page == "correct":
            self.follow_log()
            assert "rating" not in written, "a correction wrote a second rating"
            assert set(written) <= {"rating_corrected", "rating_detail"}
            view, rating_seq = self.flow.view, max(self.ratings)
            assert view.satisfaction == self.levels[rating_seq] == satisfaction
            if is_bad(satisfaction):
                assert view.page == "reasons" and "rating_detail" not in written
                self.touched[rating_seq] = self.now
            else:
                assert view.page == "thanks" and written[-1] == "rating_detail"
            # Nothing but the 差评's level (and, once good, its detail) changes.
            assert without_due(self.flow.durable_state()) == without_due(state_before)
            event(f"correction to {'bad' if is_bad(satisfaction) else 'good'}")
            return
        assert written[-1] == "rating" and written.count("rating") == 1
        assert self.log.events[-1]["payload"]["satisfaction"] == satisfaction
        assert page in ("rate", "ready")
        assert self.flow.view.page == ("reasons" if is_bad(satisfaction) else "thanks")

    @rule(satisfaction=st.integers(1, 5), input=st.sampled_from(["touch", "keypad"]), step=PRESS_STEPS)
    def change_rating(self, satisfaction, input, step):
        """改评价 on the reasons page, and a level pressed on the rate page it shows again."""
        page = self.flow.view.page
        done = self.attempt(step, self.flow.correct)
        self.follow_log()
        view = self.flow.view
        if done is not None and page == "reasons" and view.page == "correct":
            assert view.touched_at == self.now and view.deadline == self.now + RATING_TIMEOUT_S
            assert view.case.seq == self.ratings[max(self.pending_details())]["case_seq"]
            self.touched[max(self.pending_details())] = self.now
        elif done is not None:
            assert view.page != "correct" or page == "correct", "the correct page without its 差评's page"
        self.press(satisfaction=satisfaction, input=input, step=1.0)

    @rule(first=st.integers(1, 2), then=st.integers(1, 5), case=CASE_NOS, step=STEPS)
    def rate_badly_and_correct(self, first, then, case, step):
        """A mis-tapped 差评 and at once 改评价 (the rule above alone rarely finds the reasons page)."""
        self.rate_badly(satisfaction=first, case=case, step=step)
        self.change_rating(satisfaction=then, input="touch", step=1.0)

    @rule(reasons=st.lists(REASONS, min_size=1, max_size=3), step=PRESS_STEPS)
    def submit_reasons(self, reasons, step):
        self.submitted = reasons
        self.attempt(step, lambda now: self.flow.submit_reasons(reasons, None, now))
        self.follow_log()
        self.submitted = None

    @rule(step=PRESS_STEPS)
    def skip_reasons(self, step):
        self.skipping = True
        self.attempt(step, self.flow.skip_reasons)
        self.follow_log()
        self.skipping = False

    @rule(reasons=st.lists(REASONS, max_size=3), step=PRESS_STEPS)
    def note_reasons(self, reasons, step):
        """The citizen taps reasons on and off; the flow remembers the choice without recording it."""
        done = self.attempt(step, lambda now: self.flow.note_reasons(reasons, now))
        self.follow_log()  # it writes only what time closed (expected_reasons checks a timed-out page)
        due = self.pending_details()
        if done is not None and self.flow.view.page == "reasons":
            self.noted[max(due)] = list(dict.fromkeys(reasons))
            self.note_touch()

    @rule(step=PRESS_STEPS)
    def touch_reasons(self, step):
        """A digit of the phone number or 更多时间: the reasons page's countdown starts again."""
        done = self.attempt(step, self.flow.touch_reasons)
        self.follow_log()
        if done is not None and self.flow.view.page == "reasons":
            self.note_touch()

    def note_touch(self) -> None:
        view = self.flow.view
        assert view.touched_at == self.now and view.deadline == self.now + REASONS_TIMEOUT_S
        self.touched[max(self.pending_details())] = self.now

    @rule(step=STEPS)
    def tick(self, step):
        self.attempt(step, self.flow.tick)

    @rule()
    def take_checkpoint(self):
        """The kiosk saves its flow state beside the log (as JSON), at whatever point it is."""
        self.checkpoint = (len(self.log.events), json.loads(json.dumps(self.flow.durable_state())))

    def copy_log(self) -> MemoryLog:
        copy = MemoryLog(lambda: self.now)
        copy.events = list(self.log.events)
        return copy

    @rule(step=STEPS)
    def restart(self, step):
        self.now += step
        if self.checkpoint is not None:
            # Starting from the checkpoint and the events after it is starting from the whole log.
            replayed, resumed = self.copy_log(), self.copy_log()
            whole = self.make_flow(replayed)
            from_checkpoint = self.make_flow(resumed, self.checkpoint)
            assert from_checkpoint.durable_state() == whole.durable_state()
            assert [(e["type"], e["payload"]) for e in resumed.events] == [
                (e["type"], e["payload"]) for e in replayed.events
            ]
            assert from_checkpoint.view == whole.view
            event("restart: from a checkpoint")
        self.restarting = True
        try:
            self.flow = self.make_flow()
        except WriteFailed:
            self.flow = self.make_flow()  # the service manager starts the kiosk again
        assert self.open_case_in_log() is None
        self.restarting = False
        if self.last_toggle is not None:  # the card may still lie on the reader
            self.last_toggle = (self.last_toggle[0], self.now)

    def open_case_in_log(self) -> int | None:
        self.follow_log()
        return self.open_case

    @invariant()
    def follow_log(self):
        """Every new event is checked against what the log said before it."""
        for logged in self.log.events[self.checked :]:
            seq, type_, p, at = logged["seq"], logged["type"], logged["payload"], logged["now"]
            if self.must_refuse is not None:
                assert (type_, p) == (
                    "rating_skipped",
                    {"case_seq": self.must_refuse, "why": "already_rated"},
                )
                self.must_refuse = None
            if type_ == "staff_signin":
                assert self.staff is None, "signin over a signed-in member"
                self.staff = p["staff_no"]
            elif type_ == "staff_signout":
                assert self.open_case is None, "signout with a case open"
                assert self.staff == p["staff_no"]
                self.staff = self.called_ticket = None
            elif type_ in ("window_paused", "window_resumed"):
                assert self.paused == (type_ == "window_resumed")
                assert self.open_case is None
                self.paused = type_ == "window_paused"
            elif type_ == "case_opened":
                assert self.open_case is None, "two cases open"
                self.open_case = seq
                self.opened[seq] = p | {"at": at}
                refused = p["case_no"] in self.rated_case_nos
                if refused:
                    self.must_refuse = seq  # one rating per case number: closed at once, never shown
                if p["source"] == "scanner" and not (self.request["ticket_no"] or "").strip():
                    # A bare scan belongs to the ticket called (unless it is an old, rated case).
                    assert p["ticket_no"] == (None if refused else self.called_ticket)
            elif type_ == "rating":
                case_seq = p["case_seq"]
                assert case_seq == self.open_case, "rating without its open case"
                assert self.staff == p["staff_no"] and not self.paused, "rating without a serving member"
                assert (p["ticket_no"], p["case_no"], p["item_code"]) == tuple(
                    self.opened[case_seq][k] for k in ("ticket_no", "case_no", "item_code")
                )
                assert not self.pending_details(), "a new rating before the last 差评's detail"
                if self.opened[case_seq]["source"] == "walkin":
                    assert self.last_walkin_at is None or at - self.last_walkin_at >= WALKIN_INTERVAL_S
                    self.last_walkin_at = at
                else:
                    shown_at = self.shown_at[case_seq]  # the same arithmetic as the flow's
                    assert at - shown_at >= DEBOUNCE_S and at < shown_at + RATING_TIMEOUT_S
                assert p["case_no"] not in self.rated_case_nos, "a case number rated twice"
                if p["case_no"] is not None:
                    self.rated_case_nos.add(p["case_no"])
                self.close_case(case_seq)
                self.ratings[seq], self.rated_at[seq] = p, at
                self.levels[seq] = p["satisfaction"]
                self.touched[seq] = at
            elif type_ == "rating_skipped":
                assert p["case_seq"] == self.open_case and p["why"] in SKIP_WHYS
                if p["why"] == "timeout":
                    assert at >= self.shown_at[p["case_seq"]] + RATING_TIMEOUT_S
                if p["why"] == "already_rated":
                    assert self.opened[p["case_seq"]]["case_no"] in self.rated_case_nos
                self.close_case(p["case_seq"])
            elif type_ == "rating_corrected":
                rating_seq = p["rating_seq"]
                assert rating_seq in self.pending_details(), "a correction of no 差评, or after its detail"
                assert rating_seq == max(self.ratings), "a correction of another rating than the last"
                assert p["satisfaction"] != self.levels[rating_seq] and p["input"] in ("touch", "keypad")
                self.levels[rating_seq] = p["satisfaction"]
            elif type_ == "rating_detail":
                rating = self.ratings.get(p["rating_seq"])
                assert rating is not None and is_bad(rating["satisfaction"]), "detail of no 差评"
                assert p["rating_seq"] not in self.details, "two details for one rating"
                self.details.add(p["rating_seq"])
                assert p["contact_sealed"] is None
                assert p["reasons"] == self.expected_reasons(p["rating_seq"], at), "wrong reasons"
            else:
                assert type_ == "ticket_called"
                self.called_ticket = p["ticket_no"]
            self.checked += 1

    def close_case(self, case_seq: int) -> None:
        """A case rated or skipped: it consumes the called ticket it carries."""
        if self.opened[case_seq]["ticket_no"] == self.called_ticket:
            self.called_ticket = None
        self.closed.add(case_seq)
        self.open_case = None

    def expected_reasons(self, rating_seq: int, at: float) -> list[str]:
        """What a 差评's detail must say, by what ended its reasons page."""
        if self.restarting:
            return []  # the noted reasons were never recorded: they went with the process
        if not is_bad(self.levels[rating_seq]):
            return []  # corrected to good: no reasons
        touched = self.touched[rating_seq]
        if at >= touched + REASONS_TIMEOUT_S:
            return self.noted.get(rating_seq, [])
        # A rate request (or a case waiting for the page) closed it, untouched for a while.
        if at >= touched + self.idle_s and (self.request is not None or self.open_case is not None):
            return self.noted.get(rating_seq, [])
        if self.submitted is not None:
            return list(dict.fromkeys(self.submitted))
        assert self.skipping, "the reasons page ended early"
        return []

    def giving_reasons(self, view) -> bool:
        """Whether a citizen who gave a 差评 is on its reasons (or correct) page or the thanks page after
        it, also when they corrected it to a good level."""
        if view.page in REASONS_PAGES:
            return True
        rated = [r for r in self.ratings.values() if view.case is not None and r["case_seq"] == view.case.seq]
        return view.page == "thanks" and bool(rated) and is_bad(rated[0]["satisfaction"])

    def pending_details(self) -> set[int]:
        return {s for s, r in self.ratings.items() if is_bad(r["satisfaction"])} - self.details

    @invariant()
    def view_matches_log(self):
        self.follow_log()
        view = self.flow.view
        serving = self.staff is not None and not self.paused
        if view.page == "rate":
            assert view.case is not None and view.case.seq == self.open_case and serving
        else:
            # Only a failed write leaves a case open off screen, where nobody can rate it; the next
            # input closes it (follow_log sees to that: no second case opens over it).
            # A refused case (already rated) may be left open off screen the same way.
            refused = (
                self.open_case is not None and self.opened[self.open_case]["case_no"] in self.rated_case_nos
            )
            waiting = self.giving_reasons(view)  # a case that waits for the citizen before to finish
            assert self.open_case is None or not serving or refused or waiting, "a case is open off screen"
            if waiting and self.open_case is not None:
                assert view.case.seq != self.open_case
        if view.page in ("ready", "paused"):
            assert view.page == ("ready" if serving else "paused")
            assert view.case is None and view.deadline is None
        if view.page in REASONS_PAGES:
            assert self.pending_details()
            assert view.satisfaction == self.levels[max(self.pending_details())]
        assert (view.staff.staff_no if view.staff else None) == self.staff
        assert view.called_ticket == self.called_ticket

    def teardown(self):
        # Let every page run its course: each opened case ends rated or skipped exactly once.
        self.log.fail_in = None
        for _ in range(4):  # reasons, thanks, a case that waited for them, and its rate page
            self.attempt(1000, self.flow.tick)
        self.follow_log()
        assert self.open_case is None and set(self.opened) == self.closed
        assert not self.pending_details()


def without_due(state: dict) -> dict:
    """A flow's durable state but for the 差评 awaiting its detail (what a correction may change)."""
    return {k: v for k, v in state.items() if k not in ("detail_due", "due_satisfaction")}


def names_case(fields: dict, case) -> bool:
    """Whether a rate request names this case (a double scan): the flow's rule, restated."""
    text = {k: (v or "").strip() or None for k, v in fields.items() if k != "source"}
    if text["case_no"] is not None:
        return text["case_no"] == case.case_no
    identity = (text["ticket_no"], text["case_no"], text["item_code"])
    return any(identity) and identity == case.identity


FlowMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=50, deadline=None)
test_flow_state_machine = FlowMachine.TestCase

"""The evaluation flow: what the evaluator shows and records, as a plain state machine.

Swipes, ticket calls, rate requests, pauses, presses and reasons go in; the page to show (a ``View``)
comes out, and every fact is written through ``record`` (the durable ``EventLog.append``) before the
flow acts on it. The flow's durable state (who is signed in, paused, the called ticket, the open case,
the case numbers already rated) is rebuilt from the same events after a restart, by the same code that
follows them live.
No Qt, no I/O, no clock: every call takes a monotonic ``now``. The rules are in docs/flow.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from core.config import UiConfig
from core.domain import REASON_CODE_PATTERN, check_satisfaction, is_bad
from core.events import RATING_INPUTS

# ``correct``: the rate page again for the 差评 on the reasons page (改评价), for the same case.
Page = Literal["paused", "ready", "rate", "reasons", "correct", "thanks"]
REASONS_PAGES = ("reasons", "correct")  # a citizen who gave a 差评 and has not finished with it

# Presses this soon after the page appeared or after the previous press are accidental double taps.
DEBOUNCE_S = 0.3
# How long a notice stays on screen.
NOTICE_S = 5.0
UNKNOWN_CARD_NOTICE = "未登记的工作人员卡，请联系管理员"
NOT_SERVING_NOTICE = "本窗口暂停服务，暂不能评价"
WALKIN_WAIT_NOTICE = "刚刚已有评价，请稍后再评"
ALREADY_RATED_NOTICE = "该办件已评价，感谢您的参与"
# The same member's card read again this soon after their sign-in or sign-out (or after such a read)
# is the card still lying on the reader, not a decision to toggle.
SWIPE_GUARD_S = 3.0
# 一次一评 across visits: how many rated case numbers the flow remembers (months of one window's work).
RATED_CASES_KEPT = 10_000
# A rate request finds the reasons page untouched this long: the citizen has gone (or never could touch
# it), so the page closes as on its timeout and the new case opens at once. Nobody is refused.
REASONS_IDLE_S = 10.0

# `why` of rating_skipped beyond the three of docs/protocol.md §1 (timeout, superseded, paused); see docs/flow.md.
SKIP_SIGNOUT = "signout"  # the staff member signed out or another one signed in
SKIP_NO_STAFF = "no_staff"  # a rate request arrived while nobody was signed in
SKIP_RESTART = "restart"  # the kiosk restarted while the case was open
SKIP_ALREADY_RATED = "already_rated"  # a rate request for a case number that was rated before
SKIP_WHYS = ("timeout", "superseded", "paused", SKIP_SIGNOUT, SKIP_NO_STAFF, SKIP_RESTART, SKIP_ALREADY_RATED)

# The event types the flow's state is rebuilt from: pass ``EventLog.events_after(0, types=HISTORY_TYPES)``.
# rating_corrected (改评价) and the last three are the flow's additions to docs/protocol.md §1 (payloads in
# core/events.py): a restart must know the 差评's corrected level, the called ticket and the pause again.
HISTORY_TYPES = (
    "staff_signin",
    "staff_signout",
    "case_opened",
    "rating",
    "rating_detail",
    "rating_skipped",
    "rating_corrected",
    "ticket_called",
    "window_paused",
    "window_resumed",
)
RATE_REQUEST_SOURCES = ("scanner", "queue")

_REASON_CODE = re.compile(REASON_CODE_PATTERN)


@dataclass(frozen=True)
class Staff:
    staff_no: str
    name: str
    title: str = ""
    photo: bytes | None = None  # image bytes, or None for the placeholder


@dataclass(frozen=True)
class Case:
    seq: int  # seq of its case_opened event
    ticket_no: str | None
    case_no: str | None
    item_code: str | None
    item_name: str | None
    source: str  # "scanner" | "queue" | "walkin"

    @property
    def identity(self) -> tuple[str | None, str | None, str | None]:
        return self.ticket_no, self.case_no, self.item_code


@dataclass(frozen=True)
class View:
    page: Page
    staff: Staff | None
    case: Case | None
    satisfaction: int | None  # the level just recorded (reasons/thanks pages)
    deadline: float | None  # the `now` at which this page times out (drives the countdown)
    notice: str | None  # short transient notice
    called_ticket: str | None  # ticket called to this window whose case is not yet closed
    walkin: bool  # the ready page offers the rating buttons
    touched_at: float | None = None  # the reasons page: when the citizen last touched it (or it appeared)


def _text(value: str | None) -> str | None:
    """Absent values are None, never empty strings."""
    if value is None:
        return None
    value = value.strip()
    return value or None


_CASE_FIELDS = ("seq", "ticket_no", "case_no", "item_code", "item_name", "source")
_STATE_KEYS = (
    "staff",
    "paused",
    "called_ticket",
    "open_case",
    "rated",
    "last_toggle",
    "detail_due",
    "due_satisfaction",
    "walkin_seen",
)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {value!r}")
    return value


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"expected a seq, got {value!r}")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _reason_codes(reasons: Sequence[str]) -> list[str]:
    """Reason codes in the order chosen, each once; ValueError for anything that is not one."""
    codes = list(dict.fromkeys(reasons))
    if not all(isinstance(c, str) and _REASON_CODE.fullmatch(c) for c in codes):
        raise ValueError(f"reasons must be reason codes, got {reasons!r}")
    return codes


def _same_visit(fields: dict[str, str | None], case: Case) -> bool:
    """Whether a rate request names this case: the same case number, or when it has none, the same
    ticket, case number and item."""
    if fields["case_no"] is not None:
        return fields["case_no"] == case.case_no
    identity = (fields["ticket_no"], fields["case_no"], fields["item_code"])
    return any(identity) and case.identity == identity


class Flow:
    """One window's evaluation flow. Not thread-safe: drive it from one thread (the GUI thread)."""

    def __init__(
        self,
        *,
        record: Callable[[str, dict], dict],
        find_staff: Callable[[str], Staff | None],
        window: str,
        rating_timeout_s: float,
        thanks_s: float,
        reasons_timeout_s: float = UiConfig.reasons_timeout_s,
        reasons_idle_s: float = REASONS_IDLE_S,
        touch_screen: bool = True,
        walkin: bool = False,
        walkin_interval_s: float = UiConfig.walkin_interval_s,
        now: float,
        history: Iterable[dict] = (),
        staff_by_no: Callable[[str], Staff | None] | None = None,
        checkpoint: dict[str, Any] | None = None,
    ):
        """``record`` is EventLog.append; ``history`` the log's events, oldest first, to restore state
        after a restart; ``staff_by_no`` finds a signed-in member's name, title and photo again then.
        Without a ``touch_screen`` nobody can choose reasons at the window: the reasons page only offers
        the QR code (for ``reasons_timeout_s``) and any rate request closes it at once. ``checkpoint``
        is a ``durable_state()`` saved earlier: then ``history`` holds only the events after it (a
        checkpoint that does not parse is a ValueError, before anything is written)."""
        self._record = record
        self._find_staff = find_staff
        self._staff_by_no = staff_by_no
        self._window = window
        self._rating_timeout_s = rating_timeout_s
        self._thanks_s = thanks_s
        self._reasons_timeout_s = reasons_timeout_s
        self._touch_screen = touch_screen
        self._reasons_idle_s = reasons_idle_s if touch_screen else 0.0
        self._walkin = walkin
        self._walkin_interval_s = walkin_interval_s
        # Durable state: follows the events, live or replayed.
        self._staff: Staff | None = None
        self._paused = False
        self._called_ticket: str | None = None  # called to this window; its case not yet closed
        self._open_case: Case | None = None  # opened, neither rated nor skipped yet
        self._rated: dict[str, None] = {}  # case numbers rated here, oldest first (an ordered set)
        # (staff_no, now) of the last sign-in or sign-out, or of a read of that card held off since.
        self._last_toggle: tuple[str, float] | None = None
        self._detail_due: int | None = None  # seq of a 差评 still waiting for its rating_detail
        self._due_satisfaction: int | None = None  # that 差评's level, as last corrected
        # Screen state: exists only while the kiosk runs.
        self._page: Page = "paused"
        self._shown_case: Case | None = None
        self._satisfaction: int | None = None
        self._deadline: float | None = None
        self._noted_reasons: list[str] = []  # chosen on the reasons page, not submitted (yet)
        self._touched_at: float | None = None  # the reasons page's last touch (or its appearance)
        self._thanks_after_bad = False  # the thanks page follows a 差评's reasons page
        self._page_since = now
        self._now = now  # the time of the input being handled
        self._last_press: float | None = None
        self._notice: str | None = None
        self._notice_until: float | None = None
        self._walkin_seen = False  # a walk-in case was ever opened here
        if checkpoint is not None:
            self._restore(checkpoint)
        for event in history:
            self._apply(event["type"], event["payload"], event["seq"])
        # The monotonic clock does not survive a restart: the walk-in interval starts again from now.
        self._last_walkin = now if self._walkin_seen else None
        # What the restart interrupted is closed, not resumed: the citizen has gone.
        if self._open_case is not None:
            self._skip(self._refusal(self._open_case.case_no) or SKIP_RESTART)
        if self._detail_due is not None:
            self._write_detail((), None)
        self._show_idle(now)

    def configure(
        self,
        *,
        rating_timeout_s: float,
        thanks_s: float,
        reasons_timeout_s: float,
        walkin: bool,
        reasons_idle_s: float = REASONS_IDLE_S,
    ) -> None:
        """New timings and walk-in mode (remote settings): they hold from the next page shown on."""
        self._rating_timeout_s, self._thanks_s = rating_timeout_s, thanks_s
        self._reasons_timeout_s, self._walkin = reasons_timeout_s, walkin
        self._reasons_idle_s = reasons_idle_s if self._touch_screen else 0.0

    # --- what the screen shows ---------------------------------------------------------------------

    @property
    def view(self) -> View:
        return View(
            page=self._page,
            staff=self._staff,
            case=self._shown_case,
            satisfaction=self._satisfaction,
            deadline=self._deadline,
            notice=self._notice,
            called_ticket=self._called_ticket,
            walkin=self._walkin,
            touched_at=self._touched_at,
        )

    # --- checkpoint ---------------------------------------------------------------------------------

    def durable_state(self) -> dict[str, Any]:
        """What the log has told the flow, as JSON-able data: replaying the log gives the same (after a
        restart, a card's hold-off counts from the restart either way, so only its member is kept)."""
        case = self._open_case
        return {
            "staff": [self._staff.staff_no, self._staff.name] if self._staff else None,
            "paused": self._paused,
            "called_ticket": self._called_ticket,
            "open_case": None if case is None else {k: getattr(case, k) for k in _CASE_FIELDS},
            "rated": list(self._rated),
            "last_toggle": self._last_toggle[0] if self._last_toggle else None,
            "detail_due": self._detail_due,
            "due_satisfaction": self._due_satisfaction,
            "walkin_seen": self._walkin_seen,
        }

    def _restore(self, state: dict[str, Any]) -> None:
        """Take over a ``durable_state()``; ValueError (nothing changed) when it is not one."""
        try:
            if set(state) != set(_STATE_KEYS):
                raise ValueError(f"keys {sorted(state)}")
            staff = state["staff"]
            if staff is not None:
                staff_no, name = staff
                staff = self._known_staff(_str(staff_no), _str(name))
            case = state["open_case"]
            if case is not None:
                if set(case) != set(_CASE_FIELDS) or case["source"] not in ("scanner", "queue", "walkin"):
                    raise ValueError("open_case")
                texts = {k: _opt_str(case[k]) for k in ("ticket_no", "case_no", "item_code", "item_name")}
                case = Case(seq=_int(case["seq"]), source=case["source"], **texts)
            rated = [_str(c) for c in state["rated"]][-RATED_CASES_KEPT:]
            toggle = _opt_str(state["last_toggle"])
            detail_due = None if state["detail_due"] is None else _int(state["detail_due"])
            due_level = state["due_satisfaction"]
            if (due_level is None) != (detail_due is None):
                raise ValueError("due_satisfaction without detail_due, or the other way round")
            if due_level is not None:
                check_satisfaction(due_level)
            paused, walkin_seen = _bool(state["paused"]), _bool(state["walkin_seen"])
            called = _opt_str(state["called_ticket"])
        except (TypeError, KeyError, ValueError, AttributeError) as e:
            raise ValueError(f"not a flow checkpoint: {e}") from None
        self._staff, self._paused, self._called_ticket, self._open_case = staff, paused, called, case
        self._rated = dict.fromkeys(rated)
        self._last_toggle = (toggle, self._now) if toggle is not None else None
        self._detail_due, self._due_satisfaction, self._walkin_seen = detail_due, due_level, walkin_seen

    # --- inputs ------------------------------------------------------------------------------------

    def swipe(self, card: str, now: float) -> View:
        """A staff card: signs in, signs out (same member), or switches; an unknown card changes nothing,
        nor does a card read again within SWIPE_GUARD_S of its last toggle (lying on the reader)."""
        self._expire(now)
        staff = self._find_staff(card)
        if staff is None:
            self._set_notice(UNKNOWN_CARD_NOTICE, now)
            return self.view
        last = self._last_toggle
        if last is not None and last[0] == staff.staff_no and now - last[1] < SWIPE_GUARD_S:
            self._last_toggle = (staff.staff_no, now)  # still lying there: hold off from this read on
            return self.view
        current = self._staff
        if current is not None:
            if self._open_case is not None:
                self._skip(SKIP_SIGNOUT)
            self._write("staff_signout", {"staff_no": current.staff_no})
        if current is None or current.staff_no != staff.staff_no:
            self._write("staff_signin", {"staff_no": staff.staff_no, "staff_name": staff.name}, staff)
        self._clear_notice()
        self._settle(now)
        return self.view

    def call(self, ticket: str, now: float) -> View:
        """A ticket was called to this window; shown on the ready page."""
        self._expire(now)
        ticket_no = _text(ticket)
        if ticket_no is not None:
            self._write("ticket_called", {"ticket_no": ticket_no})
        return self.view

    def rate_request(
        self,
        *,
        ticket_no: str | None,
        case_no: str | None,
        item_code: str | None,
        item_name: str | None,
        source: str,
        now: float,
    ) -> View:
        """A service is done: open its case and ask the citizen to rate it (once per case number)."""
        if source not in RATE_REQUEST_SOURCES:
            raise ValueError(f"rate request source must be one of {RATE_REQUEST_SOURCES}, got {source!r}")
        self._expire(now)
        fields = {
            "ticket_no": _text(ticket_no),
            "case_no": _text(case_no),
            "item_code": _text(item_code),
            "item_name": _text(item_name),
        }
        if self._is_current(fields):
            return self.view  # the same request again (a double scan): still the same visit
        if self._reasons_idle(now):
            self._close_reasons(now)  # nobody is choosing: the next citizen need not wait
        refusal = self._refusal(fields["case_no"])
        if self._open_case is not None:
            self._skip("superseded")  # uses up the called ticket if it was this case's
        if fields["ticket_no"] is None and source == "scanner" and refusal != SKIP_ALREADY_RATED:
            fields["ticket_no"] = self._called_ticket  # a bare scan is the case of the ticket being served
        self._open(fields, source)
        if refusal is not None:
            # Not to be rated: keep the trace that a service went unrated, and why.
            self._skip(refusal)
            self._settle(now)
            already_rated = refusal == SKIP_ALREADY_RATED
            self._set_notice(ALREADY_RATED_NOTICE if already_rated else NOT_SERVING_NOTICE, now)
        elif not self._giving_reasons():  # otherwise the case waits until their thanks page ends
            self._show_open_case(now)
            self._clear_notice()
        return self.view

    def pause(self, now: float) -> View:
        """The window stops serving; an open case is skipped. A citizen giving reasons may finish."""
        self._expire(now)
        if not self._paused:
            if self._open_case is not None:
                self._skip("paused")
            self._write("window_paused", {})
            self._settle(now)
        return self.view

    def resume(self, now: float) -> View:
        self._expire(now)
        if self._paused:
            self._write("window_resumed", {})
            self._settle(now)
        return self.view

    def press(self, satisfaction: int, input: str, now: float) -> bool:
        """A rating key or button. True once the rating is durably recorded; False when it is ignored."""
        check_satisfaction(satisfaction)
        if input not in RATING_INPUTS:
            raise ValueError(f"input must be one of {RATING_INPUTS}, got {input!r}")
        self._expire(now)
        previous, self._last_press = self._last_press, now
        if now - self._page_since < DEBOUNCE_S or (previous is not None and now - previous < DEBOUNCE_S):
            return False
        if self._page == "correct":
            return self._press_correction(satisfaction, input, now)
        if self._page == "ready" and self._walkin:
            if self._last_walkin is not None and now - self._last_walkin < self._walkin_interval_s:
                self._set_notice(WALKIN_WAIT_NOTICE, now)  # a silent button would look broken
                return False
            self._open(dict.fromkeys(("ticket_no", "case_no", "item_code", "item_name")), "walkin")
            self._show_open_case(now)
        elif self._page != "rate":
            return False
        case, staff = self._open_case, self._staff
        # Guaranteed by the transitions: the rate page closes when its case does or nobody serves.
        assert case is not None and staff is not None and not self._paused
        self._write(
            "rating",
            {
                "case_seq": case.seq,
                "staff_no": staff.staff_no,
                "staff_name": staff.name,
                "window": self._window,
                "ticket_no": case.ticket_no,
                "case_no": case.case_no,
                "item_code": case.item_code,
                "item_name": case.item_name,
                "satisfaction": satisfaction,
                "input": input,
            },
        )
        if case.source == "walkin":
            self._last_walkin = now
        if is_bad(satisfaction):
            self._show("reasons", now, case, satisfaction, now + self._reasons_timeout_s)
            self._noted_reasons = []
        else:
            self._show("thanks", now, case, satisfaction, now + self._thanks_s)
        return True

    def correct(self, now: float) -> View:
        """改评价 on the reasons page: the rate page again for the same case (``correct``), to change a
        mis-tapped 差评. A press there writes ``rating_corrected``, never a second rating."""
        self._expire(now)
        if self._page == "reasons" and self._touch_screen:
            deadline = now + self._rating_timeout_s
            self._show("correct", now, self._shown_case, self._due_satisfaction, deadline)
        return self.view

    def _press_correction(self, satisfaction: int, input: str, now: float) -> bool:
        """A level pressed on the ``correct`` page. Another level than the 差评's current one is written as
        ``rating_corrected``; a good level then closes the 差评's reasons (its one rating_detail, with none)
        and thanks, a bad one returns to the reasons page (the reasons noted there still count)."""
        rating_seq, level = self._detail_due, self._due_satisfaction
        # Guaranteed by the transitions: the correct page shows only while its 差评 awaits its detail.
        assert rating_seq is not None and level is not None
        if satisfaction != level:
            payload = {"rating_seq": rating_seq, "satisfaction": satisfaction, "input": input}
            self._write("rating_corrected", payload)
            self._satisfaction = (
                satisfaction  # the screen shows what the log holds, should the next write fail
            )
        case = self._shown_case
        if is_bad(satisfaction):
            self._show("reasons", now, case, satisfaction, now + self._reasons_timeout_s)
        else:
            self._write_detail((), None)
            self._show("thanks", now, case, satisfaction, now + self._thanks_s)
        return True

    def note_reasons(self, reasons: Sequence[str], now: float) -> View:
        """The reasons the citizen has chosen so far (maybe none), not submitted: nothing is recorded, but
        they are the reasons given if the page times out. Call it whenever the choice changes."""
        codes = _reason_codes(reasons)
        self._expire(now)
        if self._page == "reasons":
            self._noted_reasons = codes
            self._keep_reasons(now)
        return self.view

    def touch_reasons(self, now: float) -> View:
        """Any other touch on the reasons page (a digit of the phone number, 更多时间): the citizen is
        still there, so the page's countdown starts again and no rate request closes it."""
        self._expire(now)
        if self._page == "reasons":
            self._keep_reasons(now)
        return self.view

    def submit_reasons(self, reasons: Sequence[str], contact_sealed: str | None, now: float) -> View:
        """The citizen's reasons for a 差评 (at least one code) and optionally a sealed phone number."""
        codes = _reason_codes(reasons)
        if not codes:
            raise ValueError("reasons must be one or more reason codes, got none")
        if contact_sealed is not None and not (isinstance(contact_sealed, str) and contact_sealed):
            raise ValueError("contact_sealed must be a non-empty string or None")
        self._expire(now)
        if self._page == "reasons":
            self._write_detail(codes, contact_sealed)
            self._show("thanks", now, self._shown_case, self._satisfaction, now + self._thanks_s)
        return self.view

    def skip_reasons(self, now: float) -> View:
        """The citizen declines to give reasons; the rating stands."""
        self._expire(now)
        if self._page == "reasons":
            self._write_detail((), None)
            self._show("thanks", now, self._shown_case, self._satisfaction, now + self._thanks_s)
        return self.view

    def set_timeouts(self, rating_timeout_s: float, reasons_timeout_s: float, now: float) -> View:
        """New page times (长辈模式 gives more), for the page on screen too: its countdown counts from
        when it appeared (the reasons page: from its last touch)."""
        self._expire(now)
        self._rating_timeout_s, self._reasons_timeout_s = rating_timeout_s, reasons_timeout_s
        if self._page in ("rate", "correct"):
            self._deadline = self._page_since + rating_timeout_s
        elif self._page == "reasons":
            self._deadline = (self._touched_at or self._page_since) + reasons_timeout_s
        return self.view

    def tick(self, now: float) -> View:
        """Let time pass: pages time out, notices fade."""
        self._expire(now)
        return self.view

    # --- transitions -------------------------------------------------------------------------------

    def _expire(self, now: float) -> None:
        """Catch up before each input: pages time out, notices fade."""
        self._now = now
        if self._notice_until is not None and now >= self._notice_until:
            self._clear_notice()
        if self._open_case is not None and self._page != "rate":
            # A failed write left a case open that cannot be rated: close it as it would have been.
            why = self._refusal(self._open_case.case_no)
            if why is not None:
                self._skip(why)
            else:  # guaranteed by the transitions: a case to be rated is on the rate page, or waits
                assert self._giving_reasons()
        if self._open_case is not None and self._reasons_idle(now):
            self._close_reasons(now)  # the case that waited for this page need wait no longer
            self._show_open_case(now)
            return
        if self._deadline is None or now < self._deadline:
            return
        if self._page == "rate":
            self._skip("timeout")  # never a default rating
            self._show_idle(now)
        elif self._page in REASONS_PAGES:  # on the correct page: the 差评 stands as it is
            self._write_detail(self._reasons_standing(), None)  # what the citizen chose counts
            self._show("thanks", now, self._shown_case, self._satisfaction, now + self._thanks_s)
        elif self._open_case is not None:  # the case that waited for this thanks page
            self._show_open_case(now)
        else:
            self._show_idle(now)

    def _settle(self, now: float) -> None:
        """After a change of staff or pause: the idle pages follow it; reasons and thanks run their course.
        Also after a failed write: the screen shows only what the log holds."""
        closed = self._page == "rate" and self._open_case != self._shown_case  # closed, or superseded
        if closed or self._page in ("paused", "ready") and self._page != self._idle_page():
            self._show_idle(now)
        elif self._page in REASONS_PAGES and self._detail_due is None:
            self._show("thanks", now, self._shown_case, self._satisfaction, now + self._thanks_s)

    def _reasons_idle(self, now: float) -> bool:
        """Whether the reasons page shows and has not been touched for ``reasons_idle_s``."""
        # Compared as the deadlines are (now against touched + period): the subtraction rounds differently.
        return self._page in REASONS_PAGES and now >= (self._touched_at or 0.0) + self._reasons_idle_s

    def _keep_reasons(self, now: float) -> None:
        self._touched_at = now
        self._deadline = now + self._reasons_timeout_s

    def _close_reasons(self, now: float) -> None:
        """End the reasons page as its timeout does (the reasons noted so far count), without the
        thanks page: what shows next is for the next citizen."""
        self._write_detail(self._reasons_standing(), None)
        self._show_idle(now)

    def _reasons_standing(self) -> list[str]:
        """The reasons a 差评's page writes when it ends without a submit: those noted, unless a correction
        made the rating good (then it needs none)."""
        level = self._due_satisfaction
        return self._noted_reasons if level is None or is_bad(level) else []

    def _is_current(self, fields: dict[str, str | None]) -> bool:
        """Whether a rate request is for the case on screen or the one waiting for it."""
        return any(_same_visit(fields, case) for case in (self._shown_case, self._open_case) if case)

    def _giving_reasons(self) -> bool:
        """Whether a citizen who gave a 差评 is on the reasons page or the thanks page after it: they are
        never cut off, a new case waits for them."""
        return self._page in REASONS_PAGES or self._page == "thanks" and self._thanks_after_bad

    def _refusal(self, case_no: str | None) -> str | None:
        """Why a case with this number cannot be rated now (a rating_skipped why), or None if it can."""
        if case_no is not None and case_no in self._rated:
            return SKIP_ALREADY_RATED
        if self._paused:
            return "paused"
        if self._staff is None:
            return SKIP_NO_STAFF
        return None

    def _idle_page(self) -> Page:
        return "ready" if self._staff is not None and not self._paused else "paused"

    def _show_open_case(self, now: float) -> None:
        self._show("rate", now, self._open_case, None, now + self._rating_timeout_s)

    def _show_idle(self, now: float) -> None:
        self._show(self._idle_page(), now, None, None, None)

    def _show(
        self, page: Page, now: float, case: Case | None, satisfaction: int | None, deadline: float | None
    ):
        # A thanks page after a 差评's reasons (corrected to good or not) runs its course.
        self._thanks_after_bad = page == "thanks" and self._page in REASONS_PAGES
        self._page, self._page_since = page, now
        self._shown_case, self._satisfaction, self._deadline = case, satisfaction, deadline
        self._touched_at = now if page in REASONS_PAGES else None

    def _set_notice(self, notice: str, now: float) -> None:
        self._notice, self._notice_until = notice, now + NOTICE_S

    def _clear_notice(self) -> None:
        self._notice = self._notice_until = None

    # --- events ------------------------------------------------------------------------------------

    def _open(self, fields: dict[str, str | None], source: str) -> None:
        self._write("case_opened", {**fields, "source": source})

    def _skip(self, why: str) -> None:
        assert self._open_case is not None
        self._write("rating_skipped", {"case_seq": self._open_case.seq, "why": why})

    def _write_detail(self, reasons: Sequence[str], contact_sealed: str | None) -> None:
        assert self._detail_due is not None
        self._write(
            "rating_detail",
            {"rating_seq": self._detail_due, "reasons": list(reasons), "contact_sealed": contact_sealed},
        )

    def _write(self, type_: str, payload: dict[str, Any], staff: Staff | None = None) -> None:
        """Record durably, then follow the event. If recording fails, the event did not happen: the screen
        returns to what the log holds (an input may have written part of its events) and the error goes on."""
        try:
            event = self._record(type_, payload)
        except BaseException:
            self._settle(self._now)
            raise
        self._apply(type_, payload, event["seq"], staff)

    def _apply(self, type_: str, payload: dict[str, Any], seq: int, staff: Staff | None = None) -> None:
        """Follow one event of the log; ``staff`` is the member a live sign-in found by card. Replayed
        after a restart, a sign-in or sign-out counts as just now: the card may still lie on the reader."""
        if type_ == "staff_signin":
            self._staff = staff or self._known_staff(payload["staff_no"], payload["staff_name"])
            self._last_toggle = (payload["staff_no"], self._now)
        elif type_ == "staff_signout":
            self._staff = None
            self._called_ticket = None
            self._last_toggle = (payload["staff_no"], self._now)
        elif type_ == "window_paused":
            self._paused = True
        elif type_ == "window_resumed":
            self._paused = False
        elif type_ == "ticket_called":
            self._called_ticket = payload["ticket_no"]
        elif type_ == "case_opened":
            self._walkin_seen = self._walkin_seen or payload["source"] == "walkin"
            self._open_case = Case(
                seq=seq,
                ticket_no=payload["ticket_no"],
                case_no=payload["case_no"],
                item_code=payload["item_code"],
                item_name=payload["item_name"],
                source=payload["source"],
            )
        elif type_ == "rating":
            self._close_case()
            bad = is_bad(payload["satisfaction"])
            self._detail_due = seq if bad else None
            self._due_satisfaction = payload["satisfaction"] if bad else None
            if payload["case_no"] is not None:
                self._remember_rated(payload["case_no"])
        elif type_ == "rating_corrected":
            if payload["rating_seq"] == self._detail_due:
                self._due_satisfaction = payload["satisfaction"]
        elif type_ == "rating_detail":
            self._detail_due = self._due_satisfaction = None
        elif type_ == "rating_skipped":
            self._close_case()

    def _close_case(self) -> None:
        """The open case was rated or skipped: the called ticket it carries is served, used up."""
        if self._open_case is not None and self._open_case.ticket_no == self._called_ticket:
            self._called_ticket = None
        self._open_case = None

    def _remember_rated(self, case_no: str) -> None:
        self._rated[case_no] = None
        if len(self._rated) > RATED_CASES_KEPT:
            del self._rated[next(iter(self._rated))]

    def _known_staff(self, staff_no: str, name: str) -> Staff:
        found = self._staff_by_no(staff_no) if self._staff_by_no is not None else None
        return found or Staff(staff_no=staff_no, name=name)

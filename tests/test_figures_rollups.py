"""The figures' rollups (``desk_item_facts``, the sums per day and device, staff member or 事项 and per
month) serve exactly what the record says: for generated records (ratings and skips by signed-in staff
or nobody, corrections, details with and without a phone number, phone ratings, a section change, desk
actions at random times with 回访, 整改, 办结 and 复核 to 不属实, deadlines over random holidays, any day of
asking), every grouping of every period is the figures computed from the raw record (the cells replayed
from the events, the desk's counts item by item); ``stats --verify`` agrees; and it names a corrupted
rollup. On SQLite and on PostgreSQL (KIOSK_TEST_PG_URL)."""

from __future__ import annotations

import itertools
import json
import os
from datetime import UTC, date, datetime, time, timedelta

import figures_data as data
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, text, update
from test_hub_support import wipe_database

from hub.desk import workflow as wf
from hub.desk.calendar import WorkCalendar
from hub.desk.store import _append_in
from hub.desk.tables import device_sections, item_facts, sections
from hub.figures import model as m
from hub.figures.desk import desk_items
from hub.figures.service import deadline_rule
from hub.figures.store import FigureStore
from hub.figures.tables import GRAINS, folded_phone_count, item_months, staff_days
from hub.storage import HubStore, database_url

PG_URL = os.environ.get("KIOSK_TEST_PG_URL")
DATABASES = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.skipif(not PG_URL, reason="KIOSK_TEST_PG_URL is not set")),
]
DEVICES = (data.W03, data.W05)
LOGS = ("00000000-0000-4000-8000-0000000000a3", "00000000-0000-4000-8000-0000000000a5")
STAFF = ("0371", "0402")
FIRST_DAY = date(2026, 9, 20)  # the records span 80 days over four months (National Day's holidays)
KEEP = {"staff": ("staff_no",), "item": ("item_code",), "day": ("day",), "month": ("month",)}
_counter = itertools.count()

service = st.tuples(
    st.integers(0, 1),  # device
    st.integers(0, 79),  # day
    st.sampled_from([0, 1, None]),  # who is signed in (None: nobody)
    st.sampled_from(["I1", "I2", None]),  # 事项 (None: a walk-in)
    st.one_of(
        st.just(None),  # skipped
        st.tuples(
            st.integers(1, 5),  # the level
            st.lists(st.integers(1, 5), max_size=2),  # corrections
            st.sampled_from(["none", "plain", "phone"]),  # no detail, a detail, a detail with a phone
        ),
    ),
)
phone = st.tuples(st.integers(0, 1), st.integers(0, 79), st.integers(1, 5), st.booleans(), st.integers(0, 1))
step = st.tuples(
    st.sampled_from(wf.ACTIONS), st.booleans(), st.integers(0, 24 * 25)
)  # action, reached/adopt, hours after the rating
record = st.fixed_dictionaries(
    {
        "services": st.lists(service, min_size=1, max_size=16),
        "phones": st.lists(phone, max_size=4),
        "cut": st.integers(1, 9),
        "moved": st.one_of(st.none(), st.integers(1, 79)),  # the day window 03 moves to section B
        "steps": st.lists(st.lists(step, max_size=5), max_size=12),
        "holidays": st.sets(st.integers(0, 40), max_size=12),
        "working_days": st.integers(1, 5),
        "today": st.integers(-5, 40),
        "periods": st.lists(st.tuples(st.integers(0, 79), st.integers(0, 75)), min_size=1, max_size=3),
    }
)


def day_of(n: int) -> date:
    return FIRST_DAY + timedelta(days=n)


def kiosk_time(day: date, n: int) -> str:
    clock = (datetime.combine(day, time(9)) + timedelta(minutes=3 * n)).time()
    return f"{day.isoformat()}T{clock.isoformat()}.000+08:00"


def logs_of(services) -> list[list[tuple[str, str, dict]]]:
    """One log per device: sign-ins and sign-outs as needed, each case opened, then rated (corrected,
    detailed) or skipped, in time order."""
    out: list[list[tuple[str, str, dict]]] = [[], []]
    signed: list[str | None] = [None, None]
    ordered = sorted(enumerate(services), key=lambda s: (s[1][1], s[0]))
    for n, (device, day_n, staff, item, outcome) in ordered:
        events, at = out[device], kiosk_time(day_of(day_n), n)
        who = None if staff is None else STAFF[staff]
        if signed[device] != who:
            if signed[device] is not None:
                events.append(("staff_signout", at, {"staff_no": signed[device]}))
            if who is not None:
                events.append(("staff_signin", at, {"staff_no": who, "staff_name": f"员工{who}"}))
            signed[device] = who
        case_no = None if item is None else f"C{n}"
        events.append(("case_opened", at, data.case(case_no, item, "queue" if item else "walkin")))
        case_seq = len(events)
        if outcome is None:
            events.append(("rating_skipped", at, {"case_seq": case_seq, "why": "timeout"}))
            continue
        level, corrections, detail = outcome
        events.append(
            ("rating", at, data.rating(case_seq, who, f"员工{who}", f"0{device}", case_no, item, level))
        )
        rating_seq = len(events)
        for corrected in corrections:
            events.append(("rating_corrected", at, {"rating_seq": rating_seq, "satisfaction": corrected}))
        if detail != "none":
            sealed = data.SEALED if detail == "phone" else None
            events.append(
                ("rating_detail", at, {"rating_seq": rating_seq, "reasons": [], "contact_sealed": sealed})
            )
    return out


def fresh_store(kind: str, tmp_path) -> HubStore:
    if kind == "sqlite":
        return HubStore(database_url(tmp_path / f"hub{next(_counter)}", None))
    wipe_database(PG_URL)
    return HubStore(PG_URL)


def build(store: HubStore, r) -> None:
    for device in DEVICES:
        store.add_device(device)
    with store.engine.begin() as conn:
        for code in ("A", "B"):
            conn.execute(
                insert(sections).values(code=code, name=code, created_at="2026-01-01T00:00:00+00:00")
            )
        for device, dept in zip(DEVICES, ("A", "B"), strict=True):
            conn.execute(
                insert(device_sections).values(device_id=device, dept=dept, at="2026-09-01T00:00:00+00:00")
            )
        if r["moved"] is not None:  # appended as the desk appends a section change, on that day
            at = datetime.combine(day_of(r["moved"]), time(1), tzinfo=UTC).isoformat()
            conn.execute(insert(device_sections).values(device_id=DEVICES[0], dept="B", at=at))
    for n, (device, day_n, level, contact, staff) in enumerate(r["phones"]):
        day = day_of(day_n)
        store.add_phone_rating(
            {
                **data.PHONE_C2,
                "device_id": DEVICES[device],
                "nonce": f"{n:016x}",
                "staff_no": STAFF[staff],
                "case_no": None,
                "item_code": "I1",
                "satisfaction": level,
                "contact_sealed": data.SEALED if contact else None,
                "at": datetime.combine(day, time(3, n), tzinfo=UTC).isoformat(),
                "assess_time": f"{day.isoformat()} 11:{n:02d}:00",
            }
        )
    for device, log_id, events in zip(DEVICES, LOGS, logs_of(r["services"]), strict=True):
        chained = data.chain(log_id, events)
        for lo in range(0, len(chained), r["cut"]):
            store.ingest(device, log_id, chained[lo : lo + r["cut"]])
    with store.engine.connect() as conn:
        found = conn.execute(text("SELECT id, assess_time FROM desk_items ORDER BY id")).all()
    for (item_id, assess_time), steps in zip(found, r["steps"], strict=False):
        with store.engine.connect() as conn:
            history = conn.execute(
                text("SELECT action, role, payload FROM desk_actions WHERE item_id = :i ORDER BY seq"),
                {"i": item_id},
            ).all()
        state = wf.replay((a, role, json.loads(p)) for a, role, p in history)
        rated = datetime.fromisoformat(assess_time.replace(" ", "T") + "+08:00")
        for action, flag, hours in sorted(steps, key=lambda s: s[2]):
            payload = {"note": "x"}
            if action == wf.CALLBACK:
                payload["reached"] = flag
            elif action in (wf.REVIEW_OPINION, wf.REVIEW_DECIDE):
                payload["adopt"] = flag
            role = wf.SUPERVISOR if action == wf.REVIEW_DECIDE else wf.DEPT
            try:
                state = wf.step(state, action, role, payload)
            except wf.Refused:
                continue
            at = (rated + timedelta(hours=hours)).astimezone(UTC).isoformat(timespec="seconds")
            with store.engine.begin() as conn:  # as the desk appends: the status and the facts with it
                _append_in(conn, item_id, "t", role, action, payload, state.status, at)


def reference(figures: FigureStore, store: HubStore, first, last, rule, today, staff=None, item=None):
    """The cells of the period replayed from the events, with the desk's counts item by item."""
    fresh, _ = figures.recompute()
    cells = {
        c: v
        for c, v in fresh.items()
        if first <= c.day <= last
        and (staff is None or c.staff_no == staff)
        and (item is None or c.item_code == item)
    }
    with store.engine.connect() as conn:
        desk = m.desk_deltas(
            (
                d
                for d in desk_items(conn, first, last, rule)
                if (staff is None or d.cell.staff_no == staff) and (item is None or d.cell.item_code == item)
            ),
            today,
        )
    return m.merge_deltas(cells, desk)


def grouped(cells, by, snap_like, f, first, last) -> dict:
    groups, total = m.group(cells.items(), by, snap_like.sections, snap_like.labels, f, first, last)
    out = {k: v.as_dict() for k, v in groups.items() if any(v.as_dict().values())}
    out["(total)"] = total.as_dict()
    return out


def check_record(store: HubStore, r) -> None:
    build(store, r)
    holidays = {date.today() + timedelta(days=n) for n in r["holidays"]}
    years = frozenset({d.year for d in (date.today(), date.today() + timedelta(days=60), FIRST_DAY)})
    rule = deadline_rule(WorkCalendar(years, frozenset(holidays)), r["working_days"])
    today = date.today() + timedelta(days=r["today"])
    figures = FigureStore(store.engine, today=lambda: today, deadline_of=rule)
    figures.refresh()
    cases = [
        ("dept", m.Filters(), {}, True),
        ("window", m.Filters(), {}, True),
        ("staff", m.Filters(), {}, False),
        ("staff", m.Filters(dept="A"), {}, True),
        ("item", m.Filters(), {}, False),
        ("item", m.Filters(window="03"), {"staff": STAFF[0]}, True),
        ("day", m.Filters(), {"item": "I1"}, False),
        ("day", m.Filters(), {}, False),
        ("month", m.Filters(), {}, False),
        ("month", m.Filters(dept="B"), {"staff": STAFF[1]}, True),
    ]
    for start, length in r["periods"]:
        first, last = day_of(start).isoformat(), min(day_of(start + length), day_of(79)).isoformat()
        for by, f, picked, by_device in cases:
            snap = figures.snapshot(
                first, last, keep=KEEP.get(by, ()), by_device=by_device, refresh=False, **picked
            )
            want = reference(figures, store, first, last, rule, today, **picked)
            assert grouped(snap.cells, by, snap, f, first, last) == grouped(want, by, snap, f, first, last), (
                by,
                f,
                picked,
                first,
                last,
            )
        only = figures.snapshot(first, last, keep=("staff_no",), desk_fields=("not_adopted",), refresh=False)
        want = reference(figures, store, first, last, rule, today)
        got, _ = m.group(only.cells.items(), "staff", only.sections, only.labels)
        expected, _ = m.group(want.items(), "staff", only.sections, only.labels)
        assert {k: v.not_adopted for k, v in got.items() if v.not_adopted} == {
            k: v.not_adopted for k, v in expected.items() if v.not_adopted
        }
    assert figures.verify() == []


@pytest.mark.parametrize("kind", DATABASES)
def test_the_rollups_serve_what_the_record_says(kind, tmp_path):
    @settings(
        max_examples=30 if kind == "sqlite" else 8,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(record)
    def check(r) -> None:
        store = fresh_store(kind, tmp_path)
        try:
            check_record(store, r)
        finally:
            store.close()

    check()


@pytest.mark.parametrize("kind", DATABASES)
def test_verify_names_a_corrupted_rollup(kind, tmp_path):
    store = fresh_store(kind, tmp_path)
    try:
        build(
            store,
            {
                "services": [(0, 43, 0, "I1", (1, [], "phone")), (1, 44, 1, "I2", (4, [], "plain"))],
                "phones": [(1, 45, 2, False, 1)],
                "cut": 9,
                "moved": None,
                "steps": [[(wf.CALLBACK, True, 2), (wf.RECTIFY, True, 3), (wf.CLOSE, True, 4)]],
            },
        )
        figures = FigureStore(store.engine)
        assert figures.verify() == []
        with store.engine.begin() as conn:  # 回访 that never reached the rater, an edited month, a lost day
            conn.execute(update(item_facts).values(called_back=0))
            conn.execute(update(item_months).where(item_months.c.item_code == "I2").values(good=7))
            conn.execute(staff_days.delete().where(staff_days.c.staff_no == STAFF[1]))
        problems = figures.verify()
        assert any(p.startswith("desk item ") and "called_back=0" in p for p in problems), problems
        assert any("2026-11 事项 I2 (all devices and staff): good served 7" in p for p in problems), problems
        assert any(f"staff {STAFF[1]} (all 事项)" in p for p in problems), problems
        assert len(GRAINS) == 6
        with store.engine.begin() as conn:  # a phone rating the head would count twice
            conn.execute(update(folded_phone_count).values(folded=folded_phone_count.c.folded + 1))
        assert any("fig_phone_count says 2" in p for p in figures.verify())
        with store.engine.begin() as conn:
            conn.execute(update(folded_phone_count).values(folded=folded_phone_count.c.folded - 1))
        with store.engine.begin() as conn:  # an item whose facts were never written
            conn.execute(item_facts.delete())
        assert any("stored as nothing" in p for p in figures.verify())
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM desk_items")).scalar() == 2
            assert conn.execute(text("SELECT count(*) FROM desk_actions")).scalar() == 3
    finally:
        store.close()

"""The figures' pure core: a hand-computed record, and properties over any record (hypothesis)."""

from __future__ import annotations

from datetime import date

import figures_data as data
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.figures import model as m

SECTIONS = m.Sections({data.W03: [("2026-01-01", data.DEPT_A)], data.W05: [("2026-01-01", data.DEPT_B)]})
TODAY = date(2026, 11, 30)


def hand_record() -> tuple[m.Deltas, m.Labels]:
    phone_cases = {(data.W03, "C2")}
    d03, _, labels = m.replay_log(
        data.W03, data.EVENTS_W03, rated_by_phone=lambda c: (data.W03, c) in phone_cases
    )
    d05, _, labels5 = m.replay_log(data.W05, data.EVENTS_W05)
    dphone, labels_phone = m.phone_rating_deltas([data.PHONE_C2])
    desk = m.desk_deltas(
        [
            # C3's 差评: 不属实
            m.DeskItem(
                m.Cell("2026-11-02", data.W03, "0371", "I1"), True, True, False, date(2026, 11, 9), None
            ),
            # C2's phone 差评: no phone number, open past its deadline
            m.DeskItem(
                m.Cell("2026-11-02", data.W03, "0371", "I2"), False, False, False, date(2026, 11, 9), None
            ),
            # C6's 差评: real name, reached, closed before its deadline
            m.DeskItem(
                m.Cell("2026-11-03", data.W05, "0402", "I1"),
                False,
                True,
                True,
                date(2026, 11, 10),
                date(2026, 11, 4),
            ),
        ],
        TODAY,
    )
    return m.merge_deltas(d03, d05, dphone, desk), labels.merge(labels5).merge(labels_phone)


def row(counts: m.Counts) -> dict:
    return {**counts.as_dict(), **m.rates(counts)}


def test_the_hand_computed_record_by_section():
    cells, labels = hand_record()
    groups, total = m.group(cells.items(), "dept", SECTIONS, labels)
    for dept, expected in data.EXPECTED_BY_DEPT.items():
        got = row(groups[dept])
        for name, value in expected.items():
            assert got[name] == pytest.approx(value) if value is not None else got[name] is None, (dept, name)
    got = row(total)
    for name, value in data.EXPECTED_TOTAL.items():
        assert got[name] == pytest.approx(value), name


@pytest.mark.parametrize(
    "by, expected",
    [("staff", data.EXPECTED_BY_STAFF), ("item", data.EXPECTED_BY_ITEM), ("day", data.EXPECTED_BY_DAY)],
)
def test_the_hand_computed_record_by(by, expected):
    cells, labels = hand_record()
    groups, _ = m.group(cells.items(), by, SECTIONS, labels)
    got = {k: (c.services, c.rated, c.good, c.bad, c.not_adopted) for k, c in groups.items()}
    assert got == expected


def test_windows_are_named_by_the_number_their_evaluator_reports():
    cells, labels = hand_record()
    groups, _ = m.group(cells.items(), "window", SECTIONS, labels)
    assert set(groups) == {"03", "05"}
    assert labels.name("staff", "0371") == "王晓燕"
    assert labels.name("items", "I2") == "社保卡补办"


def test_filters_drill_down():
    cells, labels = hand_record()
    groups, total = m.group(cells.items(), "staff", SECTIONS, labels, m.Filters(dept=data.DEPT_A))
    assert set(groups) == {"0371", ""} and total.services == 5
    groups, total = m.group(cells.items(), "item", SECTIONS, labels, m.Filters(window="03", staff="0371"))
    assert {k: c.rated for k, c in groups.items()} == {"I1": 2, "I2": 1, "": 1}
    _, total = m.group(cells.items(), "day", SECTIONS, labels, m.Filters(depts=frozenset({data.DEPT_B})))
    assert total.services == 2


def test_a_terminal_rating_of_a_case_rated_by_phone_first_is_not_counted_twice():
    deltas, _, _ = m.replay_log(data.W03, data.EVENTS_W03, rated_by_phone=lambda c: c == "C1")
    total = m.Counts()
    for c in deltas.values():
        total.add(c)
    assert total.duplicates == 1 and total.rated == 2


def test_an_unreadable_rating_is_counted_as_such_and_nothing_else():
    events = [
        {"seq": 1, "type": "rating", "at": data.t("02", "10:00:00"), "payload": {"satisfaction": 9}},
    ]
    deltas, state, _ = m.replay_log("D", events)
    assert sum(c.unreadable for c in deltas.values()) == 1
    assert sum(c.rated for c in deltas.values()) == 0 and state.seq == 1


def test_sections_by_day_first_assignment_covers_the_setting_up_days():
    s = m.Sections({"D": [("2026-03-01", "A"), ("2026-06-01", "B")]})
    assert s.of("D", "2026-01-15") == "A"
    assert s.of("D", "2026-05-31") == "A"
    assert s.of("D", "2026-06-01") == "B"
    assert s.of("E", "2026-06-01") == m.NONE_KEY


def test_periods():
    assert m.period_range("2026Q4") == ("2026-10-01", "2026-12-31")
    assert m.period_range("2024-02") == ("2024-02-01", "2024-02-29")
    assert m.previous_periods("2026-02", 3) == ["2025-12", "2026-01", "2026-02"]
    assert m.previous_periods("2026Q1", 2) == ["2025Q4", "2026Q1"]
    assert m.quarter_of("2026-11-30") == "2026Q4"


# --- any record ------------------------------------------------------------------------------------------

DAYS = ["2026-11-01", "2026-11-02", "2026-11-03"]


@st.composite
def logs(draw):
    """A plausible kiosk log: sign-ins and -outs, cases, ratings and skips of open cases, some junk."""
    items, open_case = [], None
    for _ in range(draw(st.integers(0, 40))):
        day = draw(st.sampled_from(DAYS))
        at = f"{day}T10:00:00.000+08:00"
        kind = draw(st.sampled_from(["signin", "signout", "open", "rate", "skip", "junk"]))
        seq = len(items) + 1
        if kind == "signin":
            items.append(
                ("staff_signin", at, {"staff_no": draw(st.sampled_from(["1", "2"])), "staff_name": "x"})
            )
        elif kind == "signout":
            items.append(("staff_signout", at, {"staff_no": "1"}))
        elif kind == "open":
            source = draw(st.sampled_from(["queue", "walkin"]))
            items.append(
                ("case_opened", at, data.case(draw(st.sampled_from(["C1", "C2", None])), "I1", source))
            )
            open_case = seq
        elif kind == "rate" and open_case:
            s = draw(st.integers(1, 5))
            items.append(
                (
                    "rating",
                    at,
                    data.rating(open_case, "1", "x", "03", "C1", draw(st.sampled_from(["I1", "I2"])), s),
                )
            )
            open_case = None
        elif kind == "skip" and open_case:
            items.append(("rating_skipped", at, {"case_seq": open_case, "why": "timeout"}))
            open_case = None
        elif kind == "junk":
            items.append(("rating", at, {"satisfaction": 0}))
    return data.chain("L", items)


def total_of(deltas: m.Deltas) -> m.Counts:
    total = m.Counts()
    for c in deltas.values():
        total.add(c)
    return total


@settings(max_examples=200, deadline=None)
@given(logs(), st.lists(st.integers(0, 45), max_size=4), st.booleans())
def test_replaying_in_stretches_gives_the_same_cells(events, cuts, by_phone):
    """What rollups rely on: folding a log batch by batch, carrying the state, equals one replay."""
    rated_by_phone = (lambda c: c == "C1") if by_phone else (lambda c: False)
    whole, _, _ = m.replay_log("D", events, rated_by_phone=rated_by_phone)
    state, parts = m.LogState(), {}
    bounds = sorted({0, len(events), *[min(c, len(events)) for c in cuts]})
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        state = m.LogState.from_json(state.to_json())  # as stored between batches
        m.replay_log("D", events[lo:hi], state, rated_by_phone=rated_by_phone, deltas=parts)
    assert {k: v.as_dict() for k, v in parts.items()} == {k: v.as_dict() for k, v in whole.items()}


@settings(max_examples=200, deadline=None)
@given(logs())
def test_invariants_of_any_log(events):
    deltas, _, labels = m.replay_log("D", events)
    total = total_of(deltas)
    ratings = [e for e in events if e["type"] == "rating"]
    assert total.good + total.bad == total.rated == sum(total.as_dict()[f"s{i}"] for i in range(1, 6))
    assert total.rated + total.unreadable == len(ratings)
    assert total.services == sum(1 for e in events if e["type"] == "case_opened")
    assert total.skipped <= total.services and total.walkin <= total.services
    for by in m.DIMENSIONS:  # every grouping sums to the same total
        _, t = m.group(deltas.items(), by, m.Sections(), labels)
        assert t.as_dict() == total.as_dict()


@given(st.integers(0, 10_000), st.integers(0, 10_000), st.integers(0, 10_000))
def test_rates_are_fractions_or_none(good, bad, not_adopted):
    c = m.Counts(rated=good + bad, good=good, bad=bad, not_adopted=min(not_adopted, bad), services=good + bad)
    r = m.rates(c)
    if c.rated - c.not_adopted == 0:
        assert r["satisfactionRate"] is None
    else:
        assert 0 <= r["satisfactionRate"] <= 1 and 0 <= r["badRate"] <= 1
        assert r["satisfactionRate"] + r["badRate"] == pytest.approx(1)


# --- rankings ------------------------------------------------------------------------------------------


def counts(good: int, bad: int, not_adopted: int = 0) -> m.Counts:
    return m.Counts(rated=good + bad, good=good, bad=bad, not_adopted=not_adopted)


def test_ranking_best_first_with_ties_and_unranked():
    groups = {"a": counts(9, 1), "b": counts(10, 0), "c": counts(18, 2), "d": counts(1, 0), "e": counts(5, 5)}
    ranked = m.rank_period(groups, min_rated=5)
    assert ranked == [("b", 1), ("a", 2), ("c", 3), ("e", 4), ("d", None)]
    assert m.bottom_keys(ranked, 1) == {"e"}
    assert m.bottom_keys(ranked, 2) == {"e", "c"}


def test_not_adopted_ratings_drop_out_of_the_ranking():
    groups = {"a": counts(9, 1, not_adopted=1), "b": counts(9, 1)}
    assert m.rank_period(groups, min_rated=1) == [("a", 1), ("b", 2)]


def test_bottom_n_for_k_periods_running():
    month = lambda worst: {k: counts(5, 5) if k == worst else counts(9, 1) for k in "abc"}  # noqa: E731
    periods = [("2026-09", month("a")), ("2026-10", month("b")), ("2026-11", month("b"))]
    out = {r.key: r for r in m.rankings(periods, n=1, k=2, min_rated=1)}
    assert out["b"].bottom and out["b"].run == 2 and out["b"].flagged
    assert not out["a"].bottom and out["a"].run == 0 and not out["a"].flagged
    out = {r.key: r for r in m.rankings(periods, n=1, k=3, min_rated=1)}
    assert not out["b"].flagged


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from("abcdef"), st.tuples(st.integers(0, 9), st.integers(0, 9)), min_size=1
        ),
        min_size=1,
        max_size=5,
    ),
    st.integers(1, 3),
    st.integers(1, 4),
)
def test_flagged_means_in_the_bottom_each_of_the_last_k_periods(raw, n, k):
    periods = [(str(i), {key: counts(g, b) for key, (g, b) in p.items()}) for i, p in enumerate(raw)]
    for r in m.rankings(periods, n=n, k=k, min_rated=1):
        last_k = periods[-k:]
        in_all = len(last_k) == k and all(r.key in m.bottom_keys(m.rank_period(g, 1), n) for _, g in last_k)
        assert r.flagged == in_all


# --- the sample ----------------------------------------------------------------------------------------


@given(
    st.lists(st.text(min_size=1, max_size=6), max_size=60),
    st.integers(0, 2**64 - 1),
    st.integers(0, 70),
    st.randoms(),
)
def test_the_sample_is_reproducible_from_its_seed(population, seed, size, rnd):
    first = m.draw_sample(population, seed, size)
    shuffled = list(population)
    rnd.shuffle(shuffled)
    assert m.draw_sample(shuffled, seed, size) == first  # whatever order the cases came in
    assert len(first) == min(size, len(set(population))) and set(first) <= set(population)
    assert m.population_digest(shuffled) == m.population_digest(population)


def test_sample_size():
    assert m.sample_size(1000, 0.05, 10, 200) == 50
    assert m.sample_size(100, 0.05, 10, 200) == 10
    assert m.sample_size(5, 0.05, 10, 200) == 5
    assert m.sample_size(100_000, 0.05, 10, 200) == 200

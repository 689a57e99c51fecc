"""Hostile uploads against the ingest on a real PostgreSQL server, both paths (hub/ingest_pg.py and the
general one): payloads the checks let through but the database cannot hold, and what each path then
stores and acknowledges. Skipped when ``KIOSK_TEST_PG_URL`` is unset."""

from __future__ import annotations

import threading

import figures_data as data
import pytest
from sqlalchemy import select, text
from test_hub_ingest_pg import LOG, PG_URL, W, _empty, _held, _send, wiped  # noqa: F401 (wiped: the fixture)
from test_hub_support import wait_until, waiting_for_a_lock

from hub.derived import opened_cases
from hub.figures.store import FigureStore
from hub.ingest_pg import plan
from hub.schema import ratings
from hub.storage import IngestResult
from hub.upstream.outbox import CASE_LOCK_SPACE, case_lock_keys, outbox
from hub.verify import run_checks

pytestmark = pytest.mark.skipif(not PG_URL, reason="KIOSK_TEST_PG_URL is not set (see .ci/postgres.sh)")


@pytest.mark.parametrize("path", ["fast", "general"])
def test_a_case_number_with_a_nul_does_not_stop_the_log(wiped, path):  # noqa: F811
    """A case_opened whose case number holds a NUL (a scanner's stray byte): PostgreSQL text cannot hold
    it. The event is stored like any (its payload is canonical JSON, the NUL escaped), its opened_cases
    row is not made (no phone can ask for such a case), and the log goes on: before, every upload of the
    log failed on it, on both paths, for ever."""
    store = wiped[0] if path == "fast" else wiped[1]
    at = data.t("02", "09:00:00")
    batch = data.chain(
        LOG,
        [
            ("case_opened", at, data.case("C\x001", "I1")),
            ("case_opened", at, data.case("C2", "I1")),
            ("rating", at, data.rating(2, "0371", "王晓燕", "03", "C2", "I1", 5)),
        ],
    )
    assert store.ingest(W, LOG, batch[:1]).acked_seq == 1
    assert store.ingest(W, LOG, batch[1:]).acked_seq == 3
    assert store.log_events(W, LOG) == batch
    with store.engine.connect() as conn:
        assert conn.execute(select(opened_cases.c.case_no)).scalars().all() == ["C2"]
        assert conn.execute(select(ratings.c.seq)).scalars().all() == [3]
    assert all(r.ok for r in run_checks(store)), [r for r in run_checks(store) if not r.ok]


def test_a_nul_in_a_kiosk_name_or_code_does_not_stop_the_figures(wiped):  # noqa: F811
    """A staff_signin and a case_opened whose staff number, name, 事项 code and name hold a NUL (stored like
    any event: their payloads are canonical JSON, the NUL escaped). The figures' fold makes cells and
    labels of them; PostgreSQL text cannot hold a NUL, so the fold failed, and with it every later fold of
    every device: the figures stood still hub-wide because of one kiosk. ``stats --verify`` agrees."""
    store = wiped[0]
    at = data.t("02", "09:00:00")
    batch = data.chain(
        LOG,
        [
            ("staff_signin", at, {"staff_no": "03\x0071", "staff_name": "王\x00晓燕", "window": "03"}),
            ("case_opened", at, {**data.case("C1", "I\x001"), "item_name": "登\x00记"}),
            ("rating", at, data.rating(2, "0371", "王晓燕", "03", "C1", "I1", 5)),
        ],
    )
    assert store.ingest(W, LOG, batch).acked_seq == 3
    figures = FigureStore(store.engine)
    assert figures.refresh() == 3
    assert figures.verify() == []


def test_a_code_longer_than_the_cells_keys_does_not_stop_the_figures(wiped):  # noqa: F811
    """The same with a staff number and a 事项 code of 65 characters, a rating's included (its row is
    exported as sent): the cells' key columns hold 64."""
    store = wiped[0]
    at = data.t("02", "09:00:00")
    long = "0" * 65
    batch = data.chain(
        LOG,
        [
            ("staff_signin", at, {"staff_no": long, "staff_name": "王晓燕", "window": "03"}),
            ("case_opened", at, data.case("C1", long)),
            ("rating", at, data.rating(2, long, "王晓燕", "03", "C1", long, 5)),
        ],
    )
    assert store.ingest(W, LOG, batch).acked_seq == 3
    figures = FigureStore(store.engine)
    assert figures.refresh() == 3
    assert figures.verify() == []


def _odd_log() -> list[dict]:
    """Good ratings the PostgreSQL path takes, with what a general path's statement meets differently: case
    numbers empty, absent, of 2,000 characters, of emoji, with JSON's escapes and SQL's quotes, shared by
    two ratings in one batch; details of good ratings (one with a phone number, one rating detailed twice,
    the last one winning)."""
    at = data.t("02", "09:00:00")
    r = lambda case_no, level: data.rating(0, "0371", "王\u2028晓燕", "03", case_no, "I1", level)  # noqa: E731
    weird = ["a\"b\\c'd;--", "😀\U0001f4a9", "x" * 2000, "\t\n\r\u0001"]
    items: list[tuple[str, str, dict]] = [
        ("rating", at, r("", 5)),
        ("rating", at, r(None, 4)),
        ("rating", at, r(weird[0], 3)),
        ("rating_detail", at, {"rating_seq": 3, "reasons": ["1", "2"], "contact_sealed": "sealed:abc"}),
        ("rating_detail", at, {"rating_seq": 3, "reasons": [], "contact_sealed": None}),
        *[("rating", at, r(w, 5)) for w in weird[1:]],
        ("rating", at, r(weird[0], 4)),
        ("unknown_kind", at, {"text": "\u0000\u2028", "n": 1.5e300, "deep": [[[[{}]]]]}),
    ]
    return data.chain(LOG, items)


@pytest.mark.parametrize("cut", [1, 2, 3, 5, 10])
def test_odd_but_good_batches_store_the_same_rows_on_both_paths(wiped, cut):  # noqa: F811
    fast, general = wiped
    batch = _odd_log()
    held = []
    for store in (general, fast):
        _empty(store)
        assert _send(store, batch, cut)[-1] == len(batch)
        assert store.log_events(W, LOG) == batch
        assert all(r.ok for r in run_checks(store)), [r for r in run_checks(store) if not r.ok]
        held.append(_held(store))
    assert held[0] == held[1]
    eligible = [plan(W, LOG, batch[lo : lo + cut], "") for lo in range(0, len(batch), cut)]
    assert fast.pg_ingest is not None and fast.pg_ingest.taken == sum(p is not None for p in eligible) > 0


def test_a_backend_killed_inside_the_first_round_trip_stores_and_acknowledges_once(wiped):  # noqa: F811
    """The upload's backend is killed while it holds the log's row and waits for its case's lock (inside
    the path's transaction, before anything is written): the path tries again on a new connection, waits
    again, and stores the batch once when the case is free; the answer is the batch's last seq."""
    fast, _general = wiped
    at = data.t("02", "09:00:00")
    batch = data.chain(
        LOG,
        [
            ("case_opened", at, data.case("K1", "I1")),
            ("rating", at, data.rating(1, "0371", "王晓燕", "03", "K1", "I1", 5)),
        ],
    )
    holder = fast.engine.connect()
    transaction = holder.begin()
    holder.execute(
        text("SELECT pg_advisory_xact_lock(:a, :k)"), {"a": CASE_LOCK_SPACE, "k": case_lock_keys(["K1"])[0]}
    )
    answers: list[IngestResult] = []
    upload = threading.Thread(target=lambda: answers.append(fast.ingest(W, LOG, batch)))
    upload.start()
    try:
        wait_until(lambda: waiting_for_a_lock(holder), what="the upload waiting for its case")
        with fast.engine.connect() as killer:
            killed = killer.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
            ).scalar()
        assert killed == 1
        wait_until(lambda: waiting_for_a_lock(holder), what="the upload waiting again, on a new connection")
    finally:
        transaction.commit()
        holder.close()
        upload.join(30)
    assert answers == [IngestResult(2, 2)]
    assert fast.pg_ingest is not None and fast.pg_ingest.taken == 1
    assert fast.log_events(W, LOG) == batch
    with fast.engine.connect() as conn:
        assert conn.execute(select(outbox.c.project_no, outbox.c.assess_number)).all() == [("K1", 1)]
    assert all(r.ok for r in run_checks(fast)), [r for r in run_checks(fast) if not r.ok]

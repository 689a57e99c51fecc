"""Hostile uploads against the ingest on a real PostgreSQL server, both paths (hub/ingest_pg.py and the
general one): payloads the checks let through but the database cannot hold, and what each path then
stores and acknowledges. Skipped when ``KIOSK_TEST_PG_URL`` is unset."""

from __future__ import annotations

import figures_data as data
import pytest
from sqlalchemy import select
from test_hub_ingest_pg import LOG, PG_URL, W, wiped  # noqa: F401 (wiped: the fixture)

from hub.derived import opened_cases
from hub.figures.store import FigureStore
from hub.schema import ratings
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

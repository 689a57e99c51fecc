"""Hostile uploads against the ingest on a real PostgreSQL server, both paths (hub/ingest_pg.py and the
general one): payloads the checks let through but the database cannot hold, and what each path then
stores and acknowledges. Skipped when ``KIOSK_TEST_PG_URL`` is unset."""

from __future__ import annotations

import figures_data as data
import pytest
from sqlalchemy import select
from test_hub_ingest_pg import LOG, PG_URL, W, wiped  # noqa: F401 (wiped: the fixture)

from hub.derived import opened_cases
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

"""The figures on PostgreSQL: the hand-computed record by section through the API, folding batch by
batch, and ``stats --verify`` catching an edited cell, on a real server (KIOSK_TEST_PG_URL)."""

from __future__ import annotations

import os

import figures_data as data
import pytest
from sqlalchemy import update
from test_figures_api import NOVEMBER, Env
from test_hub_support import wipe_database

from hub.figures.store import FigureStore
from hub.figures.tables import cells

PG_URL = os.environ.get("KIOSK_TEST_PG_URL")
pytestmark = pytest.mark.skipif(not PG_URL, reason="KIOSK_TEST_PG_URL is not set (see .ci/postgres.sh)")


@pytest.fixture
def env(tmp_path):

    wipe_database(PG_URL)
    e = Env(tmp_path, PG_URL)
    yield e
    e.hub.stop()
    e.store.close()


def test_the_hand_computed_record_on_postgres(env):
    env.decide()
    body = env.get("sup", "/stats", by="dept", **NOVEMBER).json()
    rows = {r["key"]: r for r in body["rows"]}
    for dept, expected in data.EXPECTED_BY_DEPT.items():
        for name, value in expected.items():
            got = rows[dept][name]
            assert (got is None) if value is None else got == pytest.approx(value), (dept, name, got)
    by_item = env.get("sup", "/stats", by="item", **NOVEMBER).json()["rows"]
    assert {r["key"]: r["services"] for r in by_item} == {k: v[0] for k, v in data.EXPECTED_BY_ITEM.items()}


def test_verify_on_postgres_catches_an_edited_cell(env):
    figures = FigureStore(env.store.engine)
    assert figures.verify() == []
    with env.store.engine.begin() as conn:
        conn.execute(update(cells).where(cells.c.device_id == data.W05).values(bad=0))
    problems = figures.verify()
    assert problems and all("XHA-W05" in p for p in problems)


def test_the_desk_counts_summed_in_sql_on_postgres(env):
    from test_figures_api import desk_counts_agree

    from hub.desk.roles import SUPERVISOR, Principal

    desk_counts_agree(env)
    env.decide()
    env.desk.act(Principal("sup", SUPERVISOR), env.item_of("C2"), "callback", {"reached": False, "note": ""})
    desk_counts_agree(env)

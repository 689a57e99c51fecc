"""Revision 0006's indexes exist after a migration, on SQLite and (with ``KIOSK_TEST_PG_URL``) on
PostgreSQL, and PostgreSQL uses the events one for the phone page's look-up of a case."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import inspect, text

from hub.storage import HubStore

PG_URL = os.environ.get("KIOSK_TEST_PG_URL")


def _indexes(store: HubStore, table: str) -> dict[str, list[str]]:
    return {i["name"]: i["column_names"] for i in inspect(store.engine).get_indexes(table)}


def test_the_indexes_are_made_on_sqlite(tmp_path):
    store = HubStore(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        assert _indexes(store, "events")["events_device_type"] == ["device_id", "type", "received_at"]
        assert _indexes(store, "upstream_outbox")["upstream_outbox_status_id"] == ["status", "id"]
    finally:
        store.close()


@pytest.mark.skipif(not PG_URL, reason="KIOSK_TEST_PG_URL is not set")
def test_postgresql_finds_a_case_opened_event_by_the_index():
    from test_hub_support import wipe_database

    wipe_database(PG_URL)
    store = HubStore(PG_URL)
    try:
        assert "events_device_type" in _indexes(store, "events")
        with store.engine.begin() as conn:
            conn.execute(
                text("SET LOCAL enable_seqscan = off")
            )  # an empty table: make the planner show its hand
            plan = "\n".join(
                conn.execute(
                    text(
                        "EXPLAIN SELECT payload FROM events WHERE device_id = 'W01' AND type = 'case_opened' "
                        "ORDER BY received_at DESC"
                    )
                ).scalars()
            )
        assert "events_device_type" in plan
    finally:
        store.close()

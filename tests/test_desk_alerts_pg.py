"""The 差评 alerts on a real PostgreSQL hub, against uploads committing out of the order of their items'
ids. Skipped when ``KIOSK_TEST_PG_URL`` is unset."""

from __future__ import annotations

import os
import threading

import pytest
from desk_support import desk_hub
from sqlalchemy import insert
from test_desk_alerts import receiver  # noqa: F401 (the fixture)
from test_hub_support import post_events, rating_payload, wait_until, waiting_for_a_lock, wipe_database

from hub.desk.alerts import Alerts
from hub.desk.settings import AlertTarget, DeskSettings
from hub.upstream.outbox import outbox

PG_URL = os.environ.get("KIOSK_TEST_PG_URL")
pytestmark = pytest.mark.skipif(not PG_URL, reason="KIOSK_TEST_PG_URL is not set (see .ci/postgres.sh)")


@pytest.fixture
def wiped():
    wipe_database(PG_URL)


def test_a_bad_rating_committed_after_a_later_one_was_alerted_is_alerted_too(tmp_path, receiver, wiped):  # noqa: F811
    """Two windows' 差评 uploaded at once: the first upload's item takes the lower id but commits after the
    second's, and a scan runs in between. The scan's watermark (the highest item id it saw) passed the first
    item before it was visible; it must still be alerted. Made deterministic by holding the first upload on
    the outbox's key of its case (a row of the same key, uncommitted, in a transaction of the test's)."""
    receiver.fail_first = 0
    told = AlertTarget("webhook", f"{receiver.url}/told", ("bad_rating",))
    with desk_hub(tmp_path, PG_URL, alerts=(told,)) as env:
        settings = DeskSettings(alerts=(told,), today=env.clock)
        alerts = Alerts(env.store.engine, env.desk, settings, backoff_s=0.0)
        alerts.run_once()  # the first scan marks where alerts start
        holder = env.store.engine.connect()
        transaction = holder.begin()
        holder.execute(
            insert(outbox).values(
                channel="window",
                device_id="W9",
                project_no="370211202611280101",
                assess_number=1,
                assess_day="2026-11-28",
                status="pending",
                attempts=0,
                next_attempt_at=0.0,
                created_at="2026-11-28T00:00:00+00:00",
            )
        )
        log = env.logs["W1"]  # the kiosk's log is made here (SQLite, this thread's); sent from another
        seq = log.append("rating", rating_payload(1, case_no="370211202611280101", satisfaction=1))["seq"]
        log.append("rating_detail", {"rating_seq": seq, "reasons": ["101"], "contact_sealed": None})
        sent = list(log.events_after(0))
        answers: list[int] = []
        first = threading.Thread(
            target=lambda: answers.append(
                post_events(env.url, env.secrets["W1"], log.log_id, sent, "W1").status_code
            )
        )
        first.start()
        try:
            # Its item inserted (the lower id), its outbox record waiting on the test's row.
            wait_until(lambda: waiting_for_a_lock(holder), what="the first upload waiting, its item made")
            env.bad_rating("W2", "370211202611280102")  # committed, the higher id
            alerts.run_once()
        finally:
            transaction.rollback()
            holder.close()
            first.join(30)
        assert answers == [200]
        alerts.run_once()
        alerts.run_once()
        items = sorted(b["item"] for p, b in receiver.received if b["event"] == "bad_rating")
        assert len(items) == 2, receiver.received

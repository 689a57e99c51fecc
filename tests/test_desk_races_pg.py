"""Uploads racing desk users on the same 差评, on a real PostgreSQL hub over HTTP: a rater's correction to
good (the item withdrawn at ingest) against a 办结 (the desk's record never holds a step its workflow
refuses), a detail with a phone number against a 回访 (the item's figures' facts stay what the record
says). Skipped when ``KIOSK_TEST_PG_URL`` is unset."""

from __future__ import annotations

import json
import os
import threading

import pytest
from desk_support import desk_hub
from sqlalchemy import select, text
from test_hub_support import post_events, rating_payload, wait_until, wipe_database

from hub.desk import workflow as wf
from hub.desk.tables import actions, items
from hub.verify import run_checks

PG_URL = os.environ.get("KIOSK_TEST_PG_URL")
pytestmark = pytest.mark.skipif(not PG_URL, reason="KIOSK_TEST_PG_URL is not set (see .ci/postgres.sh)")


@pytest.fixture
def env(tmp_path):
    wipe_database(PG_URL)
    with desk_hub(tmp_path, PG_URL) as env:
        yield env


def _waiting(engine, holder_pid: int) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND pid <> pg_backend_pid() AND pid <> :holder"
            ),
            {"holder": holder_pid},
        ).scalar()


def test_a_withdrawal_racing_a_close_never_follows_it_in_the_record(env):
    """The item is 已整改; a supervisor closes it (办结) while the rater's correction to good arrives. Both
    checked the item as 已整改 and both append; the desk record is one chain, so the second waits for the
    first's row and takes the next seq. The withdrawal must then be checked again against the item as it
    is (办结: finished, nothing to withdraw), not appended after the 办结 on what it read before. Made
    deterministic by holding the item's row: the close waits there after appending, the withdrawal waits
    for the close's row."""
    log = env.logs["W1"]
    rating = log.append("rating", rating_payload(1, case_no="370211202611280201", satisfaction=1))
    assert post_events(env.url, env.secrets["W1"], log.log_id, [rating], "W1").status_code == 200
    with env.store.engine.connect() as conn:
        item_id = conn.execute(select(items.c.id)).scalar_one()
    path = f"/bad-ratings/{item_id}/actions"
    assert env.api("sup", "POST", path, json={"action": "callback", "reached": True}).status_code == 200
    assert env.api("sup", "POST", path, json={"action": "rectify", "note": "已整改"}).status_code == 200
    log.append("rating_corrected", {"rating_seq": rating["seq"], "satisfaction": 5, "input": "touch"})
    log.append("rating_detail", {"rating_seq": rating["seq"], "reasons": [], "contact_sealed": None})
    correction = list(log.events_after(rating["seq"]))

    holder = env.store.engine.connect()
    transaction = holder.begin()
    holder.execute(select(items.c.id).where(items.c.id == item_id).with_for_update())
    pid = holder.execute(text("SELECT pg_backend_pid()")).scalar()
    answers: dict[str, int] = {}
    close = threading.Thread(
        target=lambda: answers.update(
            close=env.api("sup", "POST", path, json={"action": "close"}).status_code
        )
    )
    upload = threading.Thread(
        target=lambda: answers.update(
            upload=post_events(env.url, env.secrets["W1"], log.log_id, correction, "W1").status_code
        )
    )
    try:
        close.start()
        wait_until(
            lambda: _waiting(env.store.engine, pid) == 1, what="the close appended, waiting for the item"
        )
        upload.start()
        wait_until(lambda: _waiting(env.store.engine, pid) == 2, what="the withdrawal waiting for the close")
    finally:
        transaction.commit()
        holder.close()
        close.join(30)
        upload.join(30)
    assert answers == {"close": 200, "upload": 200}
    with env.store.engine.connect() as conn:
        history = conn.execute(
            select(actions.c.action, actions.c.role, actions.c.payload)
            .where(actions.c.item_id == item_id)
            .order_by(actions.c.seq)
        ).all()
    # The record holds only steps the workflow allows (every reader replays it).
    assert wf.replay((a, role, json.loads(p)) for a, role, p in history).status == wf.CLOSED
    assert all(r.ok for r in run_checks(env.store)), [r for r in run_checks(env.store) if not r.ok]


def test_an_items_facts_stay_true_when_a_callback_and_its_phone_number_arrive_at_once(env):
    """A 回访 recorded by a desk user while the rater's detail with a phone number arrives for the same
    差评: each writer rewrites the item's figures' facts (called_back, real_name) under the item's row
    lock, the second from what the first committed. Both wait on the item's row held by the test, then
    go in whichever order; the facts equal what ``stats --verify`` recomputes."""
    from hub.desk.store import check_item_facts
    from hub.figures.store import FigureStore

    log = env.logs["W1"]
    rating = log.append("rating", rating_payload(1, case_no="370211202611280301", satisfaction=2))
    assert post_events(env.url, env.secrets["W1"], log.log_id, [rating], "W1").status_code == 200
    with env.store.engine.connect() as conn:
        item_id = conn.execute(select(items.c.id)).scalar_one()
    sealed = "sealed-not-a-real-number"
    log.append("rating_detail", {"rating_seq": rating["seq"], "reasons": ["101"], "contact_sealed": sealed})
    detail = list(log.events_after(rating["seq"]))
    holder = env.store.engine.connect()
    transaction = holder.begin()
    holder.execute(select(items.c.id).where(items.c.id == item_id).with_for_update())
    pid = holder.execute(text("SELECT pg_backend_pid()")).scalar()
    answers: dict[str, int] = {}
    path = f"/bad-ratings/{item_id}/actions"
    callback = threading.Thread(
        target=lambda: answers.update(
            callback=env.api("sup", "POST", path, json={"action": "callback", "reached": True}).status_code
        )
    )
    upload = threading.Thread(
        target=lambda: answers.update(
            upload=post_events(env.url, env.secrets["W1"], log.log_id, detail, "W1").status_code
        )
    )
    try:
        callback.start()
        upload.start()
        wait_until(lambda: _waiting(env.store.engine, pid) == 2, what="both writers waiting for the item")
    finally:
        transaction.commit()
        holder.close()
        callback.join(30)
        upload.join(30)
    assert answers == {"callback": 200, "upload": 200}
    with env.store.engine.connect() as conn:
        assert check_item_facts(conn) == []
        facts = conn.execute(text("SELECT real_name, called_back FROM desk_item_facts")).all()
    assert facts == [(1, 1)]
    assert FigureStore(env.store.engine).verify() == []

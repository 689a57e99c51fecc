"""The ingest's PostgreSQL path for what live devices send (hub/ingest_pg.py) against the general path, on a
real server: the same rows in every table for a log split at every point, the batches it must leave to the
general path, duplicate uploads racing from two hub processes, and a connection the server closed.
Skipped when ``KIOSK_TEST_PG_URL`` is unset."""

from __future__ import annotations

import os
import threading

import figures_data as data
import pytest
from sqlalchemy import insert, select, text
from test_hub_support import wait_until, waiting_for_a_lock, wipe_database

from hub.derived import opened_cases
from hub.desk.store import check_item_facts
from hub.desk.tables import device_sections, items
from hub.ingest_pg import plan
from hub.schema import events, logs, ratings
from hub.storage import HubStore, IngestResult
from hub.upstream.outbox import CASE_LOCK_SPACE, outbox
from hub.verify import run_checks

PG_URL = os.environ.get("KIOSK_TEST_PG_URL")
pytestmark = pytest.mark.skipif(not PG_URL, reason="KIOSK_TEST_PG_URL is not set (see .ci/postgres.sh)")

W = data.W03
LOG = "00000000-0000-4000-8000-0000000fa57e"
# Timestamps of the hub's own clock differ between two runs; everything else must not.
_CLOCK_COLUMNS = {"received_at", "created_at", "first_seen_at", "last_seen_at"}
_TABLES = (events, logs, opened_cases, ratings, items, outbox)


def log_events(log_id: str = LOG, cases: str = "C") -> list[dict]:
    """A day at a window: cases rated good and bad (a 差评's reasons right after it), a case rated twice, a
    rating without a case number, a correction, a detail naming a rating two events back, an event of
    another kind."""
    at = data.t("02", "09:00:00")
    r = lambda seq, case_no, level: data.rating(seq, "0371", "王晓燕", "03", case_no, "I1", level)  # noqa: E731
    detail = lambda seq: {"rating_seq": seq, "reasons": ["201"], "contact_sealed": None}  # noqa: E731
    return data.chain(
        log_id,
        [
            ("case_opened", at, data.case(f"{cases}1", "I1")),  # 1
            ("rating", at, r(1, f"{cases}1", 5)),  # 2
            ("case_opened", at, data.case(f"{cases}2", "I1")),  # 3
            ("rating", at, r(3, f"{cases}2", 1)),  # 4: a 差评
            ("rating_detail", at, detail(4)),  # 5
            ("rating", at, r(3, f"{cases}2", 4)),  # 6: the same case again, numbered 2
            ("rating", at, r(0, None, 2)),  # 7: no case number, a 差评
            ("rating_detail", at, detail(7)),  # 8
            ("case_opened", at, data.case(f"{cases}3", "I2")),  # 9
            ("rating", at, r(9, f"{cases}3", 2)),  # 10
            ("rating_corrected", at, {"rating_seq": 10, "satisfaction": 4, "input": "touch"}),  # 11
            ("rating_detail", at, detail(10)),  # 12
            ("case_opened", at, data.case(f"{cases}4", "I2")),  # 13
            ("rating", at, r(13, f"{cases}4", 1)),  # 14
            ("case_opened", at, data.case(f"{cases}5", "I1")),  # 15
            ("rating_detail", at, detail(14)),  # 16: the detail of a rating two events back
            ("staff_login", at, {"staff_no": "0371"}),  # 17: stored like any event
        ],
    )


@pytest.fixture
def wiped():
    wipe_database(PG_URL)
    stores = [HubStore(PG_URL), HubStore(PG_URL, fast_ingest=False)]
    stores[0].add_device(W)
    with stores[0].engine.begin() as conn:
        conn.execute(insert(device_sections).values(device_id=W, dept=data.DEPT_A, at="2026-11-01T00:00:00"))
    yield stores
    for s in stores:
        s.close()


def _empty(store: HubStore) -> None:
    with store.engine.begin() as conn:
        names = ", ".join([t.name for t in _TABLES] + ["desk_actions", "desk_item_status", "desk_item_facts"])
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))  # noqa: S608 (the hub's own table names)


def _held(store: HubStore) -> dict[str, list[dict]]:
    with store.engine.connect() as conn:
        return {
            t.name: [
                {k: v for k, v in row.items() if k not in _CLOCK_COLUMNS}
                for row in conn.execute(select(t).order_by(*t.primary_key.columns)).mappings()
            ]
            for t in _TABLES
        }


def _held_desk(store: HubStore) -> list[tuple]:
    """The desk's record of the items (a correction to good withdraws its 差评's item)."""
    with store.engine.connect() as conn:
        return conn.execute(text("SELECT item_id, action, status FROM desk_actions ORDER BY seq")).all()


def _send(store: HubStore, batch: list[dict], cut: int) -> list[int]:
    return [store.ingest(W, LOG, batch[lo : lo + cut]).acked_seq for lo in range(0, len(batch), cut)]


@pytest.mark.parametrize("cut", range(1, 18))
def test_both_paths_store_the_same_rows_however_the_log_is_split(wiped, cut):
    fast, general = wiped
    batch = log_events()
    _empty(general)
    _send(general, batch, cut)
    wanted, wanted_desk = _held(general), _held_desk(general)
    assert wanted_desk  # the correction to good withdrew its item
    assert general.pg_ingest is None and len(wanted["events"]) == 17
    _empty(fast)
    assert _send(fast, batch, cut)[-1] == 17
    assert _held(fast) == wanted
    assert _held_desk(fast) == wanted_desk
    assert all(r.ok for r in run_checks(fast)), [r for r in run_checks(fast) if not r.ok]
    with fast.engine.connect() as conn:  # the figures' facts of every 差评 item (stats --verify's check)
        assert check_item_facts(conn) == []
    # Every batch the path can take, sent in order, was stored there; the others by the general path.
    eligible = [plan(W, LOG, batch[lo : lo + cut], "") for lo in range(0, len(batch), cut)]
    assert fast.pg_ingest is not None and fast.pg_ingest.taken == sum(p is not None for p in eligible)
    assert fast.pg_ingest.taken > 0 or cut >= 11  # from 11 on, the first batch holds the correction


def test_what_the_path_leaves_to_the_general_one():
    batch = log_events()
    now = "2026-11-02T01:00:00+00:00"
    assert plan(W, LOG, batch[:10], now) is not None  # cases, ratings and their details
    assert plan(W, LOG, batch[1:10], now) is not None  # a batch need not start the log
    assert plan(W, LOG, batch[16:17], now) is not None  # an event of another kind
    assert plan(W, LOG, [], now) is None
    assert plan(W, LOG, batch[:11], now) is None  # a correction
    assert plan(W, LOG, batch[15:16], now) is None  # the detail of a rating not in the batch
    assert plan(W, LOG, [batch[0], batch[2]], now) is None  # a gap inside the batch
    edited = [batch[0], {**batch[1], "at": data.t("02", "10:00:00")}]
    assert plan(W, LOG, edited, now) is None  # an edited event
    unusable = data.chain(LOG, [("rating", batch[1]["at"], {**batch[1]["payload"], "satisfaction": 9})])
    assert plan(W, LOG, unusable, now) is None  # a payload the export cannot show: the general path says so


def _send_all(store: HubStore, batch: list[dict], cut: int, last: list[int]) -> None:
    for lo in range(0, len(batch), cut):
        acked = store.ingest(W, batch[0]["log_id"], batch[lo : lo + cut]).acked_seq
    last.append(acked)


def test_duplicate_uploads_racing_from_two_processes_are_stored_once(wiped):
    """Every split of two logs, each batch sent at once by two hub processes (an agent and its resend
    reaching two workers): every event and rating once, the shared cases numbered once each, in order."""
    fast, _general = wiped
    other = HubStore(PG_URL)
    try:
        for cut in range(1, 18):
            _empty(fast)
            logs_ = [log_events(f"{LOG[:-4]}{n:04d}", cases="S") for n in range(2)]  # cases S1..S5 shared
            answers: list[int] = []
            senders = [
                threading.Thread(target=_send_all, args=(s, b, cut, answers))
                for b in logs_
                for s in (fast, other)
            ]
            for t in senders:
                t.start()
            for t in senders:
                t.join(60)
            assert not any(t.is_alive() for t in senders)
            assert answers == [17] * 4  # each sender's last batch acknowledged as the whole log
            for batch in logs_:
                assert fast.log_events(W, batch[0]["log_id"]) == batch
            assert all(r.ok for r in run_checks(fast)), [r for r in run_checks(fast) if not r.ok]
            with fast.engine.connect() as conn:
                numbers = conn.execute(
                    text(
                        "SELECT project_no, array_agg(assess_number ORDER BY assess_number) "
                        "FROM upstream_outbox WHERE project_no IS NOT NULL GROUP BY project_no"
                    )
                ).all()
            # Per log: S1 once, S2 twice, S3 once, S4 once; two logs.
            assert dict(numbers) == {"S1": [1, 2], "S2": [1, 2, 3, 4], "S3": [1, 2], "S4": [1, 2]}
        assert fast.pg_ingest is not None and other.pg_ingest is not None
        assert fast.pg_ingest.taken + other.pg_ingest.taken > 0
    finally:
        other.close()


def test_a_connection_the_server_closed_is_replaced(wiped):
    fast, _general = wiped
    batch = log_events()
    assert fast.ingest(W, LOG, batch[:2]).acked_seq == 2
    with fast.engine.connect() as conn:  # what a restarted server or a killed backend leaves in the pool
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle'"
            )
        ).scalar()
    assert killed
    assert fast.pg_ingest is not None
    taken = fast.pg_ingest.taken
    assert fast.ingest(W, LOG, batch[2:5]).acked_seq == 5  # with a 差评 and its reasons
    assert fast.pg_ingest.taken == taken + 1
    assert fast.log_events(W, LOG) == batch[:5]


def test_the_log_is_locked_before_the_cases_and_nothing_written_before_both(wiped):
    """The general path's order: the log's row, then its ratings' cases (an upload of the same log
    sharing a case never waits in a circle with this one), and nothing derived before both are held."""
    fast, _general = wiped
    batch = log_events()
    assert fast.ingest(W, LOG, batch[:1]).acked_seq == 1
    holder = fast.engine.connect()
    transaction = holder.begin()
    holder.execute(
        select(logs.c.acked_seq).where((logs.c.device_id == W) & (logs.c.log_id == LOG)).with_for_update()
    )
    answers: list[int] = []
    upload = threading.Thread(target=lambda: answers.append(fast.ingest(W, LOG, batch[1:5]).acked_seq))
    upload.start()
    try:
        wait_until(lambda: waiting_for_a_lock(holder), what="the upload waiting for its log's row")
        # The case locks of this database only: other tests' hubs hold advisory locks of their own (the
        # upward sender's, the alerts') in other databases of the same server.
        advisory = (
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2 "
            f"AND classid = {CASE_LOCK_SPACE} AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        with fast.engine.connect() as observer:
            assert observer.execute(text(advisory)).scalar() == 0  # no case locked while the log waits
            assert observer.execute(select(ratings.c.seq)).first() is None
    finally:
        transaction.commit()
        holder.close()
        upload.join(20)
    assert answers == [5]
    assert fast.pg_ingest is not None and fast.pg_ingest.taken == 2


def test_a_batch_without_ratings_that_does_not_continue_the_log_is_answered_by_the_general_path(wiped):
    """One statement stores a batch without ratings only if it continues the log: a resend (its events
    held), a gap (a new log not starting at 1, or a seq skipped) and a fork store nothing there, and the
    general path answers as it always has."""
    fast, _general = wiped
    batch = log_events()
    assert fast.pg_ingest is not None
    assert fast.ingest(W, LOG, batch[2:3]) == IngestResult(0, 0, "gap", 3)  # a new log not starting at 1
    assert fast.ingest(W, LOG, batch[:1]) == IngestResult(1, 1)
    assert (fast.pg_ingest.taken, fast.pg_ingest.declined) == (1, 1)
    assert fast.ingest(W, LOG, batch[:1]) == IngestResult(1, 0)  # the resend: held, acknowledged again
    assert fast.ingest(W, LOG, batch[2:3]) == IngestResult(1, 0, "gap", 3)
    forked = data.chain(LOG, [("case_opened", batch[0]["at"], data.case("X", "I1"))] * 2)[1]
    assert forked["seq"] == 2 and forked["prev_hash"] != batch[0]["hash"]
    assert fast.ingest(W, LOG, [forked]) == IngestResult(1, 0, "fork", 2)
    assert (fast.pg_ingest.taken, fast.pg_ingest.declined) == (1, 4)
    assert fast.log_events(W, LOG) == batch[:1]
    with fast.engine.connect() as conn:
        assert conn.execute(select(opened_cases.c.seq)).scalars().all() == [1]

"""The hub on PostgreSQL: the same code as on SQLite, against a real server (``.ci/postgres.sh`` starts
one and prints its URL into ``KIOSK_TEST_PG_URL``). Skipped when that variable is unset."""

from __future__ import annotations

import os
import threading

import pytest
import requests
from sqlalchemy import insert, select, text
from test_hub_support import (
    ADMIN_TOKEN,
    DEVICE,
    fill_log,
    post_events,
    qr_token,
    rating_payload,
    register,
    thread_hub,
    upload_case,
    wait_until,
    waiting_for_a_lock,
    wipe_database,
)

from core.domain import PF_HALL_EVALUATOR, PF_QRCODE
from core.events import ZERO_HASH
from core.store import EventLog
from hub import migrate
from hub.schema import ALL_DEVICES, logs
from hub.storage import HubStore, StaffEntry
from hub.upstream import outbox as upstream_outbox
from hub.verify import run_checks
from sync.agent import SyncAgent
from sync.client import HubClient

PG_URL = os.environ.get("KIOSK_TEST_PG_URL")
pytestmark = pytest.mark.skipif(not PG_URL, reason="KIOSK_TEST_PG_URL is not set (see .ci/postgres.sh)")


@pytest.fixture
def pg_hub(tmp_path):
    wipe_database(PG_URL)  # a clean schema per test: the test database outlives the run
    with thread_hub(tmp_path, url=PG_URL) as hub:
        hub.secret = register(hub.store, area_code="370211")
        yield hub


def test_agent_drains_into_postgres_once(pg_hub, tmp_path):
    with EventLog(tmp_path / "kiosk.db") as log:
        fill_log(log, 300)
        agent = SyncAgent(log, HubClient(pg_hub.url, DEVICE, pg_hub.secret), batch_events=70)
        assert agent.drain()
        assert agent.drain()  # nothing left, nothing doubled
        assert pg_hub.store.log_events(DEVICE, log.log_id) == list(log.events_after(0))
        ratings = requests.get(
            f"{pg_hub.url}/api/v1/ratings", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
        ).json()
        expected = sum(1 for e in log.events_after(0, types=("rating",)))
        assert ratings["count"] == expected and all(r["areaCode"] == "370211" for r in ratings["ratings"])


def test_conflicts_and_hostile_text_on_postgres(pg_hub, tmp_path):
    with EventLog(tmp_path / "kiosk.db") as log:
        fill_log(log, 10)
        events = list(log.events_after(0))
        assert post_events(pg_hub.url, pg_hub.secret, log.log_id, events[3:]).json()["error"] == "gap"
        edited = [dict(e) for e in events]
        edited[2] = {**edited[2], "at": "2026-01-01T00:00:00.000+08:00"}
        assert post_events(pg_hub.url, pg_hub.secret, log.log_id, edited).json()["error"] == "bad_hash"
        # NUL cannot be stored in PostgreSQL text: a 4xx, never a 500.
        nul = {**events[2], "id": "a\x00b"}
        assert post_events(pg_hub.url, pg_hub.secret, log.log_id, [nul]).status_code == 400
        assert pg_hub.store.acked_seq(DEVICE, log.log_id) == 2


def test_impossible_rating_seq_is_stored_not_a_server_error_on_postgres(pg_hub, tmp_path):
    with EventLog(tmp_path / "kiosk.db") as log:
        for rating_seq in (2**63, 2**70):
            log.append("rating_detail", {"rating_seq": rating_seq, "reasons": [], "contact_sealed": None})
        response = post_events(pg_hub.url, pg_hub.secret, log.log_id, list(log.events_after(0)))
        assert response.status_code == 200 and response.json() == {"acked_seq": 2}


def test_two_hub_processes_meeting_a_new_log_both_store_it(pg_hub, tmp_path):
    """The second hub's upload waits for the first's new log row, then carries on: no IntegrityError."""
    with EventLog(tmp_path / "kiosk.db") as log:
        fill_log(log, 3)
        other_hub = HubStore(PG_URL)  # another hub process on the same database
        conn = other_hub.engine.connect()
        transaction = conn.begin()
        conn.execute(
            insert(logs).values(
                device_id=DEVICE,
                log_id=log.log_id,
                acked_seq=0,
                head_hash=ZERO_HASH,
                first_seen_at="2026-11-28T00:00:00+00:00",
                last_seen_at="2026-11-28T00:00:00+00:00",
            )
        )
        events, answers = list(log.events_after(0)), []
        upload = threading.Thread(
            target=lambda: answers.append(post_events(pg_hub.url, pg_hub.secret, log.log_id, events))
        )
        upload.start()
        try:
            wait_until(lambda: waiting_for_a_lock(conn), what="the upload waiting for the other hub's row")
            transaction.commit()
        finally:
            conn.close()  # rolls back whatever is still open
            upload.join(20)
            other_hub.close()
        assert answers[0].status_code == 200 and answers[0].json() == {"acked_seq": 3}


def test_one_hub_process_stores_uploads_of_different_logs_side_by_side(pg_hub, tmp_path):
    """An upload waiting for its log's row (held by another hub process) holds up no upload of another log
    in the same hub process: uploads to PostgreSQL run side by side, the log's row lock serialises one
    log."""
    with EventLog(tmp_path / "a.db") as a, EventLog(tmp_path / "b.db") as b:
        fill_log(a, 3, seed=1)
        fill_log(b, 3, seed=2)
        assert post_events(pg_hub.url, pg_hub.secret, a.log_id, list(a.events_after(0))).status_code == 200
        fill_log(a, 3, seed=3)
        other_hub = HubStore(PG_URL)
        conn = other_hub.engine.connect()
        transaction = conn.begin()
        conn.execute(
            select(logs.c.acked_seq)
            .where((logs.c.device_id == DEVICE) & (logs.c.log_id == a.log_id))
            .with_for_update()
        )
        answers: list[requests.Response] = []
        events = list(a.events_after(0))  # read here: an SQLite connection stays in its thread
        waiting = threading.Thread(
            target=lambda: answers.append(post_events(pg_hub.url, pg_hub.secret, a.log_id, events))
        )
        waiting.start()
        try:
            wait_until(lambda: waiting_for_a_lock(conn), what="log a's upload waiting for its row")
            other = post_events(pg_hub.url, pg_hub.secret, b.log_id, list(b.events_after(0)))
            assert other.status_code == 200 and other.json() == {"acked_seq": 3}
            assert waiting.is_alive() and not answers  # log a's upload still waits
            transaction.commit()
        finally:
            conn.close()
            waiting.join(20)
            other_hub.close()
        assert answers[0].status_code == 200 and answers[0].json() == {"acked_seq": 6}
        assert pg_hub.store.log_events(DEVICE, a.log_id) == list(a.events_after(0))


def test_many_logs_uploaded_at_once_twice_each_are_stored_exactly_once(pg_hub, tmp_path):
    """Six logs, each sent in batches by two threads at once (an agent and its resend), into one hub
    process: every event once, every rating derived once, and every rating of the one case they share
    numbered once (its place among the case's ratings, decided under the case's lock)."""
    kiosk_logs = [EventLog(tmp_path / f"{i}.db") for i in range(6)]
    try:
        for i, log in enumerate(kiosk_logs):
            fill_log(log, 40, seed=i)
        answers: list[int] = []

        def send(log_id: str, events: list[dict]) -> None:
            for start in range(0, len(events), 7):
                answer = post_events(pg_hub.url, pg_hub.secret, log_id, events[start : start + 7])
                answers.append(answer.status_code)

        senders = [
            threading.Thread(target=send, args=(log.log_id, list(log.events_after(0))))
            for log in kiosk_logs
            for _ in range(2)
        ]
        for t in senders:
            t.start()
        for t in senders:
            t.join(60)
        assert set(answers) == {200} and len(answers) == 2 * 6 * 6
        for log in kiosk_logs:
            assert pg_hub.store.log_events(DEVICE, log.log_id) == list(log.events_after(0))
        assert all(result.ok for result in run_checks(pg_hub.store)), run_checks(pg_hub.store)
        ratings = sum(1 for log in kiosk_logs for _ in log.events_after(0, types=("rating",)))
        with pg_hub.store.engine.connect() as conn:
            numbers = conn.execute(
                text("SELECT assess_number FROM upstream_outbox WHERE channel = 'window' ORDER BY 1")
            ).scalars()
            assert list(numbers) == list(range(1, ratings + 1))
    finally:
        for log in kiosk_logs:
            log.close()


def test_an_upload_and_a_phone_rating_of_one_case_take_its_lock(pg_hub, tmp_path):
    """一次一评 decided in order, in one hub process as across processes: an upload takes the lock of its
    ratings' cases before it derives them, a phone rating before it looks for them, so the one that comes
    second sees the first. Here the case's lock is held by another hub process: both wait for it."""
    case_no = "370211202611280301"
    other_hub = HubStore(PG_URL)
    conn = other_hub.engine.connect()

    def ratings_written_by_others() -> int:
        query = text(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON l.relation = c.oid "
            "WHERE c.relname = 'ratings' AND l.mode = 'RowExclusiveLock' AND l.pid <> pg_backend_pid()"
        )
        return conn.execute(query).scalar()

    def while_the_case_is_locked(request) -> requests.Response:
        transaction = conn.begin()
        upstream_outbox.lock_cases(conn, [case_no])
        answers: list[requests.Response] = []
        waiting = threading.Thread(target=lambda: answers.append(request()))
        waiting.start()
        try:
            wait_until(lambda: waiting_for_a_lock(conn), what="a request waiting for the case's lock")
            assert not answers and ratings_written_by_others() == 0  # it waits before deriving anything
        finally:
            transaction.commit()
            waiting.join(20)
        return answers[0]

    try:
        with EventLog(tmp_path / "kiosk.db") as log:
            log.append(
                "case_opened",
                {
                    "ticket_no": "A017",
                    "case_no": case_no,
                    "item_code": None,
                    "item_name": None,
                    "source": "queue",
                },
            )
            assert (
                post_events(pg_hub.url, pg_hub.secret, log.log_id, list(log.events_after(0))).status_code
                == 200
            )
            log.append("rating", rating_payload(1, case_no=case_no, satisfaction=5))
            events = list(log.events_after(0))
        uploaded = while_the_case_is_locked(
            lambda: post_events(pg_hub.url, pg_hub.secret, log.log_id, events)
        )
        assert uploaded.status_code == 200 and uploaded.json() == {"acked_seq": 2}
        token = qr_token(pg_hub.secret, case_no)
        phone = while_the_case_is_locked(
            lambda: requests.post(f"{pg_hub.url}/q/{token}", data={"satisfaction": "5"}, timeout=10)
        )
        assert phone.status_code == 409 and "该办件已评价" in phone.text  # rated at the window first
    finally:
        conn.close()
        other_hub.close()


def test_roster_and_keypair_on_postgres(pg_hub):
    public = pg_hub.store.public_key_hex()
    version = pg_hub.store.import_roster(
        ALL_DEVICES, [StaffEntry("0006102437", "0371", "王晓燕", "", b"\x89PNG fake", "image/png")]
    )
    assert pg_hub.store.roster_for(DEVICE).version == version
    again = HubStore(PG_URL, pg_hub.store.key_file)
    assert again.public_key_hex() == public
    again.close()


def test_phone_ratings_on_postgres(pg_hub, tmp_path):
    case_no, rated_at_window = "370211202611280201", "370211202611280202"
    upload_case(pg_hub.url, pg_hub.secret, tmp_path / "window.db", rated_at_window, rated=True)
    upload_case(pg_hub.url, pg_hub.secret, tmp_path / "opened.db", case_no)
    token = qr_token(pg_hub.secret, case_no)
    page = requests.get(f"{pg_hub.url}/q/{token}", timeout=10)
    assert page.status_code == 200 and "不动产登记" in page.text
    form = {"satisfaction": "2", "reason": ["202"], "phone": "13912345678"}
    stored = requests.post(f"{pg_hub.url}/q/{token}", data=form, timeout=10)
    assert stored.status_code == 200 and stored.history[0].status_code == 303 and "评价成功" in stored.text
    # The same code again is its holder's own rating (评价成功); another code of the case is not.
    again = requests.post(f"{pg_hub.url}/q/{token}", data=form, timeout=10)
    assert again.status_code == 200 and "您已完成评价" in again.text
    for used in (qr_token(pg_hub.secret, case_no), qr_token(pg_hub.secret, rated_at_window)):
        again = requests.post(f"{pg_hub.url}/q/{used}", data=form, timeout=10)
        assert again.status_code == 409 and "该办件已评价" in again.text
    upload_case(pg_hub.url, pg_hub.secret, tmp_path / "late.db", case_no, rated=True)
    body = requests.get(
        f"{pg_hub.url}/api/v1/ratings", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
    ).json()
    by_channel = sorted(((r["projectNo"], r["pf"], r["duplicate"]) for r in body["ratings"]), reverse=True)
    assert by_channel == [
        (rated_at_window, PF_HALL_EVALUATOR, False),
        (case_no, PF_HALL_EVALUATOR, True),
        (case_no, PF_QRCODE, False),
    ]
    (phone,) = [r for r in body["ratings"] if r["pf"] == PF_QRCODE]
    assert phone["contact"] == "13912345678" and phone["evalDetail"] == "202" and body["duplicates"] == 1
    assert phone["taskName"] == "不动产登记" and phone["ticketNo"] == "A017"


def test_hub_processes_starting_together_migrate_once(tmp_path):
    wipe_database(PG_URL)  # a clean schema per test: the test database outlives the run
    barrier = threading.Barrier(4)
    opened, failures = [], []

    def start() -> None:
        barrier.wait()
        try:
            opened.append(HubStore(PG_URL))
        except Exception as e:  # noqa: BLE001 - any failure to open fails the test below
            failures.append(e)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == [] and len(opened) == 4
    assert {migrate.current_revision(store.engine) for store in opened} == {migrate.head_revision()}
    for store in opened:
        store.close()


def test_a_double_tap_on_postgres_says_done_twice_and_stores_one(pg_hub):
    """Posts of one code at once (a double tap on a slow network): every one gets the 303 to 评价成功."""
    from concurrent.futures import ThreadPoolExecutor

    case_no = "370211202611280203"
    token = qr_token(pg_hub.secret, case_no)

    def post(level: str) -> requests.Response:
        form = {"satisfaction": level}
        return requests.post(f"{pg_hub.url}/q/{token}", data=form, timeout=10, allow_redirects=False)

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(post, "5544"))
    assert [a.status_code for a in answers] == [303] * 4
    with pg_hub.store.engine.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM phone_ratings WHERE case_no = :c"), {"c": case_no}
        ).scalar()
    assert count == 1

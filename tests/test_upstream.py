"""Reporting upward end to end on SQLite: the outbox written with each rating, the sender against a real
stand-in province that checks every field and injects faults, people's actions, the configuration."""

from __future__ import annotations

import logging

import pytest
from test_hub_support import DEVICE, rating_payload, wait_until
from upstream_support import (
    DEPT,
    EXPECTED_PF,
    EXPECTED_SATISFACTION,
    KEY,
    NUMBER_FIELD,
    add_phone_rating,
    add_window_ratings,
    case_no,
    make_sender,
    new_store,
    records,
    statuses,
    unsent,
)

from commands.cli import main
from core.store import EventLog
from hub.upstream import outbox
from hub.upstream.standin import StandinProvince


@pytest.fixture
def store(tmp_path):
    s = new_store(tmp_path)
    yield s
    s.close()


def test_each_rating_gets_one_record_in_the_same_transaction(store, tmp_path):
    with EventLog(tmp_path / "k.db") as log:
        good = log.append("rating", rating_payload(1, case_no="C1", satisfaction=5))
        bad = log.append("rating", rating_payload(2, case_no="C2", satisfaction=1))
        walkin = log.append("rating", rating_payload(3, case_no=None, satisfaction=4))
        store.ingest(DEVICE, log.log_id, list(log.events_after(0)))
        assert statuses(store) == {"pending": 1, "awaiting_detail": 1, "needs_linkage": 1}
        log.append("rating_detail", {"rating_seq": bad["seq"], "reasons": ["101"], "contact_sealed": None})
        store.ingest(DEVICE, log.log_id, list(log.events_after(walkin["seq"])))
        assert statuses(store) == {"pending": 2, "needs_linkage": 1}
        # The same batch again stores nothing and writes no record twice.
        store.ingest(DEVICE, log.log_id, list(log.events_after(0)))
    assert add_phone_rating(store, "C9", 2, "aa" * 8)
    with EventLog(tmp_path / "k2.db") as log:  # the same case rated at a window after the phone
        log.append("rating", rating_payload(4, case_no="C9", satisfaction=4))
        store.ingest(DEVICE, log.log_id, list(log.events_after(0)))
    by_case = {(r["projectNo"], r["assessNumber"]): r for r in records(store)}
    assert set(by_case) == {("C1", 1), ("C2", 1), (None, None), ("C9", 1), ("C9", 2)}
    assert by_case[("C9", 1)]["channel"] == "phone" and by_case[("C9", 2)]["channel"] == "window"
    assert good["seq"] == 1


@pytest.mark.parametrize("profile", ["json-v1", "zhejiang-offlinereport", "shandong"])
def test_every_rating_arrives_once_through_faults_and_an_outage(store, tmp_path, profile, caplog):
    made = add_window_ratings(store, tmp_path, 130, seed=1)
    for i in range(20):
        add_phone_rating(store, case_no(1000 + i), 1 + i % 5, f"{i:016x}")
        made[case_no(1000 + i)] = 1 + i % 5
    province = StandinProvince(profile, key=KEY, app="APPMARK-TEST", fault_rate=0.3, seed=7, timeout_s=0.6)
    with province:
        sender = make_sender(store, profile, province.url, timeout_s=0.3)
        sender.drain(3)
        with province.outage():  # nothing listens: every round fails until the circuit opens
            made |= add_window_ratings(store, tmp_path, 30, seed=2, start=500)  # ratings keep coming
            wait_until(lambda: sender.send_once() and sender.circuit.is_open, what="circuit open")
        assert sender.drain(120, until=lambda: unsent(store) == 0)
        sender.stop()
    summary = province.summary()
    assert "circuit open" in caplog.text
    assert summary["held"] == len(made) == 180
    assert summary.get("conflicts", 0) == 0 and summary.get("concurrent", 0) == 0
    assert summary.get("refused", 0) == 0, summary
    assert sum(summary.get(f"fault_{k}", 0) for k in ("500", "429", "timeout", "lost", "broken")) >= 3
    if any(summary.get(f"fault_{k}") for k in ("timeout", "lost", "broken")):
        assert summary.get("redeliveries", 0) >= 1  # answers lost after storing: sent again, held once
    number = NUMBER_FIELD[profile]
    phone_cases = {case_no(1000 + i) for i in range(20)}
    for (project_no, n), record in province.held.items():
        assert n == 1 and record[number] == 1
        assert record["satisfaction"] == EXPECTED_SATISFACTION[profile][made[project_no]]
        channel = "phone" if project_no in phone_cases else "window"
        assert record["pf"] == EXPECTED_PF[profile][channel]
        assert record["areaCode"] == "370211" and record["deptCode"] == DEPT
        if made[project_no] <= 2:
            assert record["evalDetail"] in ("201,301", "101")
    assert statuses(store) == {"sent": 180}
    with store.engine.connect() as conn:
        days = outbox.reconciliation(conn)
    assert all(d["agrees"] and d["sent"] == d["held"] for d in days)
    assert sum(d["held"] for d in days) == 180


def test_refusals_linkage_and_peoples_actions(store, tmp_path):
    add_window_ratings(store, tmp_path, 5, seed=2)
    add_window_ratings(store, tmp_path, 3, seed=3, start=100, item_code="UNKNOWN-ITEM")
    with EventLog(tmp_path / "walkin.db") as log:
        log.append("rating", rating_payload(1, case_no=None, satisfaction=4))
        store.ingest(DEVICE, log.log_id, list(log.events_after(0)))
    with StandinProvince("shandong", key=KEY, app="APPMARK-TEST", reject_task_codes=("UNKNOWN-ITEM",)) as p:
        sender = make_sender(store, "shandong", p.url)
        sender.drain(20)
        # Shandong answers for the whole batch: the refused batch was split, the good ones went through.
        assert statuses(store) == {"sent": 5, "rejected": 3, "needs_linkage": 1}
        rejected = [r for r in records(store) if r["status"] == "rejected"]
        assert all("不在事项目录中" in r["message"] for r in rejected)
        linkage = next(r for r in records(store) if r["status"] == "needs_linkage")
        assert "projectNo" in linkage["lastError"]
        with store.engine.begin() as conn:
            with pytest.raises(outbox.ActionError) as e:
                outbox.act(conn, linkage["id"], "not_reportable", "supervisor1", note=" ")
            assert e.value.status == 400
            with pytest.raises(outbox.ActionError) as e:
                outbox.act(conn, rejected[0]["id"], "retry", "supervisor1")
            assert e.value.status == 409
            outbox.act(
                conn,
                linkage["id"],
                "link",
                "supervisor1",
                projectNo="370211202611290777",
                note="查询叫号系统",
            )
            outbox.act(conn, rejected[0]["id"], "not_reportable", "supervisor1", note="试运行数据")
        p.reject_task_codes.clear()  # the province's catalogue now has the item: resend the others
        with store.engine.begin() as conn:
            for r in rejected[1:]:
                outbox.act(conn, r["id"], "resend", "supervisor1", note="事项已入目录")
        sender.drain(20)
        assert statuses(store) == {"sent": 8, "not_reportable": 1}
        assert ("370211202611290777", 1) in p.held
    with store.engine.connect() as conn:
        history = outbox.history(conn, linkage["id"])
    assert history[0]["who"] == "supervisor1" and history[0]["action"] == "link"
    assert history[0]["from"] == "needs_linkage" and history[0]["to"] == "pending"


def test_a_required_field_missing_waits_for_a_person_never_a_default(tmp_path):
    store = new_store(tmp_path, dept_code="")
    add_window_ratings(store, tmp_path, 4, seed=5)
    with StandinProvince("zhejiang-offlinereport", key=KEY, app="APPMARK-TEST") as p:
        make_sender(store, "zhejiang-offlinereport", p.url).drain(10)
        assert p.summary()["held"] == 0
    assert statuses(store) == {"needs_linkage": 4}
    assert all(r["lastError"].startswith("deptCode: missing") for r in records(store))
    store.close()


def test_unexpected_answers_are_retried_and_logged_bounded(store, tmp_path, caplog):
    add_window_ratings(store, tmp_path, 3, seed=6)
    with StandinProvince("json-v1", key=KEY, app="APPMARK-TEST", fault_rate=1.0, faults=("broken",)) as p:
        sender = make_sender(store, "json-v1", p.url)
        with caplog.at_level(logging.WARNING, "hub.upstream"):
            for _ in range(6):
                sender.send_once()
                with store.engine.begin() as conn:  # due again now, for the test
                    conn.execute(outbox.outbox.update().values(next_attempt_at=0))
        assert sender.circuit.is_open and statuses(store) == {"failing": 3}
        assert all(len(r["lastError"]) <= 260 and "answer" in r["lastError"] for r in records(store))
        assert "circuit open" in caplog.text
        p.fault_rate = 0.0  # the province recovers: after the pause, one probe closes the circuit
        assert sender.drain(10, until=lambda: unsent(store) == 0)
        assert not sender.circuit.is_open and p.summary()["held"] == 3
        assert p.summary()["redeliveries"] >= 3  # the broken answers came after storing


def test_a_wrong_key_is_a_failure_to_retry_not_a_crash(store, tmp_path):
    add_window_ratings(store, tmp_path, 2, seed=8)
    with StandinProvince("json-v1", key=b"\x01" * 32, app="APPMARK-TEST") as p:
        sender = make_sender(store, "json-v1", p.url)
        sender.send_once()
        assert statuses(store) == {"failing": 2} and p.summary()["held"] == 0
        assert "HTTP 401" in records(store)[0]["lastError"]


HUB_TOML = """
[upstream]
profile = "{profile}"
url = "{url}"
app = "APPMARK"
key_file = "upstream.key"
{extra}
"""


@pytest.mark.parametrize(
    ("profile", "url", "key", "extra", "named", "problem"),
    [
        ("json-v1", "https://p.example/r", None, "", "[upstream] key_file", "file not found"),
        ("json-v1", "https://p.example/r", "not hex at all", "", "[upstream] key_file", "hex"),
        ("json-v1", "https://p.example/r", "abcd", "", "[upstream] key_file", "at least 16 bytes"),
        (
            "json-v1",
            "https://p.example/r",
            "00" * 32,
            'signature = "sm2-sm3"',
            "[upstream] signature",
            "hmac",
        ),
        ("shandong", "https://p.example/r", "00" * 32, 'signature = "sm2-sm3"', "[upstream] key_file", "SM2"),
        ("guangdong", "https://p.example/r", "00" * 32, "", "[upstream] profile", "one of"),
        ("json-v1", "ftp://p.example/r", "00" * 32, "", "[upstream] url", "http"),
    ],
)
def test_upstream_mistakes_are_exit_2_naming_the_key(
    tmp_path, capsys, profile, url, key, extra, named, problem
):
    if key is not None:
        (tmp_path / "upstream.key").write_text(key)
    config = tmp_path / "hub.toml"
    config.write_text(HUB_TOML.format(profile=profile, url=url, extra=extra))
    assert main(["hub", "--config", str(config), "--data", str(tmp_path), "upstream", "status"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err and problem in err and "Traceback" not in err


def test_the_migration_gives_ratings_held_before_it_their_records(tmp_path):
    from sqlalchemy import text

    from hub.storage import HubStore

    store = new_store(tmp_path)
    add_window_ratings(store, tmp_path, 6, seed=9)
    assert add_phone_rating(store, "PHONE-1", 4, "ab" * 8)
    with store.engine.begin() as conn:  # as a hub before revision 0005 left it
        conn.execute(outbox.outbox.delete())
        conn.execute(text("UPDATE alembic_version SET version_num = '0004'"))
    store.close()
    store = HubStore(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        keys = {(r["projectNo"], r["assessNumber"], r["channel"]) for r in records(store)}
        assert len(keys) == 7 and ("PHONE-1", 1, "phone") in keys and (case_no(0), 1, "window") in keys
        assert set(statuses(store)) <= {"pending", "awaiting_detail"}
    finally:
        store.close()

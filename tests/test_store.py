"""The event log: schema, chain, tamper evidence, concurrent writers, crashes, and its two commands."""

import csv
import io
import itertools
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from core.events import PAYLOAD_FIELDS, ZERO_HASH, EventError, event_hash
from core.store import SCHEMA_VERSION, EventLog, StoreError

SAMPLE_PAYLOADS = {
    "staff_signin": {"staff_no": "0371", "staff_name": "王晓燕"},
    "staff_signout": {"staff_no": "0371"},
    "case_opened": {
        "ticket_no": "A012",
        "case_no": "370211202611280012",
        "item_code": "11370211MB0000001X",
        "item_name": "不动产登记",
        "source": "queue",
    },
    "rating": {
        "case_seq": 3,
        "staff_no": "0371",
        "staff_name": "王晓燕",
        "window": "03",
        "ticket_no": None,
        "case_no": "370211202611280012",
        "item_code": None,
        "item_name": None,
        "satisfaction": 2,
        "input": "touch",
    },
    "rating_detail": {"rating_seq": 4, "reasons": ["201", "301"], "contact_sealed": None},
    "rating_skipped": {"case_seq": 3, "why": "timeout"},
    "rating_corrected": {"rating_seq": 4, "satisfaction": 4, "input": "keypad"},
    "ticket_called": {"ticket_no": "A013"},
    "window_paused": {},
    "window_resumed": {},
}

APPEND_CHILD = """
import sys
from core.store import EventLog
log = EventLog(sys.argv[1])
for i in range(int(sys.argv[2])):
    event = log.append("staff_signout", {"staff_no": sys.argv[3] + str(i)})
    print(event["seq"], flush=True)
"""


@pytest.fixture
def log(tmp_path):
    with EventLog(tmp_path / "kiosk.db") as log:
        yield log


def test_samples_cover_every_type():
    assert set(SAMPLE_PAYLOADS) == set(PAYLOAD_FIELDS)


def test_every_payload_type_round_trips(log):
    written = [log.append(type_, payload) for type_, payload in SAMPLE_PAYLOADS.items()]
    read = list(log.events_after(0))
    assert read == written
    assert [e["payload"] for e in read] == list(SAMPLE_PAYLOADS.values())
    assert [e["seq"] for e in read] == list(range(1, len(SAMPLE_PAYLOADS) + 1))
    assert read[0]["prev_hash"] == ZERO_HASH
    for before, after in itertools.pairwise(read):
        assert after["prev_hash"] == before["hash"]
    for event in read:
        assert event["hash"] == event_hash(event)
        assert event["log_id"] == log.log_id
        assert event["at"][10] == "T" and event["at"][-6] in "+-"  # local time with its offset
    assert log.verify().ok and log.verify().count == len(SAMPLE_PAYLOADS)
    assert log.get(2) == read[1] and log.get(99) is None
    assert [e["seq"] for e in log.events_after(0, types=("rating",))] == [4]
    assert log.head_seq() == len(SAMPLE_PAYLOADS)


@pytest.mark.parametrize(
    ("type_", "payload"),
    [
        ("nonsense", {}),
        ("staff_signout", {}),
        ("staff_signout", {"staff_no": "1", "staff_name": "x"}),
        ("staff_signout", ["staff_no"]),
    ],
)
def test_payloads_must_match_their_type(log, type_, payload):
    with pytest.raises(EventError):
        log.append(type_, payload)
    assert log.head_seq() == 0


def test_log_id_is_created_with_the_file_and_kept(tmp_path):
    with EventLog(tmp_path / "a.db") as a:
        log_id = a.log_id
    with EventLog(tmp_path / "a.db") as again, EventLog(tmp_path / "b.db") as b:
        assert again.log_id == log_id
        assert b.log_id != log_id


def test_schema_and_pragmas(log, tmp_path):
    raw = sqlite3.connect(tmp_path / "kiosk.db")
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert log._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_migrates_an_empty_file_and_refuses_a_newer_one(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    with EventLog(path) as log:
        assert log.append("staff_signout", {"staff_no": "1"})["seq"] == 1
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(StoreError, match="newer than this software"):
        EventLog(path)


def test_opening_a_current_log_writes_nothing(tmp_path):
    """So verify and export work on a full disk, and while the kiosk holds the write lock."""
    path = tmp_path / "kiosk.db"
    EventLog(path).close()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process mid-append
    try:
        with EventLog(path) as reader:  # would wait out the busy timeout if opening wrote
            assert reader.verify().ok
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_not_a_database_is_a_store_error(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open event log"):
        EventLog(path)


def test_no_code_path_updates_or_deletes_events(log):
    log.append("staff_signout", {"staff_no": "1"})
    for sql in ("UPDATE events SET type = 'x'", "DELETE FROM events"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            log._conn.execute(sql)
    assert log.verify().ok


def _tamper(path: Path, sql: str) -> None:
    raw = sqlite3.connect(path)
    raw.execute("DROP TRIGGER events_no_update")
    raw.execute("DROP TRIGGER events_no_delete")
    raw.execute(sql)
    raw.commit()
    raw.close()


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ('UPDATE events SET payload = \'{"staff_no":"9"}\' WHERE seq = 3', "bad_hash"),
        ("UPDATE events SET at = '2020-01-01T00:00:00.000+08:00' WHERE seq = 3", "bad_hash"),
        ("UPDATE events SET prev_hash = hash WHERE seq = 3", "bad_link"),
        ("DELETE FROM events WHERE seq = 3", "missing"),
        ("UPDATE events SET payload = 'not json' WHERE seq = 3", "payload is not JSON"),
    ],
)
def test_a_row_edited_behind_the_logs_back_fails_verify_naming_its_seq(tmp_path, sql, problem):
    path = tmp_path / "kiosk.db"
    with EventLog(path) as log:
        for i in range(5):
            log.append("staff_signout", {"staff_no": str(i)})
    _tamper(path, sql)
    with EventLog(path) as log:
        result = log.verify()
    assert not result.ok
    assert result.first_bad_seq == 3
    assert result.problem == problem
    assert result.count == 2


def test_two_processes_appending_leave_a_gapless_log(tmp_path):
    path = tmp_path / "kiosk.db"
    EventLog(path).close()
    children = [
        subprocess.Popen(
            [sys.executable, "-c", APPEND_CHILD, str(path), "1000", tag], stdout=subprocess.PIPE, text=True
        )
        for tag in ("a", "b")
    ]
    acknowledged = [set(map(int, child.communicate()[0].split())) for child in children]
    assert all(child.returncode == 0 for child in children)
    assert len(acknowledged[0]) == len(acknowledged[1]) == 1000
    assert not acknowledged[0] & acknowledged[1]
    with EventLog(path) as log:
        events = list(log.events_after(0))
        assert [e["seq"] for e in events] == list(range(1, 2001))
        assert log.verify().ok
        # Each writer's own events stay in its order.
        for tag in ("a", "b"):
            mine = [e["payload"]["staff_no"] for e in events if e["payload"]["staff_no"].startswith(tag)]
            assert mine == [f"{tag}{i}" for i in range(1000)]


def test_every_acknowledged_append_survives_sigkill(tmp_path):
    path = tmp_path / "kiosk.db"
    rng = random.Random(20261128)
    acknowledged: set[int] = set()
    for _ in range(20):
        child = subprocess.Popen(
            [sys.executable, "-c", APPEND_CHILD, str(path), "1000000", "k"], stdout=subprocess.PIPE, text=True
        )
        for _ in range(rng.randint(1, 60)):
            acknowledged.add(int(child.stdout.readline()))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
    with EventLog(path) as log:
        present = {e["seq"] for e in log.events_after(0)}
        assert acknowledged <= present
        assert present == set(range(1, len(present) + 1))
        assert log.verify().ok
        assert log.integrity_check() == "ok"


def test_state_and_roster_tables_are_outside_the_chain(log):
    log.append("staff_signout", {"staff_no": "1"})
    assert log.get_state("sync") is None
    log.set_state("sync", {"state": "ok", "pending": 0})
    log.set_state("sync", {"state": "offline", "pending": 3})
    assert log.get_state("sync") == {"state": "offline", "pending": 3}
    log.replace_roster(
        "v1", [{"card": "0006102437", "staff_no": "0371", "name": "王晓燕", "photo": b"\x89PNG"}]
    )
    log.replace_roster("v2", [{"card": "26DEFAE7", "staff_no": "0372", "name": "李强", "title": "科员"}])
    assert log.roster() == [
        {
            "card": "26DEFAE7",
            "staff_no": "0372",
            "name": "李强",
            "title": "科员",
            "photo": None,
            "version": "v2",
        }
    ]
    assert log.verify().count == 1


def test_watchers_see_other_connections_commit(log, tmp_path):
    assert log.roster_version() == (0, None)
    before = log.data_version()
    with EventLog(tmp_path / "kiosk.db") as agent:
        agent.replace_roster("v3", [{"card": "26DEFAE7", "staff_no": "0372", "name": "李强"}])
    assert log.data_version() != before
    assert log.roster_version() == (1, "v3")


def _kiosk(*args: str, config: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "commands.cli", *args, "--config", str(config)], capture_output=True, text=True
    )


def test_export_and_verify_commands(tmp_path):
    config = tmp_path / "kiosk.toml"
    config.write_text('[device]\nid = "T1"\nwindow = "01"\n', encoding="utf-8")
    with EventLog(tmp_path / "kiosk.db") as log:
        written = [log.append(type_, payload) for type_, payload in SAMPLE_PAYLOADS.items()]

    jsonl = _kiosk("export", config=config)
    assert jsonl.returncode == 0
    assert [json.loads(line) for line in jsonl.stdout.splitlines()] == written
    assert "王晓燕" in jsonl.stdout  # UTF-8, not \u escapes

    rows = list(csv.DictReader(io.StringIO(_kiosk("export", "--format", "csv", config=config).stdout)))
    assert [int(r["seq"]) for r in rows] == [e["seq"] for e in written]
    assert [json.loads(r["payload"]) for r in rows] == [e["payload"] for e in written]

    ok = _kiosk("store", "verify", config=config)
    assert ok.returncode == 0 and f"{len(written)} events" in ok.stdout

    _tamper(tmp_path / "kiosk.db", "UPDATE events SET payload = '{}' WHERE seq = 4")
    bad = _kiosk("store", "verify", config=config)
    assert bad.returncode == 1
    assert "seq 4" in bad.stdout


def test_export_into_a_closed_pipe_stops_quietly(tmp_path):
    config = tmp_path / "kiosk.toml"
    config.write_text('[device]\nid = "T1"\nwindow = "01"\n', encoding="utf-8")
    with EventLog(tmp_path / "kiosk.db") as log:
        for i in range(5000):  # more than a pipe buffer holds
            log.append("staff_signout", {"staff_no": str(i)})
    export = subprocess.Popen(
        [sys.executable, "-m", "commands.cli", "export", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert export.stdout.readline().startswith(b'{"log_id"')
    export.stdout.close()  # like `kiosk export | head -1`
    stderr = export.stderr.read().decode()
    assert export.wait() == 1
    assert "Traceback" not in stderr


def _open_together(path, count: int) -> tuple[list[str], list[Exception]]:
    """``count`` threads released at once each open the log at ``path``: (log ids, errors)."""
    import threading

    start = threading.Barrier(count)
    ids: list[str] = []
    errors: list[Exception] = []

    def open_it() -> None:
        start.wait(10)
        try:
            with EventLog(path) as log:
                ids.append(log.log_id)
        except Exception as e:  # what the test is about
            errors.append(e)

    threads = [threading.Thread(target=open_it) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return ids, errors


def test_a_kiosk_and_its_agent_opening_a_new_log_at_once_both_get_it(tmp_path):
    """The kiosk and its agent start together at boot on a log not yet made: SQLite reports some of the
    locks met while the file is made (switching to WAL, the schema) at once, without its busy timeout;
    every open must still succeed, on one log id. Threads released together meet it far more often than
    processes, whose start-up spreads them."""
    for n in range(30):
        ids, errors = _open_together(tmp_path / f"kiosk-{n}.db", 4)
        assert errors == [] and len(ids) == 4 and len(set(ids)) == 1, (n, errors)

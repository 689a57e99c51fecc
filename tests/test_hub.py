"""The hub on 127.0.0.1: signed uploads and every answer of docs/protocol.md §3, hostile input, rosters,
the ratings export, and its commands."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from nacl.public import PrivateKey, PublicKey
from PIL import Image
from sqlalchemy import insert
from test_hub_support import (
    ADMIN_TOKEN,
    DEVICE,
    ROOT,
    HubProcess,
    fill_log,
    free_port,
    post_events,
    rating_payload,
    register,
    signed_headers,
    thread_hub,
)

from commands.cli import main as kiosk_main
from core.contact import seal_contact
from core.events import event_hash
from core.store import EventLog
from hub.schema import meta
from hub.storage import HubStore, database_url


def _registered_hub(data: Path):
    with thread_hub(data) as h:
        h.data = str(data)
        h.secret = register(h.store, area_code="370211", dept_code="11370211MB0000001X")
        yield h


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """One hub for the module: each test uploads its own log, so their chains never meet."""
    yield from _registered_hub(tmp_path_factory.mktemp("hub"))


@pytest.fixture
def fresh_hub(tmp_path):
    """A hub of its own, for tests that count everything the hub holds."""
    yield from _registered_hub(tmp_path / "hub")


@pytest.fixture
def kiosk_log(tmp_path):
    with EventLog(tmp_path / "kiosk.db") as log:
        fill_log(log, 30)
        yield log


def all_events(log: EventLog) -> list[dict]:
    return list(log.events_after(0))


def stored_count(hub, log: EventLog) -> int:
    return len(hub.store.log_events(DEVICE, log.log_id))


def relink(events: list[dict]) -> list[dict]:
    """Recompute the chain after editing: what a forger with the log's format would do."""
    prev = events[0]["prev_hash"]
    for e in events:
        e["prev_hash"] = prev
        e["hash"] = event_hash(e)
        prev = e["hash"]
    return events


def test_healthz(hub):
    assert requests.get(f"{hub.url}/healthz", timeout=5).json() == {"ok": True}


def test_batch_is_stored_once_and_acked(hub, kiosk_log):
    events = all_events(kiosk_log)
    r = post_events(hub.url, hub.secret, kiosk_log.log_id, events[:20])
    assert r.status_code == 200 and r.json() == {"acked_seq": 20}
    # Overlapping resend (the answer was lost): nothing stored twice, the new tail accepted.
    r = post_events(hub.url, hub.secret, kiosk_log.log_id, events[10:])
    assert r.json() == {"acked_seq": 30}
    r = post_events(hub.url, hub.secret, kiosk_log.log_id, events)
    assert r.json() == {"acked_seq": 30}
    assert hub.store.log_events(DEVICE, kiosk_log.log_id) == events
    assert stored_count(hub, kiosk_log) == 30


def test_empty_batch_reports_what_the_hub_holds(hub, kiosk_log):
    post_events(hub.url, hub.secret, kiosk_log.log_id, all_events(kiosk_log)[:7])
    assert post_events(hub.url, hub.secret, kiosk_log.log_id, []).json() == {"acked_seq": 7}


def test_gap_names_the_seq_to_resume_from(hub, kiosk_log):
    events = all_events(kiosk_log)
    r = post_events(hub.url, hub.secret, kiosk_log.log_id, events[5:10])
    assert r.status_code == 409 and r.json()["error"] == "gap" and r.json()["expected_seq"] == 1
    # A hole inside a batch: the part before it is stored, the hub asks for the missing seq.
    r = post_events(hub.url, hub.secret, kiosk_log.log_id, events[:3] + events[4:8])
    assert r.status_code == 409 and r.json() == {"error": "gap", "expected_seq": 4, "acked_seq": 3, "seq": 5}
    assert stored_count(hub, kiosk_log) == 3


def test_edited_event_is_bad_hash_and_stops_there(hub, kiosk_log):
    events = all_events(kiosk_log)
    events[4]["payload"]["satisfaction"] = 1 if events[4]["payload"].get("satisfaction") != 1 else 5
    events[4]["payload"]["x"] = "edited"
    r = post_events(hub.url, hub.secret, kiosk_log.log_id, events)
    assert r.status_code == 409 and r.json()["error"] == "bad_hash" and r.json()["expected_seq"] == 5
    assert stored_count(hub, kiosk_log) == 4


def test_rewritten_history_is_a_fork(hub, kiosk_log):
    events = all_events(kiosk_log)
    assert post_events(hub.url, hub.secret, kiosk_log.log_id, events[:10]).status_code == 200
    forged = json.loads(json.dumps(events))
    forged[5]["at"] = "2026-01-01T00:00:00.000+08:00"
    relink(forged[5:])
    r = post_events(hub.url, hub.secret, kiosk_log.log_id, forged)
    assert r.status_code == 409 and r.json()["error"] == "fork" and r.json()["expected_seq"] == 11
    # Past what the hub holds the rewritten chain no longer links to it: still a fork.
    r = post_events(hub.url, hub.secret, kiosk_log.log_id, forged[10:])
    assert r.status_code == 409 and r.json()["error"] == "fork"
    assert hub.store.log_events(DEVICE, kiosk_log.log_id) == events[:10]


def test_new_log_from_a_known_device_starts_a_new_chain(hub, tmp_path, kiosk_log):
    post_events(hub.url, hub.secret, kiosk_log.log_id, all_events(kiosk_log))
    with EventLog(tmp_path / "replacement.db") as other:
        fill_log(other, 5, seed=1)
        r = post_events(hub.url, hub.secret, other.log_id, all_events(other))
        assert r.json() == {"acked_seq": 5}
    assert hub.store.acked_seq(DEVICE, kiosk_log.log_id) == 30


# --- hostile input: 4xx, never 500, never a stored row ------------------------------------------


def _raw_post(hub, body: bytes, headers: dict | None = None) -> requests.Response:
    headers = headers if headers is not None else signed_headers(hub.secret, body)
    return requests.post(f"{hub.url}/api/v1/events", data=body, headers=headers, timeout=10)


def _batch(kiosk_log, events=None, **override) -> dict:
    return {
        "device_id": DEVICE,
        "log_id": kiosk_log.log_id,
        "events": events or all_events(kiosk_log)[:3],
        **override,
    }


@pytest.mark.parametrize(
    "why, headers",
    [
        ("no headers", lambda secret, body: {}),
        ("wrong signature", lambda secret, body: signed_headers(b"not the secret", body)),
        ("unknown device", lambda secret, body: signed_headers(secret, body, device="XHA-W99")),
        (
            "timestamp 301 s old",
            lambda secret, body: signed_headers(secret, body, timestamp=int(time.time()) - 301),
        ),
        (
            "timestamp 301 s ahead",
            lambda secret, body: signed_headers(secret, body, timestamp=int(time.time()) + 301),
        ),
        (
            "timestamp not a number",
            lambda secret, body: {**signed_headers(secret, body), "X-Kiosk-Timestamp": "1e9"},
        ),
        ("signature of another body", lambda secret, body: signed_headers(secret, body + b" ")),
        (
            "non-ASCII signature",
            lambda secret, body: {**signed_headers(secret, body), "X-Kiosk-Signature": "é" * 64},
        ),
        (
            "UTF-8 signature",
            lambda secret, body: {**signed_headers(secret, body), "X-Kiosk-Signature": "签名".encode()},
        ),
        (
            "non-ASCII device",
            lambda secret, body: {**signed_headers(secret, body), "X-Kiosk-Device": "设备".encode()},
        ),
    ],
)
def test_unauthenticated_requests_get_401(hub, kiosk_log, why, headers):
    body = json.dumps(_batch(kiosk_log)).encode()
    r = _raw_post(hub, body, headers(hub.secret, body))
    assert r.status_code == 401, why
    assert stored_count(hub, kiosk_log) == 0


def test_a_replayed_upload_is_answered_like_the_original_and_stores_nothing_twice(hub, kiosk_log):
    body = json.dumps(_batch(kiosk_log)).encode()
    headers = signed_headers(hub.secret, body)
    first, replay = _raw_post(hub, body, headers), _raw_post(hub, body, headers)
    assert first.status_code == replay.status_code == 200
    assert first.json() == replay.json()
    assert stored_count(hub, kiosk_log) == len(_batch(kiosk_log)["events"])


def test_old_secret_dies_when_the_device_is_added_again(hub, kiosk_log):
    old_secret = register(hub.store, "XHA-W05")
    new_secret = register(hub.store, "XHA-W05")
    assert post_events(hub.url, old_secret, kiosk_log.log_id, [], device="XHA-W05").status_code == 401
    assert post_events(hub.url, new_secret, kiosk_log.log_id, [], device="XHA-W05").status_code == 200


@pytest.mark.parametrize(
    "why, mutate",
    [
        ("not JSON", lambda b: b"{not json"),
        ("JSON list", lambda b: b"[]"),
        ("lone surrogate", lambda b: b'{"device_id": "\\ud800"}'),
        ("deep nesting", lambda b: b"[" * 100_000 + b"]" * 100_000),
        ("seq as text", lambda b: {**b, "events": [{**b["events"][0], "seq": "1"}]}),
        ("seq as bool", lambda b: {**b, "events": [{**b["events"][0], "seq": True}]}),
        ("seq huge", lambda b: {**b, "events": [{**b["events"][0], "seq": 10**40}]}),
        ("seq zero", lambda b: {**b, "events": [{**b["events"][0], "seq": 0}]}),
        ("payload a list", lambda b: {**b, "events": [{**b["events"][0], "payload": []}]}),
        ("hash not hex", lambda b: {**b, "events": [{**b["events"][0], "hash": "z" * 64}]}),
        ("extra key", lambda b: {**b, "events": [{**b["events"][0], "extra": 1}]}),
        ("missing key", lambda b: {**b, "events": [{k: v for k, v in b["events"][0].items() if k != "at"}]}),
        ("device_id mismatch", lambda b: {**b, "device_id": "XHA-W04"}),
        ("event of another log", lambda b: {**b, "events": [{**b["events"][0], "log_id": "other"}]}),
        ("descending seqs", lambda b: {**b, "events": list(reversed(b["events"]))}),
        ("events not a list", lambda b: {**b, "events": {}}),
        ("NUL in id", lambda b: {**b, "events": [{**b["events"][0], "id": "a\x00b"}]}),
        (
            "raw UTF-8 surrogate",
            lambda b: (
                json.dumps(_chained([{"x": "SURROGATE"}])).encode().replace(b"SURROGATE", b"\xed\xa0\x80")
            ),
        ),
        ("NaN", lambda b: _chained([{"x": float("nan")}])),
        ("Infinity", lambda b: _chained([{"x": float("-inf")}])),
    ],
)
def test_malformed_batches_get_400(hub, kiosk_log, why, mutate):
    batch = mutate(_batch(kiosk_log))
    body = batch if isinstance(batch, bytes) else json.dumps(batch).encode()
    r = _raw_post(hub, body)
    assert r.status_code == 400, (why, r.status_code, r.text)
    assert r.json()["error"] == "malformed"
    assert stored_count(hub, kiosk_log) == 0


def _chained(payloads: list[dict], kind: str = "rating_detail", log_id: str | None = None) -> dict:
    """A signed-ready batch of a new log whose events hash and link correctly, whatever their payloads."""
    log_id = log_id or str(uuid.uuid4())
    prev, events = "0" * 64, []
    for seq, payload in enumerate(payloads, 1):
        event = {
            "log_id": log_id,
            "seq": seq,
            "id": str(uuid.uuid4()),
            "type": kind,
            "at": "2026-11-28T10:15:03.512+08:00",
            "payload": payload,
            "prev_hash": prev,
        }
        event["hash"] = prev = event_hash(event)
        events.append(event)
    return {"device_id": DEVICE, "log_id": log_id, "events": events}


@pytest.mark.parametrize("rating_seq", [0, -1, 2**53 + 1, 2**63, 2**70])
def test_rating_detail_of_an_impossible_seq_is_stored_not_a_server_error(hub, rating_seq):
    batch = _chained([{"rating_seq": rating_seq, "reasons": ["101"], "contact_sealed": None}])
    r = _raw_post(hub, json.dumps(batch).encode())
    assert r.status_code == 200 and r.json() == {"acked_seq": 1}
    assert len(hub.store.log_events(DEVICE, batch["log_id"])) == 1


def test_too_large_gets_413(hub, kiosk_log):
    event = all_events(kiosk_log)[0]
    body = json.dumps(_batch(kiosk_log, events=[event] * 1001)).encode()
    assert _raw_post(hub, body).status_code == 413
    huge = b'{"pad": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    assert _raw_post(hub, huge).status_code == 413

    def chunks():  # no Content-Length: the hub counts as it reads
        for _ in range(48):
            yield b"x" * 65536

    r = requests.post(
        f"{hub.url}/api/v1/events", data=chunks(), headers=signed_headers(hub.secret, b""), timeout=10
    )
    assert r.status_code == 413
    assert stored_count(hub, kiosk_log) == 0


def test_load_is_shed_with_429_and_retry_after(tmp_path, kiosk_log):
    with thread_hub(tmp_path / "busy", max_in_flight=0) as busy:
        secret = register(busy.store)
        r = post_events(busy.url, secret, kiosk_log.log_id, all_events(kiosk_log)[:1])
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"


# --- rosters -----------------------------------------------------------------------------------


def _photo(path: Path, color: str) -> Path:
    Image.new("RGB", (30, 40), color).save(path)
    return path


def _signed_get(hub, path: str, device: str = DEVICE, secret: bytes | None = None, **headers):
    return requests.get(
        f"{hub.url}{path}",
        headers={**signed_headers(secret or hub.secret, b"", device, method="GET", target=path), **headers},
        timeout=10,
    )


def test_roster_import_etag_and_photos(hub, tmp_path, capsys):
    _photo(tmp_path / "wang.png", "red")
    csv_path = tmp_path / "roster.csv"
    csv_path.write_text(
        "card,staff_no,name,title,photo\n0006102437,0371,王晓燕,综合受理,wang.png\n26DEFAE7,0372,李强,,\n"
    )
    assert kiosk_main(["hub", "roster", "import", str(csv_path), "--data", hub.data]) == 0
    assert "imported 2 staff" in capsys.readouterr().out

    r = _signed_get(hub, f"/api/v1/devices/{DEVICE}/roster")
    assert r.status_code == 200
    body = r.json()
    assert r.headers["ETag"] == f'"{body["version"]}"'
    assert [s["name"] for s in body["staff"]] == ["王晓燕", "李强"]
    wang = body["staff"][0]
    assert wang["photo_url"].startswith("/api/v1/photos/") and body["staff"][1]["photo_url"] is None
    photo = _signed_get(hub, wang["photo_url"])
    assert photo.status_code == 200 and photo.content == (tmp_path / "wang.png").read_bytes()
    assert photo.headers["Content-Type"] == "image/png"
    again = requests.get(
        f"{hub.url}/api/v1/devices/{DEVICE}/roster",
        headers={
            **signed_headers(
                hub.secret,
                b"",
                timestamp=int(time.time()) - 2,
                method="GET",
                target=f"/api/v1/devices/{DEVICE}/roster",
            ),
            "If-None-Match": r.headers["ETag"],
        },
        timeout=10,
    )
    assert again.status_code == 304


def test_roster_not_modified_and_per_device(hub, tmp_path):
    csv_path = tmp_path / "hall.csv"
    csv_path.write_text("card,staff_no,name\n0006102437,0371,王晓燕\n")
    data = hub.data
    assert kiosk_main(["hub", "roster", "import", str(csv_path), "--data", data]) == 0
    other_secret = register(hub.store, "XHA-W04")
    own = tmp_path / "w04.csv"
    own.write_text("card,staff_no,name\n26DEFAE7,0999,赵敏\n")
    assert kiosk_main(["hub", "roster", "import", str(own), "--device", "XHA-W04", "--data", data]) == 0
    hall = _signed_get(hub, f"/api/v1/devices/{DEVICE}/roster").json()
    w04 = _signed_get(hub, "/api/v1/devices/XHA-W04/roster", "XHA-W04", other_secret).json()
    assert [s["staff_no"] for s in hall["staff"]] == ["0371"] and [s["staff_no"] for s in w04["staff"]] == [
        "0999"
    ]
    etag = f'"{hall["version"]}"'
    r = requests.get(
        f"{hub.url}/api/v1/devices/{DEVICE}/roster",
        headers={
            **signed_headers(
                hub.secret,
                b"",
                timestamp=int(time.time()) - 1,
                method="GET",
                target=f"/api/v1/devices/{DEVICE}/roster",
            ),
            "If-None-Match": etag,
        },
        timeout=10,
    )
    assert r.status_code == 304 and r.headers["ETag"] == etag
    # A device reads only its own roster.
    assert _signed_get(hub, "/api/v1/devices/XHA-W04/roster").status_code == 403


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_roster_import_reads_utf8_and_the_gbk_excel_saves_on_chinese_windows(hub, tmp_path, encoding):
    """UTF-8 (with or without BOM) first, else GB18030, a superset of GBK: as the kiosk's local roster."""
    csv_path = tmp_path / "roster.csv"
    csv_path.write_bytes("card,staff_no,name,title\r\n0006102437,0371,王晓燕,综合受理\r\n".encode(encoding))
    command = ["hub", "roster", "import", str(csv_path), "--device", "XHA-GBK", "--data", hub.data]
    assert kiosk_main(command) == 0
    staff = hub.store.roster_for("XHA-GBK").staff
    assert [(s["name"], s["title"]) for s in staff] == [("王晓燕", "综合受理")]


def test_roster_in_neither_utf8_nor_gb18030_is_refused(tmp_path, capsys):
    path = tmp_path / "roster.csv"
    path.write_bytes(b"card,staff_no,name\n1,0371,\xfe\xff\n")
    assert kiosk_main(["hub", "roster", "import", str(path), "--data", str(tmp_path / "hub")]) == 2
    assert "neither UTF-8 nor GB18030" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, problem",
    [
        ("card,name\n0006102437,王\n", "header"),
        ("card,staff_no,name\n,0371,王\n", "required"),
        # the same card in two forms (decimal and EM4100 data), as the kiosk reads them
        ("card,staff_no,name\n0006102437,0371,王\n13005D1DA5,0372,李\n", "already in the roster"),
        ("card,staff_no,name,photo\n0006102437,0371,王,missing.png\n", "missing.png"),
        ("card,staff_no,name,photo\n0006102437,0371,王,roster.csv\n", "not an image"),
        ("card,staff_no,name\n" + "1" * 65 + ",0371,王\n", "not a card number"),
        ("card,staff_no,name\n0006102437,0371,王\x00\n", "NUL"),
        ("card,staff_no,name,phone\n0006102437,0371,王,1\n", "unknown columns phone"),
    ],
)
def test_bad_roster_csv_is_one_message_and_exit_2(tmp_path, capsys, text, problem):
    path = tmp_path / "roster.csv"
    path.write_text(text)
    assert kiosk_main(["hub", "roster", "import", str(path), "--data", str(tmp_path / "hub")]) == 2
    err = capsys.readouterr().err
    assert problem in err and "Traceback" not in err


# --- commands ----------------------------------------------------------------------------------


def test_device_add_and_key_export(tmp_path, capsys):
    data = str(tmp_path / "hub")
    assert kiosk_main(["hub", "device", "add", "XHA-W07", "--area-code", "370211", "--data", data]) == 0
    secret = capsys.readouterr().out.strip()
    assert len(bytes.fromhex(secret)) == 32
    assert kiosk_main(["hub", "device", "add", "XHA-W07", "--data", data]) == 0
    out = capsys.readouterr()
    assert out.out.strip() != secret and "old secret no longer works" in out.err
    assert kiosk_main(["hub", "device", "add", "bad id!", "--data", data]) == 2
    assert kiosk_main(["hub", "device", "add", "XHA-W08", "--dept-code", "short", "--data", data]) == 2
    capsys.readouterr()
    assert kiosk_main(["hub", "key", "export", "--data", data]) == 0
    public = capsys.readouterr().out.strip()
    PublicKey(bytes.fromhex(public))
    assert kiosk_main(["hub", "--data", data, "key", "export"]) == 0  # the option before the subcommand
    assert capsys.readouterr().out.strip() == public  # generated once, kept


def test_bad_database_url_is_exit_2_and_unusable_database_exit_1(tmp_path, capsys):
    assert kiosk_main(["hub", "key", "export", "--db", "nosuchdb://x"]) == 2
    assert "--db" in capsys.readouterr().err
    assert kiosk_main(["hub", "key", "export", "--db", f"sqlite:///{tmp_path}/no/such/folder/hub.db"]) == 1
    assert "cannot open the hub database" in capsys.readouterr().err


def test_hub_that_cannot_listen_exits_1(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = str(taken.getsockname()[1])
        result = subprocess.run(
            [sys.executable, "-m", "commands.cli", "hub", "--data", str(tmp_path), "--port", port],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1 and f"could not listen on 127.0.0.1:{port}" in result.stderr


# --- the ratings export ------------------------------------------------------------------------


def _rated_log(tmp_path, public_key_hex: str) -> EventLog:
    log = EventLog(tmp_path / "rated.db")
    log.append("rating", rating_payload(1, satisfaction=5))
    bad = log.append("rating", rating_payload(2, satisfaction=1, case_no=None))
    sealed = seal_contact("13812345678", PublicKey(bytes.fromhex(public_key_hex)))
    log.append(
        "rating_detail", {"rating_seq": bad["seq"], "reasons": ["101", "201"], "contact_sealed": sealed}
    )
    log.append("rating_skipped", {"case_seq": 3, "why": "timeout"})
    return log


def test_ratings_export_in_national_field_names(fresh_hub, tmp_path):
    hub = fresh_hub
    with _rated_log(tmp_path, hub.store.public_key_hex()) as log:
        assert post_events(hub.url, hub.secret, log.log_id, all_events(log)).json() == {"acked_seq": 4}
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        r = requests.get(f"{hub.url}/api/v1/ratings", headers=auth, timeout=10)
        assert r.status_code == 200
        body = r.json()
        assert body["count"] == 2 and body["unlinked"] == 1
        good, bad = body["ratings"]
        assert good["projectNo"] == "370211202611280012" and good["linked"] is True
        assert good["taskCode"] == "11370211MB0000001X" and good["taskName"] == "不动产登记"
        assert good["pf"] == 4 and good["satisfaction"] == 5 and good["satisfactionCode"] == 1
        assert good["areaCode"] == "370211" and good["deptCode"] == "11370211MB0000001X"
        assert good["evalDetail"] == "" and good["contact"] is None
        assert len(good["assessTime"]) == 19 and good["assessTime"][10] == " "
        assert bad["projectNo"] is None and bad["linked"] is False
        assert bad["satisfaction"] == 1 and bad["satisfactionCode"] == 5
        assert bad["evalDetail"] == "101,201" and bad["contact"] == "13812345678"
        assert bad["windowNo"] == "03" and bad["staffNo"] == "0371" and bad["deviceId"] == DEVICE

        r = requests.get(f"{hub.url}/api/v1/ratings?format=csv", headers=auth, timeout=10)
        assert r.headers["Content-Type"].startswith("text/csv") and r.headers["X-Unlinked-Count"] == "1"
        # A UTF-8 BOM first: Excel on a Chinese Windows reads the file as GBK without it.
        text = r.content.decode("utf-8-sig")
        assert r.content.startswith(b"\xef\xbb\xbfprojectNo,") and "不动产登记" in text
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [row["satisfaction"] for row in rows] == ["5", "1"] and rows[1]["linked"] == "0"

        day = good["assessTime"][:10]
        assert (
            requests.get(f"{hub.url}/api/v1/ratings?from={day}&to={day}", headers=auth, timeout=10).json()[
                "count"
            ]
            == 2
        )
        assert (
            requests.get(f"{hub.url}/api/v1/ratings?to=2000-01-01", headers=auth, timeout=10).json()["count"]
            == 0
        )


@pytest.mark.parametrize(
    "headers, query, status",
    [
        ({}, "", 401),
        ({"Authorization": "Bearer wrong"}, "", 401),
        ({"Authorization": f"Basic {ADMIN_TOKEN}"}, "", 401),
        ({"Authorization": f"Bearer {ADMIN_TOKEN}"}, "?from=yesterday", 400),
        ({"Authorization": f"Bearer {ADMIN_TOKEN}"}, "?to=2026-13-45", 400),
        ({"Authorization": f"Bearer {ADMIN_TOKEN}"}, "?format=xml", 400),
    ],
)
def test_ratings_export_refusals(hub, headers, query, status):
    assert requests.get(f"{hub.url}/api/v1/ratings{query}", headers=headers, timeout=10).status_code == status


def test_ratings_export_disabled_without_token(tmp_path):
    with thread_hub(tmp_path / "hub", admin_token=None) as h:
        r = requests.get(f"{h.url}/api/v1/ratings", headers={"Authorization": "Bearer x"}, timeout=10)
        assert r.status_code == 403


def test_store_reopens_with_the_same_keypair(tmp_path):
    url, key_file = database_url(tmp_path / "hub", None), tmp_path / "hub" / "contact.key"
    first = HubStore(url, key_file)
    public = first.public_key_hex()
    first.close()
    assert HubStore(url, key_file).public_key_hex() == public


def _meta_keys(data: Path) -> list[str]:
    with sqlite3.connect(data / "hub.db") as conn:
        return [key for (key,) in conn.execute("SELECT key FROM meta")]


def test_contact_key_is_a_0600_file_not_in_the_database(tmp_path, capsys):
    data = tmp_path / "hub"
    assert kiosk_main(["hub", "key", "export", "--data", str(data)]) == 0
    public = capsys.readouterr().out.strip()
    key_file = data / "contact.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert bytes(PrivateKey(bytes.fromhex(key_file.read_text().strip())).public_key).hex() == public
    assert _meta_keys(data) == ["contact_public_key"]  # its public half only (a missing file is refused)
    # --key-file names the file, before or after the subcommand (another database: this one has its key)
    data = tmp_path / "hub2"
    elsewhere = tmp_path / "keys" / "hub.key"
    assert kiosk_main(["hub", "key", "export", "--data", str(data), "--key-file", str(elsewhere)]) == 0
    assert capsys.readouterr().out.strip() != public
    assert stat.S_IMODE(elsewhere.stat().st_mode) == 0o600
    assert kiosk_main(["hub", "--key-file", str(elsewhere), "key", "export", "--data", str(data)]) == 0
    assert (
        capsys.readouterr().out.strip()
        == bytes(PrivateKey(bytes.fromhex(elsewhere.read_text())).public_key).hex()
    )


def test_hub_with_its_key_in_the_database_moves_it_out_on_start(tmp_path, monkeypatch):
    data = tmp_path / "hub"
    old_key = PrivateKey.generate()
    store = HubStore(database_url(data, None))
    with store.engine.begin() as conn:  # how hubs before the key file kept it
        conn.execute(insert(meta).values(key="contact_private_key", value=bytes(old_key).hex()))
    secret = register(store)
    store.close()
    monkeypatch.setenv("KIOSK_HUB_ADMIN_TOKEN", ADMIN_TOKEN)
    hub = HubProcess(data).start()
    try:
        assert PrivateKey(bytes.fromhex((data / "contact.key").read_text())) == old_key
        assert stat.S_IMODE((data / "contact.key").stat().st_mode) == 0o600
        assert _meta_keys(data) == ["contact_public_key"]  # the public half only
        with _rated_log(tmp_path, bytes(old_key.public_key).hex()) as log:
            assert post_events(hub.url, secret, log.log_id, all_events(log)).status_code == 200
        body = requests.get(
            f"{hub.url}/api/v1/ratings", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
        ).json()
        assert [r["contact"] for r in body["ratings"]] == [None, "13812345678"]
    finally:
        hub.kill()


def test_database_url_from_the_environment(tmp_path, monkeypatch, capsys):
    """KIOSK_HUB_DB keeps a PostgreSQL password out of the command line (and out of ps)."""
    db = tmp_path / "env.db"
    monkeypatch.setenv("KIOSK_HUB_DB", f"sqlite:///{db}")
    monkeypatch.chdir(tmp_path)
    assert kiosk_main(["hub", "device", "add", "XHA-W09"]) == 0
    assert kiosk_main(["hub", "device", "add", "XHA-W10", "--data", str(tmp_path / "given")]) == 0
    capsys.readouterr()
    from_env, given = HubStore(f"sqlite:///{db}"), HubStore(database_url(tmp_path / "given", None))
    assert from_env.device_secret("XHA-W09") and not from_env.device_secret("XHA-W10")
    assert given.device_secret("XHA-W10")  # an explicit --data or --db wins
    from_env.close()
    given.close()
    service = (ROOT / "deploy" / "kiosk-hub.service").read_text()
    exec_start = next(line for line in service.splitlines() if line.startswith("ExecStart="))
    assert "--db" not in exec_start and "--key-file" in exec_start and "KIOSK_HUB_DB=" in service


def test_hub_service_notifies_systemd_and_stops_on_sigterm(tmp_path):
    """`kiosk hub` as kiosk-hub.service runs it: Type=notify with a watchdog, then SIGTERM."""
    notify_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify_socket:
        notify_socket.bind(str(notify_path))
        notify_socket.settimeout(30)
        env = {**os.environ, "NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "400000"}
        port = str(free_port())
        proc = subprocess.Popen(
            [sys.executable, "-m", "commands.cli", "hub", "--data", str(tmp_path / "hub"), "--port", port],
            env=env,
        )
        try:
            assert notify_socket.recv(64) == b"READY=1"
            assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).ok  # serving when it says so
            assert notify_socket.recv(64) == b"WATCHDOG=1"
            proc.send_signal(signal.SIGTERM)
            # uvicorn shuts down cleanly, then lets the signal end the process (systemd counts it clean).
            assert proc.wait(20) in (0, -signal.SIGTERM)
        finally:
            proc.kill()


def test_rating_that_does_not_fit_the_export_is_stored_and_reported(fresh_hub, caplog):
    """A device's own signed, chained event is never refused for its content: stored, and said."""
    event = {
        "log_id": "c0ffee00-0000-4000-8000-000000000001",
        "seq": 1,
        "id": "e1",
        "type": "rating",
        "at": "2026-11-28T10:15:03.512+08:00",
        "payload": {**rating_payload(1), "satisfaction": 9},
        "prev_hash": "0" * 64,
    }
    event["hash"] = event_hash(event)
    r = post_events(fresh_hub.url, fresh_hub.secret, event["log_id"], [event])
    assert r.json() == {"acked_seq": 1}
    assert "seq 1: rating payload does not fit the export" in caplog.text
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert requests.get(f"{fresh_hub.url}/api/v1/ratings", headers=auth, timeout=10).json()["count"] == 0

"""The outbox over HTTP (GET /api/v1/manage/upstream, resend, actions, reconciliation) and a real
``kiosk hub`` process that reports what its kiosks upload to a stand-in province by itself."""

from __future__ import annotations

import subprocess
import sys

import requests
from test_hub_support import (
    ADMIN_TOKEN,
    DEVICE,
    ROOT,
    free_port,
    post_events,
    rating_payload,
    thread_hub,
    wait_until,
)
from upstream_support import KEY, add_window_ratings, make_sender

from core.store import EventLog
from hub.upstream.standin import StandinProvince


def test_the_outbox_api(tmp_path):
    with thread_hub(tmp_path) as hub:
        desk = hub.app_desk
        tokens = {}
        for name, role in (("sup", "supervisor"), ("adm", "admin"), ("view", "viewer")):
            desk.add_user(name, role, None)
            tokens[role] = {"Authorization": f"Bearer {desk.new_token(name)}"}
        AUTH = tokens["supervisor"]
        hub.store.add_device(DEVICE, area_code="370211", dept_code="11370211MB0000001X")
        add_window_ratings(hub.store, tmp_path, 4, seed=3)
        add_window_ratings(hub.store, tmp_path, 1, seed=4, start=50, item_code="UNKNOWN-ITEM")
        url = f"{hub.url}/api/v1/manage/upstream"
        assert requests.get(url, timeout=5).status_code == 401
        assert requests.get(url, headers={"Authorization": "Bearer wrong"}, timeout=5).status_code == 401
        assert (
            requests.get(url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=5).status_code
            == 401
        )
        assert requests.get(url, headers=tokens["viewer"], timeout=5).status_code == 403
        assert requests.get(url, headers=tokens["admin"], timeout=5).status_code == 200
        listing = requests.get(url, params={"status": "pending"}, headers=AUTH, timeout=5).json()
        assert listing["count"] == 5 and listing["counts"]["pending"] == 5
        item = listing["records"][0]
        assert {"projectNo", "assessNumber", "status", "attempts", "lastError"} <= set(item)
        assert requests.get(url, params={"status": "lost"}, headers=AUTH, timeout=5).status_code == 400
        with StandinProvince(
            "json-v1", key=KEY, app="APPMARK-TEST", reject_task_codes=("UNKNOWN-ITEM",)
        ) as p:
            make_sender(hub.store, "json-v1", p.url).drain(10)
            rejected = requests.get(url, params={"status": "rejected"}, headers=AUTH, timeout=5).json()
            (record,) = rejected["records"]
            assert "不在事项目录中" in record["message"]
            sent = requests.get(url, params={"status": "sent"}, headers=AUTH, timeout=5).json()["records"][0]
            resend = f"{url}/{sent['id']}/resend"
            answer = requests.post(resend, json={}, headers=AUTH, timeout=5)
            assert answer.status_code == 409 and answer.json()["error"] == "conflict"
            assert requests.post(f"{url}/999999/resend", headers=AUTH, timeout=5).status_code == 404
            assert requests.post(f"{url}/abc/resend", headers=AUTH, timeout=5).status_code == 400
            p.reject_task_codes.clear()
            refused = requests.post(
                f"{url}/{record['id']}/resend", json={}, headers=tokens["admin"], timeout=5
            )
            assert refused.status_code == 403  # only a supervisor acts
            answer = requests.post(
                f"{url}/{record['id']}/resend", json={"note": "已入目录"}, headers=AUTH, timeout=5
            )
            assert answer.status_code == 200 and answer.json()["status"] == "pending"
            assert answer.json()["history"][0]["note"] == "已入目录"
            assert answer.json()["history"][0]["who"] == "sup"
            make_sender(hub.store, "json-v1", p.url).drain(10)
        bad = requests.post(
            f"{url}/{record['id']}/actions", json={"action": "delete"}, headers=AUTH, timeout=5
        )
        assert bad.status_code == 400
        days = requests.get(f"{url}/reconciliation", headers=AUTH, timeout=5).json()
        assert days["agrees"] and sum(d["sent"] for d in days["days"]) == 5


def test_a_hub_process_reports_what_kiosks_upload(tmp_path):
    (tmp_path / "upstream.key").write_text(KEY.hex())
    with StandinProvince("shandong", key=KEY, app="APPMARK-TEST") as province:
        config = tmp_path / "hub.toml"
        config.write_text(
            f'[upstream]\nprofile = "shandong"\nurl = "{province.url}"\napp = "APPMARK-TEST"\n'
            'key_file = "upstream.key"\n'
        )
        data = tmp_path / "data"
        base = [sys.executable, "-m", "commands.cli", "hub", "--config", str(config), "--data", str(data)]
        added = subprocess.run(
            [*base, "device", "add", DEVICE, "--area-code", "370211", "--dept-code", "11370211MB0000001X"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        secret = bytes.fromhex(added.stdout.strip())
        subprocess.run(
            [*base, "user", "add", "sup", "--role", "supervisor"], cwd=ROOT, capture_output=True, check=True
        )
        port = free_port()
        hub = subprocess.Popen(
            [*base, "--port", str(port), "--admin-token", ADMIN_TOKEN],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"

            def healthy() -> bool:
                assert hub.poll() is None, hub.stderr.read() if hub.stderr else ""
                try:
                    return requests.get(f"{url}/healthz", timeout=1).ok
                except requests.RequestException:
                    return False

            wait_until(healthy, what="hub start")
            with EventLog(tmp_path / "kiosk.db") as log:
                for i in range(12):
                    log.append("rating", rating_payload(i, case_no=f"CASE-{i}", satisfaction=3 + i % 3))
                assert post_events(url, secret, log.log_id, list(log.events_after(0))).status_code == 200
            wait_until(lambda: province.summary()["held"] == 12, what="the province holds all 12")
            token = subprocess.run(
                [*base, "user", "token", "sup"], cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout.strip()
            auth = {"Authorization": f"Bearer {token}"}
            listing = requests.get(f"{url}/api/v1/manage/upstream", headers=auth, timeout=5).json()
            assert listing["counts"]["sent"] == 12 and listing["sender"]["circuit"] == "closed"
            assert listing["sender"]["profile"] == "shandong"
        finally:
            hub.terminate()
            hub.wait(20)

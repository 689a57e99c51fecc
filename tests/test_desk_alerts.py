"""Alerts against a local receiver (a real HTTP server on 127.0.0.1): the three formats, no phone number
and no full case number, a link to the item, retries with backoff, failures listed for the console."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from desk_support import PHONE, desk_hub

from hub.desk.alerts import Alerts
from hub.desk.settings import AlertTarget, DeskSettings


class Receiver:
    def __init__(self, fail_first: int = 0):
        self.received: list[tuple[str, dict]] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.received.append((self.path, body))
                answer = b'{"errcode":0}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver(fail_first=2)
    yield r
    r.close()


def test_alerts_in_three_formats_with_retries(tmp_path, receiver):
    targets = (
        AlertTarget("webhook", f"{receiver.url}/hook", ("bad_rating", "overdue", "device_offline")),
        AlertTarget("wecom", f"{receiver.url}/wecom?key=k", ("bad_rating",)),
        AlertTarget("dingtalk", f"{receiver.url}/ding?access_token=t", ("bad_rating",), secret="SECabc"),
    )
    with desk_hub(tmp_path, alerts=targets, public_url="https://pj.example.gov.cn") as env:
        settings = DeskSettings(alerts=targets, public_url="https://pj.example.gov.cn", today=env.clock)
        alerts = Alerts(env.store.engine, env.desk, settings, backoff_s=0.0)
        alerts.run_once()  # the first scan marks where alerts start
        item = env.bad_rating("W1", "370211202611280077")
        alerts.run_once()  # two receivers fail once each (503): retried
        alerts.run_once()
        alerts.run_once()
        paths = sorted(p.split("?")[0] for p, _ in receiver.received)
        assert paths == ["/ding", "/hook", "/wecom"]
        everything = json.dumps(receiver.received, ensure_ascii=False)
        assert PHONE not in everything and "370211202611280077" not in everything
        assert "3702…0077" in everything and f"https://pj.example.gov.cn/console/items/{item}" in everything
        hook = next(b for p, b in receiver.received if p == "/hook")
        assert hook["event"] == "bad_rating" and hook["item"] == item
        wecom = next(b for p, b in receiver.received if p.startswith("/wecom"))
        assert wecom["msgtype"] == "markdown" and "新差评" in wecom["markdown"]["content"]
        ding_path = next(p for p, _ in receiver.received if p.startswith("/ding"))
        query = parse_qs(urlparse(ding_path).query)
        assert query["access_token"] == ["t"] and query["timestamp"] and query["sign"]
        alerts.run_once()
        assert len(receiver.received) == 3  # each alert once

        env.clock.advance(12)  # overdue: 督办 alert
        try:
            alerts.run_once()
        finally:
            env.clock.advance(-12)
        assert [b["event"] for p, b in receiver.received if p == "/hook"][-1] == "overdue"

        alerts.device_offline("W2", "2026-11-30T08:00:00+00:00")
        alerts.run_once()
        assert [b["event"] for p, b in receiver.received if p == "/hook"][-1] == "device_offline"
        assert alerts.status()["failed"] == []


def test_an_undeliverable_alert_is_listed_after_its_attempts(tmp_path):
    dead = Receiver()
    url = dead.url
    dead.close()  # nobody listens there any more
    targets = (AlertTarget("webhook", f"{url}/hook", ("device_offline",)),)
    with desk_hub(tmp_path) as env:
        alerts = Alerts(
            env.store.engine, env.desk, DeskSettings(alerts=targets, today=env.clock), backoff_s=0.0
        )
        alerts.device_offline("W1", "2026-11-30T08:00:00+00:00")
        for _ in range(10):
            alerts.deliver()
        failed = alerts.status()["failed"]
        assert len(failed) == 1 and failed[0]["attempts"] == 8 and "Connection" in failed[0]["error"]

"""Alerts against a local receiver (a real HTTP server on 127.0.0.1): the three formats, no phone number
and no full case number, a link to the item, retries with backoff, failures listed for the console."""

from __future__ import annotations

import json
import threading
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from desk_support import PHONE, desk_hub
from hypothesis import given
from hypothesis import strategies as st

from hub.desk.alerts import Alerts, mask_case
from hub.desk.roles import SUPERVISOR as SUPERVISOR_ROLE
from hub.desk.roles import Principal
from hub.desk.settings import AlertTarget, DeskSettings

SUPERVISOR = Principal("test", SUPERVISOR_ROLE)


@given(st.text(alphabet="0123456789ABC", min_size=9, max_size=50))
def test_a_masked_case_number_is_never_the_number(case_no):
    masked = mask_case(case_no)
    assert case_no not in masked and masked.startswith(case_no[:4]) and masked.endswith(case_no[-4:])


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
        AlertTarget(
            "webhook", f"{receiver.url}/hook", ("bad_rating", "due_soon", "overdue", "device_offline")
        ),
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

        due = date.fromisoformat(env.desk.item(SUPERVISOR, item)["deadline"])
        start, day = env.clock.day, env.clock.day
        while env.desk.calendar.working_days_left(day, due) > 1:
            day += timedelta(days=1)
        env.clock.day = day  # one working day left: due_soon
        try:
            alerts.run_once()
        finally:
            env.clock.day = start
        assert [b["event"] for p, b in receiver.received if p == "/hook"][-1] == "due_soon"

        env.clock.advance(12)  # overdue: 督办 alert
        try:
            alerts.run_once()
        finally:
            env.clock.advance(-12)
        assert [b["event"] for p, b in receiver.received if p == "/hook"][-1] == "overdue"

        from hub.fleet import DeviceAlarm

        alarm = DeviceAlarm(
            "device_offline",
            "raised",
            "W2",
            "D2",
            "03",
            "silent",
            "2026-11-30T08:00:00+00:00",
            "2026-11-30T07:58:00+00:00",
        )
        alerts.device_alarm(alarm)  # as the fleet monitor delivers it
        alerts.device_alarm(
            DeviceAlarm(
                "device_offline",
                "cleared",
                "W2",
                "D2",
                "03",
                "",
                "2026-11-30T09:00:00+00:00",
                "2026-11-30T08:59:00+00:00",
            )
        )
        alerts.run_once()
        offline = [b for p, b in receiver.received if p == "/hook" and b["event"] == "device_offline"]
        assert len(offline) == 1 and "W2" in offline[0]["text"]
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
        assert len(failed) == 1 and failed[0]["attempts"] == 8 and "URLError" in failed[0]["error"]


def test_a_bad_rating_corrected_after_its_alert_is_followed_up_to_the_same_targets(tmp_path, receiver):
    """The rater corrects a 差评 to good at the kiosk after the alert went out: the targets told of the
    差评 are told it is withdrawn (once), so nobody calls back a satisfied citizen; a target that does not
    take bad_rating alerts hears nothing of it."""
    from test_hub_support import post_events, rating_payload

    receiver.fail_first = 0
    told = AlertTarget("webhook", f"{receiver.url}/told", ("bad_rating",))
    untold = AlertTarget("webhook", f"{receiver.url}/untold", ("overdue",))
    with desk_hub(tmp_path, alerts=(told, untold)) as env:
        settings = DeskSettings(alerts=(told, untold), today=env.clock)
        alerts = Alerts(env.store.engine, env.desk, settings, backoff_s=0.0)
        alerts.run_once()  # the first scan marks where alerts start
        log = env.logs["W1"]
        rating = log.append("rating", rating_payload(1, case_no="370211202611280099", satisfaction=1))
        post_events(env.url, env.secrets["W1"], log.log_id, [rating], "W1")  # the detail not yet in
        alerts.run_once()
        assert [(p, b["event"]) for p, b in receiver.received] == [("/told", "bad_rating")]
        log.append("rating_corrected", {"rating_seq": rating["seq"], "satisfaction": 5, "input": "touch"})
        log.append("rating_detail", {"rating_seq": rating["seq"], "reasons": [], "contact_sealed": None})
        response = post_events(
            env.url, env.secrets["W1"], log.log_id, list(log.events_after(rating["seq"])), "W1"
        )
        assert response.status_code == 200, response.text
        alerts.run_once()
        alerts.run_once()
        assert [(p, b["event"]) for p, b in receiver.received] == [
            ("/told", "bad_rating"),
            ("/told", "withdrawn"),
        ]
        follow_up = receiver.received[-1][1]
        assert "差评已撤销" in follow_up["text"] and "370211202611280099" not in follow_up["text"]
        assert "3702…0099" in follow_up["text"]

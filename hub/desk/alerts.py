"""Alerts of the desk (`[[alerts]]`): a 差评 arrived (bad_rating), an item is due within one working day
(due_soon), an item is overdue (overdue, 督办), a device went offline (device_offline, called by the
fleet's code through ``device_offline``). Sent as a generic JSON webhook, a 企业微信 group robot message
or a 钉钉 robot message (its URL signed with the robot's secret).

An alert names no phone number and no full case number (the middle is masked); it links to the item in
the console. Each (target, event, subject) is queued once in the database; delivery is retried with
exponential backoff and an alert that still fails is listed on the console's 设置 page.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, cast, func, insert, literal, select
from sqlalchemy.exc import IntegrityError

from core.events import canonical_json

from ..once import exclusive
from ..schema import meta
from . import workflow as wf
from .roles import SUPERVISOR, Principal
from .settings import AlertTarget, DeskSettings
from .store import DeskStore, ItemFilter
from .tables import alert_attempts, alerts, item_status, items

log = logging.getLogger("hub.alerts")

EVENTS = ("bad_rating", "due_soon", "overdue", "device_offline")
KINDS = ("webhook", "wecom", "dingtalk")
EVENT_TITLES = {
    "bad_rating": "新差评",
    "withdrawn": "差评已撤销（评价人已改评）",
    "due_soon": "差评即将到期",
    "overdue": "差评已逾期（督办）",
    "device_offline": "评价器离线",
}
MAX_ATTEMPTS = 8
WATERMARK_META = "alerts_item_watermark"
# Items received this recently are looked at again whatever the watermark: on PostgreSQL an upload's item
# takes its id when inserted and becomes visible at its commit, so one with a lower id can appear after a
# scan moved the watermark past it (two windows' 差评 at once). Each alert is queued once anyway.
LATE_COMMIT_S = 600
WATERMARK_SINCE_META = "alerts_item_watermark_since"  # when the first scan ran (UTC): no backlog before it


def utc_text(unix: float) -> str:
    """An instant as the items' received_at writes it (UTC, whole seconds), to compare as text."""
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="seconds")


WITHDRAWN_WATERMARK_META = "alerts_withdrawn_watermark"  # the desk record's seq scanned for withdrawals
_SYSTEM = Principal("alerts", SUPERVISOR)


def mask_case(case_no: str | None) -> str:
    """Enough of a case number to recognise it, not enough to be one: 3702…0001."""
    if not case_no:
        return "未关联办件"
    return case_no if len(case_no) <= 8 else f"{case_no[:4]}…{case_no[-4:]}"


def target_id(target: AlertTarget) -> str:
    return hashlib.sha256(f"{target.kind}\n{target.url}".encode()).hexdigest()[:16]


def alert_text(event: str, fields: dict[str, Any]) -> str:
    title = EVENT_TITLES[event]
    if event == "device_offline":
        return f"【{title}】设备 {fields['device']} 自 {fields['since']} 未上报。"
    parts = [f"【{title}】{fields['dept_name']}", f"窗口 {fields['window'] or '—'}", f"办件 {fields['case']}"]
    if fields.get("deadline"):
        parts.append(f"办理期限 {fields['deadline']}")
    return "，".join(parts) + f"。查看：{fields['link']}"


def request_for(target: AlertTarget, event: str, fields: dict[str, Any], now_ms: int) -> tuple[str, dict]:
    """(URL, JSON body) of one alert in the target's format."""
    text = alert_text(event, fields)
    if target.kind == "wecom":
        return target.url, {"msgtype": "markdown", "markdown": {"content": text}}
    if target.kind == "dingtalk":
        url = target.url
        if target.secret:
            to_sign = f"{now_ms}\n{target.secret}".encode()
            sign = base64.b64encode(hmac.new(target.secret.encode(), to_sign, hashlib.sha256).digest())
            separator = "&" if "?" in url else "?"
            url = f"{url}{separator}timestamp={now_ms}&sign={urllib.parse.quote_plus(sign.decode())}"
        return url, {"msgtype": "text", "text": {"content": text}}
    return target.url, {"event": event, "text": text, **fields}


def post_json(url: str, body: dict, timeout_s: float = 10.0) -> str | None:
    """POST ``body`` as JSON; None if the receiver took it, else why not. (The standard library's
    client: the hub installs no terminal-side HTTP client.)"""
    request = urllib.request.Request(
        url,
        data=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        headers={"Content-Type": "application/json; charset=utf-8"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (configured URL)
            answer = response.read(65536)
    except urllib.error.HTTPError as e:
        return f"HTTP {e.code}"
    except (urllib.error.URLError, OSError, ValueError) as e:
        return f"{type(e).__name__}: {getattr(e, 'reason', e)}"
    return _robot_error(answer)


def _robot_error(answer: bytes) -> str | None:
    """企业微信 and 钉钉 answer 200 with ``errcode``; 0 is success. A webhook's answer is not read."""
    try:
        parsed = json.loads(answer) if answer else None
    except ValueError:
        return None
    if isinstance(parsed, dict) and "errcode" in parsed and parsed["errcode"] != 0:
        return f"errcode {parsed['errcode']}"
    return None


class Alerts:
    """Queues alerts and delivers them from one background thread."""

    def __init__(
        self,
        engine,
        desk: DeskStore,
        settings: DeskSettings,
        *,
        interval_s: float = 30.0,
        backoff_s: float = 10.0,
    ):
        self.engine, self.desk, self.settings = engine, desk, settings
        self.interval_s, self.backoff_s = interval_s, backoff_s
        self.targets = {target_id(t): t for t in settings.alerts}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # --- queueing ------------------------------------------------------------------------------

    def _queue(
        self, event: str, subject: str, fields: dict[str, Any], only: frozenset[str] | None = None
    ) -> None:
        """One alert per target that takes ``event`` (or, with ``only``, per target named there)."""
        for tid, target in self.targets.items():
            if (event not in target.events) if only is None else (tid not in only):
                continue
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        insert(alerts).values(
                            target=tid,
                            event=event,
                            subject=subject,
                            text=canonical_json(fields).decode("utf-8"),
                            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                        )
                    )
            except IntegrityError:
                pass  # queued before: each alert once

    def _item_fields(self, item: dict[str, Any]) -> dict[str, Any]:
        sections = self.desk.sections()
        base = self.settings.public_url.rstrip("/")
        return {
            "item": item["id"],
            "dept": item["dept"],
            "dept_name": sections.get(item["dept"] or "", item["dept"] or "未分配科室"),
            "window": item["window"],
            "case": mask_case(item["case_no"]),
            "deadline": item["deadline"],
            "link": f"{base}/console/items/{item['id']}",
        }

    def device_offline(self, device_id: str, since: str) -> None:
        """The fleet's entry point: a device not heard from since ``since`` (ISO time)."""
        self._queue("device_offline", f"device:{device_id}:{since}", {"device": device_id, "since": since})
        self._wake.set()

    def device_alarm(self, alarm: Any) -> None:
        """A channel of the fleet monitor (hub.fleet.DeviceAlarm): a raised device_offline is alerted;
        the other device alarms have no `[[alerts]]` event."""
        if alarm.event == "device_offline" and alarm.state == "raised":
            self.device_offline(alarm.device_id, alarm.last_seen)

    def scan(self) -> None:
        """Queue what is due: new 差评 since the last scan, items due within a working day, overdue."""
        if not self.targets:
            return
        since = utc_text(time.time() - LATE_COMMIT_S)
        with self.engine.begin() as conn:
            mark = conn.execute(select(meta.c.value).where(meta.c.key == WATERMARK_META)).scalar()
            newest = conn.execute(select(func.max(items.c.id))).scalar() or 0
            if mark is None:  # the first scan: from now on, not the backlog
                conn.execute(insert(meta).values(key=WATERMARK_META, value=str(newest)))
                conn.execute(insert(meta).values(key=WATERMARK_SINCE_META, value=utc_text(time.time())))
                mark = newest
                late: set[int] = set()
            else:
                # The backlog, received by the first scan, stays unalerted.
                started = (
                    conn.execute(select(meta.c.value).where(meta.c.key == WATERMARK_SINCE_META)).scalar()
                    or ""
                )
                # Received lately, below the watermark, not alerted: committed after a later one.
                alerted = select(alerts.c.subject).where(
                    (alerts.c.event == "bad_rating")
                    & (alerts.c.subject == literal("item:", String) + cast(items.c.id, String))
                )
                late = set(
                    conn.execute(
                        select(items.c.id).where(
                            (items.c.id <= int(mark))
                            & (items.c.received_at >= since)
                            & (items.c.received_at > started)
                            & ~alerted.exists()
                        )
                    ).scalars()
                )
        if newest > int(mark) or late:
            # A 差评 the rater corrected to good before the scan saw it is no 差评 to alert about.
            fresh = [
                i
                for i in self._page(ItemFilter())
                if (i["id"] > int(mark) or i["id"] in late) and i["status"] != wf.WITHDRAWN
            ]
            for item in fresh:
                self._queue("bad_rating", f"item:{item['id']}", self._item_fields(item))
            with self.engine.begin() as conn:
                conn.execute(meta.update().where(meta.c.key == WATERMARK_META).values(value=str(newest)))
        self._follow_up_withdrawn()
        for item in self._page(ItemFilter(overdue=True)):
            self._queue("overdue", f"item:{item['id']}", self._item_fields(item))
        for item in self._page(ItemFilter(overdue=False)):
            if item["status"] not in wf.FINISHED and item["days_left"] is not None and item["days_left"] <= 1:
                self._queue("due_soon", f"item:{item['id']}", self._item_fields(item))

    def _follow_up_withdrawn(self) -> None:
        """A 差评 alerted and then corrected to good by its rater (the item withdrawn): the targets that
        were told of it are told it is withdrawn, so nobody calls a citizen who is satisfied. Reads the
        items withdrawn since the last scan (the action record's order); each follow-up queued once."""
        with self.engine.begin() as conn:
            mark = conn.execute(select(meta.c.value).where(meta.c.key == WITHDRAWN_WATERMARK_META)).scalar()
            newest = conn.execute(select(func.max(item_status.c.seq))).scalar() or 0
            if mark is None:
                conn.execute(insert(meta).values(key=WITHDRAWN_WATERMARK_META, value=str(newest)))
                return
            fresh = conn.execute(
                select(item_status.c.item_id).where(
                    (item_status.c.status == wf.WITHDRAWN) & (item_status.c.seq > int(mark))
                )
            ).scalars()
            told: dict[int, frozenset[str]] = {}
            for item_id in fresh:
                targets = conn.execute(
                    select(alerts.c.target).where(
                        alerts.c.target.in_(list(self.targets))
                        & (alerts.c.event == "bad_rating")
                        & (alerts.c.subject == f"item:{item_id}")
                    )
                ).scalars()
                told[item_id] = frozenset(targets)
        for item_id, targets in told.items():
            if targets:
                item = self.desk.item(_SYSTEM, item_id)
                self._queue("withdrawn", f"item:{item_id}", self._item_fields(item), only=targets)
        with self.engine.begin() as conn:
            conn.execute(
                meta.update().where(meta.c.key == WITHDRAWN_WATERMARK_META).values(value=str(newest))
            )

    def _page(self, f: ItemFilter) -> list[dict[str, Any]]:
        try:
            rows, _ = self.desk.list_items(_SYSTEM, f, limit=1000)
        except Exception as e:  # a calendar gap: the console shows it; alerts wait for the calendar
            log.warning("alerts: %s", e)
            return []
        return rows

    # --- delivery ------------------------------------------------------------------------------

    def _pending(self) -> list[dict[str, Any]]:
        attempts = (
            select(
                alert_attempts.c.alert_id,
                func.count().label("attempts"),
                func.max(alert_attempts.c.ok).label("ok"),
                func.max(alert_attempts.c.at).label("last_at"),
            )
            .group_by(alert_attempts.c.alert_id)
            .subquery()
        )
        query = select(alerts, attempts.c.attempts, attempts.c.ok, attempts.c.last_at).outerjoin(
            attempts, attempts.c.alert_id == alerts.c.id
        )
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query.order_by(alerts.c.id)).mappings()]

    def deliver(self) -> None:
        now = time.time()
        for a in self._pending():
            tries = a["attempts"] or 0
            if a["ok"] or tries >= MAX_ATTEMPTS or a["target"] not in self.targets:
                continue
            if (
                tries
                and datetime.fromisoformat(a["last_at"]).timestamp() + self.backoff_s * 2 ** (tries - 1) > now
            ):
                continue
            target = self.targets[a["target"]]
            url, body = request_for(target, a["event"], json.loads(a["text"]), int(now * 1000))
            error = post_json(url, body)
            with self.engine.begin() as conn:
                conn.execute(
                    insert(alert_attempts).values(
                        alert_id=a["id"],
                        at=datetime.now(UTC).isoformat(timespec="milliseconds"),
                        ok=0 if error else 1,
                        error=error,
                    )
                )
            if error:
                log.warning("alert %d (%s) not delivered: %s", a["id"], a["event"], error)

    def status(self) -> dict[str, Any]:
        """For the console: alerts not delivered (after at least one attempt) and how many wait."""
        rows = self._pending()
        failed = [
            {
                "event": EVENT_TITLES[a["event"]],
                "subject": a["subject"],
                "attempts": a["attempts"],
                "error": self._last_error(a["id"]),
            }
            for a in rows
            if a["attempts"] and not a["ok"]
        ]
        pending = sum(1 for a in rows if not a["attempts"])
        return {"failed": failed, "pending": pending}

    def _last_error(self, alert_id: int) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(alert_attempts.c.error)
                .where(alert_attempts.c.alert_id == alert_id)
                .order_by(alert_attempts.c.id.desc())
                .limit(1)
            ).scalar()

    # --- the thread ----------------------------------------------------------------------------

    def run_once(self) -> None:
        # One round at a time across hub processes (each alert delivered once); a process that finds
        # another one in its round skips it.
        with exclusive(self.engine, "desk-alerts", wait=False) as held:
            if held:
                self.scan()
                self.deliver()

    def start(self) -> None:
        if not self.targets or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="desk-alerts", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a database hiccup must not end the alerts for good
                log.exception("alerts: a round failed; trying again")
            self._wake.wait(self.interval_s)
            self._wake.clear()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

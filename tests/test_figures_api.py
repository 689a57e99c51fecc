"""The figures' API over HTTP on a hub with the desk: the hand-computed record by section with a 不属实
decided through 复核, a 回访 and an on-time close; role scopes; rankings; the 通报 files; the sample."""

from __future__ import annotations

from datetime import date

import figures_data as data
import pytest
import requests
from test_hub_support import ThreadHub

from hub.config import FiguresConfig, HubConfig
from hub.desk.roles import SUPERVISOR, Principal
from hub.desk.settings import DeskSettings
from hub.desk.store import ItemFilter
from hub.storage import HubStore, database_url

TODAY = date(2026, 12, 31)  # every deadline of November has passed
USERS = {
    "sup": ("supervisor", None),
    "da": ("dept", data.DEPT_A),
    "view": ("viewer", None),
    "admin": ("admin", None),
}


class Env:
    def __init__(self, tmp, url: str | None = None):
        self.store = HubStore(url or database_url(tmp, None))
        calendar = (
            tmp / "calendar.toml"
        )  # plain weekdays: deadlines that do not depend on the package's years
        calendar.write_text('["2026"]\nholidays = []\n["2027"]\nholidays = []\n', encoding="utf-8")
        settings = DeskSettings(today=lambda: TODAY, calendar_file=calendar)
        config = HubConfig(figures=FiguresConfig(min_rated=1, bottom_n=1, periods_running=1, sample_min=2))
        self.hub = ThreadHub(self.store, desk=settings, config=config)
        self.desk = self.hub.app_desk
        self.desk.add_section(data.DEPT_A, "企业服务科")
        self.desk.add_section(data.DEPT_B, "社会事务科")
        for device, dept in ((data.W03, data.DEPT_A), (data.W05, data.DEPT_B)):
            self.store.add_device(device)
            self.desk.set_device_section(device, dept)
        self.tokens = {}
        for name, (role, dept) in USERS.items():
            self.desk.add_user(name, role, dept)
            self.tokens[name] = self.desk.new_token(name)
        self.store.add_phone_rating(dict(data.PHONE_C2))
        for device, events in ((data.W03, data.EVENTS_W03), (data.W05, data.EVENTS_W05)):
            self.store.ingest(device, events[0]["log_id"], events)

    def get(self, user: str | None, path: str, **params) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return requests.get(f"{self.hub.url}/api/v1/manage{path}", params=params, headers=headers, timeout=30)

    def post(self, user: str, path: str, body: dict | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"}
        return requests.post(f"{self.hub.url}/api/v1/manage{path}", json=body, headers=headers, timeout=30)

    def item_of(self, case_no: str) -> int:
        page, _ = self.desk.list_items(Principal("t", SUPERVISOR), ItemFilter(), limit=100)
        return next(i["id"] for i in page if i["case_no"] == case_no)

    def decide(self) -> None:
        """C3's 差评 marked 不属实 through 复核; C6's called back, rectified and closed."""
        sup, dept_a = Principal("sup", SUPERVISOR), Principal("da", "dept", data.DEPT_A)
        c3 = self.item_of("C3")
        self.desk.act(dept_a, c3, "request_review", {"note": "评价人误触"})
        self.desk.act(dept_a, c3, "review_opinion", {"adopt": False, "note": "监控显示误触"})
        self.desk.act(sup, c3, "review_decide", {"adopt": False, "note": "不属实"})
        c6 = self.item_of("C6")
        self.desk.act(sup, c6, "callback", {"reached": True, "note": "已联系"})
        self.desk.act(sup, c6, "rectify", {"note": "加开窗口"})
        self.desk.act(sup, c6, "close", {"note": "已反馈"})


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    e.hub.stop()
    e.store.close()


NOVEMBER = {"from": "2026-11-01", "to": "2026-11-30"}


def test_the_hand_computed_record_by_section(env):
    before = env.get("sup", "/stats", by="dept", **NOVEMBER).json()
    env.decide()
    body = env.get("sup", "/stats", by="dept", **NOVEMBER).json()
    rows = {r["key"]: r for r in body["rows"]}
    assert set(rows) == {data.DEPT_A, data.DEPT_B}
    assert rows[data.DEPT_A]["label"] == "企业服务科"
    for dept, expected in data.EXPECTED_BY_DEPT.items():
        for name, value in expected.items():
            got = rows[dept][name]
            assert (got is None) if value is None else got == pytest.approx(value), (dept, name, got)
    for name, value in data.EXPECTED_TOTAL.items():
        assert body["total"][name] == pytest.approx(value), name
    # The desk's decisions are part of the record the figures were computed from.
    assert body["record"]["deskSeq"] == 6 and body["record"]["head"] != before["record"]["head"]
    assert all(r["head"] == body["record"]["head"] for r in body["rows"])


@pytest.mark.parametrize("by", ["window", "staff", "item", "day", "month"])
def test_every_grouping_sums_to_the_same_total(env, by):
    env.decide()
    body = env.get("sup", "/stats", by=by, **NOVEMBER).json()
    for name in ("services", "rated", "good", "bad", "not_adopted", "realNameBad", "calledBack"):
        assert sum(r[name] for r in body["rows"]) == body["total"][name], name
    assert body["total"]["not_adopted"] == 1 and body["total"]["services"] == 7


def test_drill_down_section_window_staff_item(env):
    env.decide()
    windows = env.get("sup", "/stats", by="window", dept=data.DEPT_A, **NOVEMBER).json()["rows"]
    assert [r["key"] for r in windows] == ["03"]
    staff = env.get("sup", "/stats", by="staff", dept=data.DEPT_A, window="03", **NOVEMBER).json()["rows"]
    assert {r["key"]: r["services"] for r in staff} == {"0371": 4, "": 1}
    items = env.get("sup", "/stats", by="item", window="03", staff="0371", **NOVEMBER).json()
    assert {r["key"]: (r["rated"], r["not_adopted"]) for r in items["rows"]} == {
        "I1": (2, 1),
        "I2": (1, 0),
        "": (1, 0),
    }
    assert items["filters"] == {"window": "03", "staff": "0371"}


def test_role_scopes(env):
    assert env.get(None, "/stats").status_code == 401
    rows = env.get("da", "/stats", by="staff", **NOVEMBER).json()["rows"]  # only its own section's staff
    assert {r["key"] for r in rows} == {"0371", ""}
    assert [r["key"] for r in env.get("da", "/stats", by="dept", **NOVEMBER).json()["rows"]] == [data.DEPT_A]
    refused = env.get("da", "/stats", by="dept", dept=data.DEPT_B)
    assert refused.status_code == 403 and "error" in refused.json()
    assert env.get("view", "/stats", by="window", **NOVEMBER).status_code == 200
    assert env.get("view", "/samples/2026Q4").status_code == 403
    assert env.get("sup", "/stats", by="nothing").status_code in (400, 422)
    assert env.get("sup", "/stats", **{"from": "2026-11-30", "to": "2026-11-01"}).status_code == 422


def test_rankings_with_bottom_flags(env):
    env.decide()
    body = env.get("sup", "/rankings", by="staff", period="2026-11").json()
    rows = {r["key"]: r for r in body["rows"]}
    assert body["bottomN"] == 1 and body["periodsRunning"] == 1
    assert rows["0402"]["rank"] == 2 and rows["0402"]["bottom"] and rows["0402"]["flagged"]
    assert rows["0371"]["rank"] == 1 and not rows["0371"]["bottom"]  # 2/3 after the 不属实 one drops out
    assert "" not in rows


def test_reports_by_role(env):
    env.decide()
    pdf = env.get("sup", "/reports/2026-11", format="pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF") and pdf.headers["X-Record-Head"]
    html = env.get("da", "/reports/2026-11", format="html").text
    assert "企业服务科“好差评”情况通报" in html and "李强" not in html
    assert env.get("view", "/reports/2026-11", format="html").status_code == 403
    public = env.get("view", "/reports/2026Q4", format="html", public="true")
    assert public.status_code == 200 and "王晓燕" not in public.text
    assert env.get("sup", "/reports/2026-13").status_code in (400, 422)


def test_the_sample_by_role(env):
    assert env.post("da", "/samples/2026Q4").status_code == 403
    drawn = env.post("sup", "/samples/2026Q4").json()
    assert drawn["population"] == 6 and drawn["seed"].isdigit()
    assert env.post("sup", "/samples/2026Q4").status_code == 409
    mine = env.get("da", "/samples/2026Q4").json()["cases"]
    assert all(c["dept"] == data.DEPT_A for c in mine)
    others = [c for c in drawn["cases"] if c["dept"] != data.DEPT_A]
    if others:
        refused = env.post("da", "/samples/2026Q4/calls", {"caseNo": others[0]["caseNo"], "reached": False})
        assert refused.status_code == 404
    if mine:
        done = env.post(
            "da", "/samples/2026Q4/calls", {"caseNo": mine[0]["caseNo"], "reached": True, "satisfied": True}
        )
        assert done.status_code == 200 and done.json()["reached"] == 1
    assert env.post("sup", "/samples/2026Q4/calls", {"caseNo": 5}).status_code in (400, 422)


def desk_counts_agree(env: Env) -> None:
    """The desk's counts summed in SQL (``desk_counts``, what the figures serve) are the item-by-item
    rule (``desk_deltas`` of ``desk_items``) for every grouping, filter and day of asking."""
    from hub.figures import model as m
    from hub.figures.desk import desk_counts, desk_items
    from hub.figures.service import deadline_rule

    rule = deadline_rule(env.desk.calendar, env.desk.working_days)
    keeps = [(), ("staff_no",), ("item_code",), ("day",), ("month",), ("staff_no", "item_code")]

    def key(cell: m.Cell, keep) -> tuple:
        return (
            cell.device_id,
            cell.staff_no if "staff_no" in keep else None,
            cell.item_code if "item_code" in keep else None,
            cell.day if "day" in keep else cell.day[:7] if "month" in keep else None,
        )

    def summed(cells, keep) -> dict:
        out: dict = {}
        for cell, counts in cells:
            found = out.setdefault(key(cell, keep), dict.fromkeys(m.DESK_FIELDS, 0))
            for f in m.DESK_FIELDS:
                found[f] += getattr(counts, f)
        return {k: v for k, v in out.items() if any(v.values())}

    checked = 0
    with env.store.engine.connect() as conn:
        for today in (date(2026, 11, 2), date(2026, 11, 27), TODAY):
            for first, last in (("2026-11-01", "2026-11-30"), ("2026-11-20", "2026-11-28"), (None, None)):
                old = m.desk_deltas(desk_items(conn, first, last, rule), today)
                for keep in keeps:
                    for staff in (None, "0371"):
                        new = desk_counts(conn, first, last, rule, today, keep, staff=staff)
                        want = [(c, v) for c, v in old.items() if staff is None or c.staff_no == staff]
                        assert summed(new, keep) == summed(want, keep), (today, first, last, keep, staff)
                        checked += bool(want)
                        only = desk_counts(
                            conn, first, last, rule, today, keep, staff=staff, fields=("not_adopted",)
                        )
                        assert {k: v["not_adopted"] for k, v in summed(only, keep).items()} == {
                            k: v["not_adopted"] for k, v in summed(want, keep).items() if v["not_adopted"]
                        }
                    if keep:  # summed per key alone: the same totals
                        by_key = desk_counts(conn, first, last, rule, today, keep, by_device=False)
                        assert all(c.device_id == m.NONE_KEY for c, _ in by_key)
                        for f in m.DESK_FIELDS:
                            assert sum(getattr(v, f) for _, v in by_key) == sum(
                                getattr(v, f) for v in old.values()
                            )
            no_calendar = desk_counts(conn, None, None, None, today, ())  # no deadline: never due
            assert sum(c.response_due + c.on_time for _, c in no_calendar) == 0
    assert checked


def test_the_desk_counts_summed_in_sql_are_the_item_by_item_rule(env):
    desk_counts_agree(env)  # nothing decided: every item open
    env.decide()
    sup = Principal("sup", SUPERVISOR)
    env.desk.act(sup, env.item_of("C2"), "callback", {"reached": False, "note": "未接通"})
    desk_counts_agree(env)

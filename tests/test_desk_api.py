"""The management API of the 差评 desk over a real hub on 127.0.0.1: the 台账, actions, contact reveals,
the audit, section scope for every route, and the desk record's chain."""

from __future__ import annotations

import os

import pytest
from desk_support import PHONE, desk_hub
from sqlalchemy import inspect, text

from hub.desk.store import check_desk_chain


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    with desk_hub(tmp_path_factory.mktemp("desk")) as env:
        env.item1 = env.bad_rating("W1", "370211202611280001")
        env.item2 = env.bad_rating("W2", "370211202611280002", satisfaction=2, phone=None)
        yield env


def test_only_bad_ratings_become_items_with_their_deadline(env):
    env.bad_rating("W1", "370211202611289999", satisfaction=4)  # a good one: no item
    body = env.api("sup", "GET", "/bad-ratings").json()
    ids = [i["id"] for i in body["items"]]
    assert env.item1 in ids and env.item2 in ids and body["count"] == len(ids) == 2
    item = next(i for i in body["items"] if i["id"] == env.item1)
    assert item["projectNo"] == "370211202611280001" and item["satisfaction"] == 1
    assert item["dept"] == "D1" and item["window"] == "03" and item["staffNo"] == "0371"
    assert item["reasons"] == ["101", "201"] and item["status"] == "open" and item["overdue"] is False
    assert item["received"] == env.clock().isoformat() and item["deadline"] > item["received"]
    assert item["daysLeft"] == 5 and item["history"] == []
    assert PHONE not in str(body) and "contact" not in str(body).lower().replace("hascontact", "")


def test_a_dept_user_sees_only_its_section_on_every_route(env):
    own = env.api("d1", "GET", "/bad-ratings").json()
    assert [i["dept"] for i in own["items"]] == ["D1"]
    assert env.api("d1", "GET", "/bad-ratings?dept=D2").status_code == 403
    assert env.api("d1", "GET", "/bad-ratings?dept=D1").status_code == 200
    assert env.api("d1", "GET", f"/bad-ratings/{env.item2}").status_code == 403
    assert env.api("d1", "GET", f"/contact/{env.item2}").status_code == 403
    refused = env.api(
        "d1", "POST", f"/bad-ratings/{env.item2}/actions", json={"action": "callback", "reached": True}
    )
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert env.api("d1", "GET", "/audit").status_code == 403
    assert env.api("d2", "GET", f"/bad-ratings/{env.item2}").status_code == 200


@pytest.mark.parametrize("user", ["admin", "view"])
def test_admin_and_viewer_see_no_items_and_no_numbers(env, user):
    assert env.api(user, "GET", "/bad-ratings").status_code == 403
    assert env.api(user, "GET", f"/bad-ratings/{env.item1}").status_code == 403
    assert env.api(user, "GET", f"/contact/{env.item1}").status_code == 403


def test_no_token_or_a_wrong_one_is_401(env):
    import requests

    assert requests.get(f"{env.url}/api/v1/manage/bad-ratings", timeout=5).status_code == 401
    wrong = requests.get(
        f"{env.url}/api/v1/manage/bad-ratings", headers={"Authorization": "Bearer nope"}, timeout=5
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "unauthorized"


def test_unknown_ids_and_bad_input(env):
    assert env.api("sup", "GET", "/bad-ratings/999999").status_code == 404
    assert env.api("sup", "GET", "/contact/999999").status_code == 404
    bad = env.api("sup", "POST", f"/bad-ratings/{env.item1}/actions", data=b"{not json")
    assert bad.status_code == 400 and bad.json()["error"] == "malformed"
    assert (
        env.api("sup", "POST", f"/bad-ratings/{env.item1}/actions", json={"action": "erase"}).status_code
        == 422
    )
    assert (
        env.api("sup", "POST", f"/bad-ratings/{env.item1}/actions", json={"action": "callback"}).status_code
        == 422
    )
    assert env.api("sup", "GET", "/bad-ratings?status=lost").status_code == 400
    assert env.api("sup", "GET", "/bad-ratings?from=yesterday").status_code == 400


def test_contact_reveal_is_recorded_and_audited(env):
    answer = env.api("d1", "GET", f"/contact/{env.item1}")
    assert answer.status_code == 200 and answer.json() == {"id": env.item1, "phone": PHONE}
    assert env.api("sup", "GET", f"/contact/{env.item2}").json()["phone"] is None  # none was given
    reveals = env.api("sup", "GET", "/audit").json()["reveals"]
    assert [(r["user"], r["item"]) for r in reveals[:2]] == [("sup", env.item2), ("d1", env.item1)]
    assert env.api("admin", "GET", "/audit").status_code == 200
    assert PHONE not in str(env.api("sup", "GET", "/audit").json())
    history = env.api("sup", "GET", f"/bad-ratings/{env.item1}").json()["history"]
    assert history[-1]["action"] == "contact" and PHONE not in str(history)


def test_the_whole_lifecycle_and_refusals(env):
    item = env.bad_rating("W1", "370211202611280003")

    def act(user, **body):
        return env.api(user, "POST", f"/bad-ratings/{item}/actions", json=body)

    assert act("d1", action="rectify", note="x").status_code == 409
    assert act("d1", action="callback", reached=False, note="无人接听").json()["status"] == "called"
    assert act("d1", action="callback", reached=True, note="已沟通").json()["status"] == "called"
    assert act("d1", action="rectify", note="窗口培训").json()["status"] == "rectified"
    done = act("d1", action="close", note="已反馈")
    assert done.status_code == 200 and done.json()["status"] == "closed"
    assert act("d1", action="close").status_code == 409
    history = done.json()["history"]
    assert [h["action"] for h in history] == ["callback", "callback", "rectify", "close"]
    assert history[0]["user"] == "d1" and history[0]["reached"] is False and history[0]["note"] == "无人接听"
    closed = env.api("sup", "GET", "/bad-ratings?status=closed").json()["items"]
    assert [i["id"] for i in closed] == [item]


def test_review_not_adopted_stays_marked(env):
    item = env.bad_rating("W1", "370211202611280004")

    def act(user, **body):
        return env.api(user, "POST", f"/bad-ratings/{item}/actions", json=body)

    assert act("d1", action="request_review", note="误评：办事人按错").json()["status"] == "review"
    assert act("sup", action="review_decide", adopt=False).status_code == 409  # no opinion yet
    assert act("d1", action="review_opinion", adopt=False, note="建议不予采纳").status_code == 200
    assert act("d1", action="review_decide", adopt=False).status_code == 403
    assert act("view", action="review_decide", adopt=False).status_code == 403
    decided = act("sup", action="review_decide", adopt=False, note="不属实")
    assert decided.json()["status"] == "not_adopted" and decided.json()["overdue"] is False
    assert env.api("sup", "GET", f"/bad-ratings/{item}").json()["projectNo"] == "370211202611280004"


def test_overdue_after_the_deadline_passes(env):
    item = env.bad_rating("W2", "370211202611280005")
    env.clock.advance(12)
    try:
        overdue = env.api("sup", "GET", "/bad-ratings?overdue=true").json()["items"]
        assert item in [i["id"] for i in overdue] and all(i["overdue"] for i in overdue)
        assert all(i["daysLeft"] < 0 for i in overdue)
        assert item not in [
            i["id"] for i in env.api("sup", "GET", "/bad-ratings?overdue=false").json()["items"]
        ]
        assert all(
            i["dept"] == "D1" for i in env.api("d1", "GET", "/bad-ratings?overdue=true").json()["items"]
        )
    finally:
        env.clock.advance(-12)


def test_a_date_outside_the_calendar_is_an_alarm_not_a_guess(env):
    env.clock.day = env.clock.day.replace(year=2031)
    try:
        item = env.api("sup", "GET", f"/bad-ratings/{env.item1}").json()
        assert item["deadline"] is not None and item["overdue"] is True  # received in a known year
        assert item["daysLeft"] is None and "calendar_file" in item["calendarError"]
        listing = env.api("sup", "GET", "/bad-ratings?overdue=true")
        assert listing.status_code == 503 and listing.json()["error"] == "calendar_unknown"
        assert "calendar_file" in listing.json()["detail"]
    finally:
        env.clock.day = env.clock.day.replace(year=__import__("datetime").date.today().year)


def test_the_record_is_a_verified_chain_and_an_edit_is_found(env):
    assert check_desk_chain(env.store.engine) is None
    with env.store.engine.begin() as conn:
        conn.execute(text('UPDATE desk_actions SET payload = \'{"note":"改过"}\' WHERE seq = 2'))
    try:
        assert "seq 2" in check_desk_chain(env.store.engine)
    finally:
        with env.store.engine.begin() as conn:
            original = conn.execute(text("SELECT action FROM desk_actions WHERE seq = 2")).scalar()
            assert original


PG_URL = os.environ.get("KIOSK_TEST_PG_URL")


@pytest.mark.skipif(not PG_URL, reason="KIOSK_TEST_PG_URL is not set (see .ci/postgres.sh)")
def test_the_desk_on_postgresql(tmp_path):
    from test_hub_support import wipe_database

    wipe_database(PG_URL)
    with desk_hub(tmp_path, url=PG_URL) as env:
        mine = env.bad_rating("W1", "370211202611280011")
        other = env.bad_rating("W2", "370211202611280012")
        assert [i["id"] for i in env.api("d1", "GET", "/bad-ratings").json()["items"]] == [mine]
        assert env.api("d1", "GET", f"/contact/{other}").status_code == 403
        assert env.api("d1", "GET", f"/contact/{mine}").json()["phone"] == PHONE
        for body in (
            {"action": "callback", "reached": True},
            {"action": "rectify", "note": "培训"},
            {"action": "close", "note": "已反馈"},
        ):
            assert env.api("d1", "POST", f"/bad-ratings/{mine}/actions", json=body).status_code == 200
        assert env.api("sup", "GET", "/bad-ratings?status=closed").json()["count"] == 1
        assert env.api("sup", "GET", "/bad-ratings?overdue=false").json()["count"] == 2
        assert [r["user"] for r in env.api("sup", "GET", "/audit").json()["reveals"]] == ["d1"]
        assert check_desk_chain(env.store.engine) is None


def test_a_database_from_before_the_desk_gets_items_for_the_bad_ratings_it_holds(tmp_path):
    from desk_support import desk_hub as fresh_hub

    from hub.desk.tables import items
    from hub.storage import HubStore, database_url

    with fresh_hub(tmp_path) as env:
        env.bad_rating("W1", "370211202611280021")
        env.bad_rating("W1", "370211202611280022", satisfaction=5)
    url = database_url(tmp_path, None)
    old = HubStore(url)
    with old.engine.begin() as conn:  # as a hub that held ratings before the desk's items were derived
        conn.execute(text("DELETE FROM desk_items"))
        conn.execute(text("DROP INDEX desk_actions_status"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0005'"))
    old.close()
    upgraded = HubStore(url)
    try:
        with upgraded.engine.connect() as conn:
            rows = conn.execute(items.select()).mappings().all()
        assert [(r["device_id"], r["satisfaction"] <= 2, r["dept"]) for r in rows] == [("W1", True, None)]
        assert "desk_actions_status" in {
            i["name"] for i in inspect(upgraded.engine).get_indexes("desk_actions")
        }
    finally:
        upgraded.close()


def test_the_csv_export_is_scoped_and_holds_no_numbers(env):
    own = env.api("d1", "GET", "/bad-ratings?format=csv")
    assert own.status_code == 200 and own.text.startswith("\ufeffid,projectNo")
    assert "370211202611280001" in own.text and "370211202611280002" not in own.text
    assert PHONE not in own.text
    assert env.api("d1", "GET", "/bad-ratings?format=csv&dept=D2").status_code == 403
    assert env.api("view", "GET", "/bad-ratings?format=csv").status_code == 403
    everything = env.api("sup", "GET", "/bad-ratings?format=csv").text
    assert "370211202611280001" in everything and "370211202611280002" in everything


def test_a_bad_rating_from_the_phone_page_is_an_item_of_the_devices_section(env):
    import requests
    from test_hub_support import qr_token

    token = qr_token(env.secrets["W2"], "370211202611280031", device="W2")
    form = {"satisfaction": "1", "reason": ["201"], "phone": "13700001111"}
    assert requests.post(f"{env.url}/q/{token}", data=form, timeout=10).status_code == 200
    items = env.api("d2", "GET", "/bad-ratings").json()["items"]
    item = next(i for i in items if i["projectNo"] == "370211202611280031")
    assert item["channel"] == "phone" and item["dept"] == "D2" and item["reasons"] == ["201"]
    assert item["hasContact"] and "13700001111" not in str(items)
    assert env.api("d2", "GET", f"/contact/{item['id']}").json()["phone"] == "13700001111"
    assert env.api("d1", "GET", f"/contact/{item['id']}").status_code == 403


def test_each_items_status_is_cached_with_its_action_and_verify_finds_a_wrong_cache(tmp_path):
    with desk_hub(tmp_path) as env:
        first = env.bad_rating("W1", "370211202611280031")
        second = env.bad_rating("W1", "370211202611280032")
        assert env.api(
            "sup", "POST", f"/bad-ratings/{first}/actions", json={"action": "callback", "reached": True}
        ).ok
        assert env.api("d1", "GET", f"/contact/{first}").ok  # a reveal keeps the status
        by_status = {
            s: [i["id"] for i in env.api("sup", "GET", f"/bad-ratings?status={s}").json()["items"]]
            for s in ("open", "called", "closed")
        }
        assert by_status == {"open": [second], "called": [first], "closed": []}
        assert env.api("sup", "GET", "/bad-ratings?status=called").json()["count"] == 1
        assert check_desk_chain(env.store.engine) is None
        with env.store.engine.begin() as conn:
            conn.execute(text(f"UPDATE desk_item_status SET status = 'closed' WHERE item_id = {first}"))
        assert f"item {first}" in check_desk_chain(env.store.engine)
        with env.store.engine.begin() as conn:
            conn.execute(text(f"DELETE FROM desk_item_status WHERE item_id = {first}"))
        assert f"item {first}" in check_desk_chain(env.store.engine)


def test_revision_0012_fills_the_status_cache_from_the_record(tmp_path):
    from hub.storage import HubStore, database_url

    with desk_hub(tmp_path) as env:
        item = env.bad_rating("W1", "370211202611280041")
        for body in ({"action": "callback", "reached": False}, {"action": "rectify", "note": "培训"}):
            assert env.api("d1", "POST", f"/bad-ratings/{item}/actions", json=body).ok
    url = database_url(tmp_path, None)
    old = HubStore(url)
    with old.engine.begin() as conn:  # as a hub from before the cache
        conn.execute(text("DROP TABLE desk_item_status"))
        conn.execute(text("UPDATE alembic_version SET version_num = '0009'"))
    old.close()
    upgraded = HubStore(url)
    try:
        with upgraded.engine.connect() as conn:
            rows = conn.execute(text("SELECT item_id, seq, status FROM desk_item_status")).all()
        assert [tuple(r) for r in rows] == [(item, 2, "rectified")]
        assert check_desk_chain(upgraded.engine) is None
    finally:
        upgraded.close()

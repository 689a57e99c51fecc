"""改评价 at the hub: a ``rating_corrected`` event (a 差评 changed by the rater on the kiosk's reasons page,
before its rating_detail) through ingest, on a real hub store: the ratings row takes the corrected level
and keeps the first in ``corrected_from``, re-derivably (``kiosk hub verify``); a correction to good takes
the 差评's desk item off the open list by an appended ``withdraw``; the figures count the corrected level
whatever the upload batches; the upward record carries it; the export shows both levels."""

from __future__ import annotations

import os
import re
import threading
import time

import figures_data as data
import pytest
import requests
from desk_support import desk_hub
from sqlalchemy import select
from test_hub_support import ADMIN_TOKEN, post_events, rating_payload, wipe_database

from commands.cli import main
from hub.desk import workflow as wf
from hub.desk.store import check_desk_chain, withdraw_window_items
from hub.desk.tables import actions, items
from hub.figures.store import FigureStore
from hub.schema import ratings
from hub.storage import HubStore, database_url
from hub.upstream import outbox
from hub.verify import run_checks

LOG = "00000000-0000-4000-8000-00000000c0c0"
W = data.W03


def events(*corrections: int, detail: bool = True, reasons: list[str] | None = None) -> list[dict]:
    """A case rated 非常不满意 (seq 2), corrected to each of ``corrections`` in turn, then its detail; then
    another case rated 5."""
    items = [
        ("case_opened", data.t("02", "09:00:00"), data.case("C1", "I1")),
        ("rating", data.t("02", "09:01:00"), data.rating(1, "0371", "王晓燕", "03", "C1", "I1", 1)),
    ]
    for level in corrections:
        items.append(
            (
                "rating_corrected",
                data.t("02", "09:01:10"),
                {"rating_seq": 2, "satisfaction": level, "input": "touch"},
            )
        )
    if detail:
        items.append(
            (
                "rating_detail",
                data.t("02", "09:01:20"),
                {"rating_seq": 2, "reasons": reasons or [], "contact_sealed": None},
            )
        )
    items += [
        ("case_opened", data.t("02", "09:05:00"), data.case("C2", "I1")),
        (
            "rating",
            data.t("02", "09:06:00"),
            data.rating(len(items) + 1, "0371", "王晓燕", "03", "C2", "I1", 5),
        ),
    ]
    return data.chain(LOG, items)


PG_URL = os.environ.get("KIOSK_TEST_PG_URL")
DATABASES = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.skipif(not PG_URL, reason="KIOSK_TEST_PG_URL is not set")),
]


def database(kind: str, tmp_path) -> str:
    if kind == "sqlite":
        return database_url(tmp_path / "hub", None)
    wipe_database(PG_URL)  # a clean schema per test: the test database outlives the run
    return PG_URL


@pytest.fixture(params=DATABASES)
def store(request, tmp_path):
    s = HubStore(database(request.param, tmp_path))
    s.add_device(W)
    yield s
    s.close()


def ingest(store: HubStore, batch: list[dict], cut: int | None = None) -> None:
    step = cut or len(batch)
    for lo in range(0, len(batch), step):
        store.ingest(W, LOG, batch[lo : lo + step])


def rating_row(store: HubStore, seq: int = 2) -> dict:
    with store.engine.connect() as conn:
        return dict(conn.execute(select(ratings).where(ratings.c.seq == seq)).mappings().one())


def item_record(store: HubStore) -> tuple[dict, list[dict]]:
    with store.engine.connect() as conn:
        item = dict(conn.execute(select(items).where(items.c.seq == 2)).mappings().one())
        history = [
            dict(r)
            for r in conn.execute(
                select(actions).where(actions.c.item_id == item["id"]).order_by(actions.c.seq)
            ).mappings()
        ]
    return item, history


def verified(store: HubStore) -> None:
    assert all(r.ok for r in run_checks(store)), [r for r in run_checks(store) if not r.ok]


@pytest.mark.parametrize("cut", [None, 1, 2, 3])
def test_a_correction_to_good_sets_the_level_and_withdraws_the_item(store, cut):
    ingest(store, events(4), cut)
    row = rating_row(store)
    assert (row["satisfaction"], row["corrected_from"], row["reasons"]) == (4, 1, "")
    assert rating_row(store, 6)["corrected_from"] is None
    item, history = item_record(store)
    assert item["satisfaction"] == 1  # the item keeps the level that arrived; its record says the rest
    assert [(h["action"], h["role"], h["by_user"], h["status"]) for h in history] == [
        (wf.WITHDRAW, wf.SYSTEM, wf.SYSTEM_USER, wf.WITHDRAWN)
    ]
    assert check_desk_chain(store) is None
    verified(store)


def test_a_correction_to_another_bad_level_keeps_the_item_open_with_the_new_level(store):
    ingest(store, events(2, reasons=["201"]))
    row = rating_row(store)
    assert (row["satisfaction"], row["corrected_from"], row["reasons"]) == (2, 1, "201")
    _, history = item_record(store)
    assert history == []
    verified(store)


def test_several_corrections_keep_the_first_level_and_the_last_counts(store):
    ingest(store, events(2, 1, 5), cut=2)
    row = rating_row(store)
    assert (row["satisfaction"], row["corrected_from"]) == (5, 1)
    assert [h["action"] for h in item_record(store)[1]] == [wf.WITHDRAW]
    verified(store)


def test_a_correction_after_its_detail_or_of_a_good_rating_is_stored_not_applied(store):
    """The kiosk never writes one; a hub that gets one keeps it in the log and changes nothing."""
    batch = events()
    late = [
        ("rating_corrected", data.t("02", "09:02:00"), {"rating_seq": 2, "satisfaction": 5, "input": "touch"})
    ]
    good = [
        ("rating_corrected", data.t("02", "09:07:00"), {"rating_seq": 5, "satisfaction": 1, "input": "touch"})
    ]
    plain = [(e["type"], e["at"], e["payload"]) for e in batch]
    chained = data.chain(LOG, plain[:3] + late + plain[3:] + good)
    ingest(store, chained, cut=2)
    assert (rating_row(store)["satisfaction"], rating_row(store)["corrected_from"]) == (1, None)
    assert rating_row(store, 6)["satisfaction"] == 5
    assert item_record(store)[1] == []
    assert len(store.log_events(W, LOG)) == len(chained)
    verified(store)


def test_verify_names_a_corrected_level_changed_in_the_table(store):
    from sqlalchemy import update

    ingest(store, events(4))
    with store.engine.begin() as conn:
        conn.execute(update(ratings).where(ratings.c.seq == 2).values(corrected_from=None))
    bad = [r for r in run_checks(store) if not r.ok]
    assert [r.name for r in bad] == ["derived tables", "desk corrections"]
    assert "corrected_from" in bad[0].first and "not corrected" in bad[1].first


@pytest.mark.parametrize("cut", [1, 2, 3, 100])
def test_the_figures_count_the_corrected_level_whatever_the_batches(store, cut):
    figures = FigureStore(store.engine)
    batch = events(4)
    for lo in range(0, len(batch), cut):
        store.ingest(W, LOG, batch[lo : lo + cut])
        figures.refresh()  # a correction arriving in a later upload than its rating moves the counts then
    total = figures.snapshot(None, None, keep=())
    counts = next(iter(total.values())) if isinstance(total, dict) else None
    cells = figures.recompute()[1]
    summed = {
        f: sum(getattr(c, f) for c in cells.values()) for f in ("rated", "good", "bad", "s1", "s4", "s5")
    }
    assert summed == {"rated": 2, "good": 2, "bad": 0, "s1": 0, "s4": 1, "s5": 1}, counts
    assert figures.verify() == []


def test_the_stats_command_verifies_the_corrected_figures(tmp_path, capsys):
    store = HubStore(database_url(tmp_path / "hub", None))
    try:
        store.add_device(W)
        ingest(store, events(4)[:3])  # the rating and its correction…
        FigureStore(store.engine).refresh()
        ingest(store, events(4)[3:])  # …and, in a later upload, its detail
        assert main(["hub", "stats", "--verify", "--data", str(tmp_path / "hub")]) == 0
        assert "agree with the record" in capsys.readouterr().out
        assert main(["hub", "verify", "--db", store.url]) == 0
    finally:
        store.close()


def test_verify_names_a_withdrawal_without_a_correction(store):
    ingest(store, events())  # a 差评 never corrected
    with store.engine.begin() as conn:
        withdraw_window_items(conn, W, LOG, [2], "2026-11-02T01:00:00+00:00")
    bad = [r for r in run_checks(store) if not r.ok]
    assert [r.name for r in bad] == ["desk corrections"] and "not corrected" in bad[0].first


def test_the_upward_record_carries_the_corrected_level_once_the_detail_is_in(store):
    full = events(4)
    ingest(store, full[:3])  # the rating and its correction; the detail comes in a later upload
    with store.engine.begin() as conn:
        _, claimed = outbox.claim(conn, 10, time.time(), 60)
    assert claimed == []  # the 差评 waits for its detail
    assert rating_row(store)["satisfaction"] == 4
    ingest(store, full[3:])
    with store.engine.begin() as conn:
        _, claimed = outbox.claim(conn, 10, time.time() + 1000, 60)
    sent = {c.rating.project_no: c.rating for c in claimed}
    assert (sent["C1"].satisfaction, sent["C1"].reasons, sent["C2"].satisfaction) == (4, (), 5)


@pytest.mark.parametrize("kind", DATABASES)
def test_a_kiosk_correction_through_the_real_hub_shows_in_the_export_and_the_desk(tmp_path, kind):
    with desk_hub(tmp_path, database(kind, tmp_path)) as env:
        log = env.logs["W1"]
        rating = log.append("rating", rating_payload(1, case_no="370211202611280077", satisfaction=1))
        post_events(env.url, env.secrets["W1"], log.log_id, [rating], "W1")
        listed = env.api("sup", "GET", "/bad-ratings?status=open").json()
        assert listed["count"] == 1
        item_id = listed["items"][0]["id"]
        # The rater corrects it at the kiosk; the correction and the detail come in the next upload.
        log.append("rating_corrected", {"rating_seq": rating["seq"], "satisfaction": 5, "input": "touch"})
        log.append("rating_detail", {"rating_seq": rating["seq"], "reasons": [], "contact_sealed": None})
        response = post_events(
            env.url, env.secrets["W1"], log.log_id, list(log.events_after(rating["seq"])), "W1"
        )
        assert response.status_code == 200, response.text
        assert env.api("sup", "GET", "/bad-ratings?status=open").json()["count"] == 0
        item = env.api("sup", "GET", f"/bad-ratings/{item_id}").json()
        assert (item["status"], item["satisfaction"], item["correctedFrom"]) == ("withdrawn", 5, 1)
        assert [h["action"] for h in item["history"]] == ["withdraw"]
        console = _session(env, "sup")
        page = console.get(f"{env.url}/console/items/{item_id}", timeout=10)
        assert page.status_code == 200 and "已改评撤销" in page.text and "原为非常不满意" in page.text
        assert "评价人改评（撤销差评）" in page.text
        listed_page = console.get(f"{env.url}/console/items?status=withdrawn", timeout=10).text
        assert f"#{item_id}" in listed_page and "非常满意（评价人改评，原为非常不满意）" in listed_page
        exported = requests.get(
            f"{env.url}/api/v1/ratings", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
        )
        assert exported.status_code == 200, exported.text
        record = exported.json()["ratings"][0]
        assert (record["satisfaction"], record["correctedFrom"], record["evalDetail"]) == (5, 1, "")
        csv_text = requests.get(
            f"{env.url}/api/v1/ratings?format=csv",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=10,
        ).content.decode("utf-8-sig")
        assert csv_text.splitlines()[0].endswith(",correctedFrom") and csv_text.splitlines()[1].endswith(",1")


def _session(env, user: str) -> requests.Session:
    """A console session of ``user`` (first login sets a password of their own)."""
    s = requests.Session()
    s.get(f"{env.url}/console/login", timeout=5)
    form = {"csrf": s.cookies.get("kiosk_login_csrf"), "name": user, "password": env.passwords[user]}
    r = s.post(f"{env.url}/console/login", data=form, allow_redirects=False, timeout=5)
    assert r.status_code == 303, r.text
    if r.headers["location"] == "/console/password":
        page = s.get(f"{env.url}/console/password", timeout=5).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        new = "a-new-password-for-tests"
        form = {"csrf": csrf, "current": env.passwords[user], "new": new, "again": new}
        assert (
            s.post(f"{env.url}/console/password", data=form, allow_redirects=False, timeout=5).status_code
            == 303
        )
        env.passwords[user] = new
    return s


@pytest.mark.parametrize("kind", DATABASES)
def test_withdrawals_at_ingest_and_desk_users_appending_at_once_keep_one_chain(tmp_path, kind):
    """The ingest appends its withdraw inside the upload's transaction while people act on other items:
    whoever loses a race for a seq tries again on the new head; nothing is lost, the chain never forks."""
    with desk_hub(tmp_path, database(kind, tmp_path)) as env:
        others = [env.bad_rating("W2", f"37021120261128{n:04d}") for n in range(6)]
        log = env.logs["W1"]
        uploads = []
        for n in range(6):
            rating = log.append(
                "rating", rating_payload(n, case_no=f"3702112026112890{n:02d}", satisfaction=2)
            )
            log.append("rating_corrected", {"rating_seq": rating["seq"], "satisfaction": 3, "input": "touch"})
            log.append("rating_detail", {"rating_seq": rating["seq"], "reasons": [], "contact_sealed": None})
            uploads.append(list(log.events_after(rating["seq"] - 1)))
        errors: list[BaseException] = []

        def act() -> None:
            try:
                for item_id in others:
                    for reached in (False, True):
                        assert (
                            env.api(
                                "d2",
                                "POST",
                                f"/bad-ratings/{item_id}/actions",
                                json={"action": "callback", "reached": reached},
                            ).status_code
                            == 200
                        )
            except BaseException as e:  # reported below, in the test's thread
                errors.append(e)

        people = threading.Thread(target=act)
        people.start()
        for batch in uploads:
            assert post_events(env.url, env.secrets["W1"], log.log_id, batch, "W1").status_code == 200
        people.join()
        assert errors == []
        assert check_desk_chain(env.store) is None
        withdrawn = env.api("sup", "GET", "/bad-ratings?status=withdrawn").json()
        called = env.api("sup", "GET", "/bad-ratings?status=called").json()
        assert (withdrawn["count"], called["count"]) == (6, 6)
        assert all(r.ok for r in run_checks(env.store))

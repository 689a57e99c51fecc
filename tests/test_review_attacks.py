"""Attacks on 改评价, the console's shared sessions and throttle, ``--workers`` and the progress bars, as a
hostile device, a hostile console user and an unlucky operator would make them, on real parts (a real
hub store on SQLite, a real hub on 127.0.0.1). Each test names the attack; a defect found here is fixed
with its test, or left as a strict xfail that says what remains."""

from __future__ import annotations

import csv
import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import figures_data as data
import pytest
import requests
from desk_support import desk_hub
from sqlalchemy import func, select
from test_hub_postgres import PG_URL
from test_hub_support import fill_log, post_events, rating_payload, wait_until, wipe_database
from test_hub_workers import WorkersHub
from test_progress import hub_with_events, run  # noqa: F401 (a fixture)
from test_rating_corrected import DATABASES, _session, database

from core.store import EventLog
from hub.console.session import COOKIE, LOGIN_CSRF_COOKIE
from hub.console.throttle import MAX_ADDRESS_FAILURES, MAX_FAILURES, login_failures
from hub.figures.store import FigureStore
from hub.keys import KeyFileError, create_key_file
from hub.schema import ratings
from hub.storage import HubStore, database_url
from hub.verify import run_checks
from hub.workers import _die_with_parent

needs_pg = pytest.mark.skipif(not PG_URL, reason="KIOSK_TEST_PG_URL is not set (see .ci/postgres.sh)")
LOG = "00000000-0000-4000-8000-00000000a77a"
W = data.W03


def _case(n: int) -> tuple[str, str, dict]:
    return ("case_opened", data.t("02", "09:00:00"), data.case(f"C{n}", "I1"))


def _rating(case_seq: int, level: int) -> tuple[str, str, dict]:
    return (
        "rating",
        data.t("02", "09:01:00"),
        data.rating(case_seq, "0371", "王晓燕", "03", f"C{case_seq}", "I1", level),
    )


def _corrected(rating_seq, level) -> tuple[str, str, dict]:
    return (
        "rating_corrected",
        data.t("02", "09:01:10"),
        {"rating_seq": rating_seq, "satisfaction": level, "input": "touch"},
    )


def _detail(rating_seq: int) -> tuple[str, str, dict]:
    return (
        "rating_detail",
        data.t("02", "09:01:20"),
        {"rating_seq": rating_seq, "reasons": [], "contact_sealed": None},
    )


# A hostile device's logs: each is chained correctly, so the hub takes every event; what it may not do is
# let the batches decide what the tables hold. Seq 1 is the case, seq 2 (or 3) the rating.
HOSTILE_LOGS = {
    "a correction naming a rating later in the log": [_case(1), _corrected(3, 5), _rating(1, 1), _detail(3)],
    "a detail naming a rating later in the log": [
        _case(1),
        _detail(3),
        _rating(1, 1),
        _corrected(3, 5),
        _detail(3),
    ],
    "a forward detail alone": [_case(1), _detail(3), _rating(1, 1)],
    "good, then bad again, then the detail": [
        _case(1),
        _rating(1, 1),
        _corrected(2, 5),
        _corrected(2, 1),
        _detail(2),
    ],
    "satisfaction true": [_case(1), _rating(1, 1), _corrected(2, True), _detail(2)],
    "satisfaction '5'": [_case(1), _rating(1, 1), _corrected(2, "5"), _detail(2)],
    "satisfaction 0": [_case(1), _rating(1, 1), _corrected(2, 0), _detail(2)],
    "satisfaction 6": [_case(1), _rating(1, 1), _corrected(2, 6), _detail(2)],
    "after its detail": [_case(1), _rating(1, 1), _detail(2), _corrected(2, 5)],
    "twice, and two details": [
        _case(1),
        _rating(1, 1),
        _corrected(2, 5),
        _corrected(2, 4),
        _detail(2),
        _detail(2),
    ],
    "of a good rating": [_case(1), _rating(1, 5), _corrected(2, 1), _detail(2)],
    "of the case, not the rating": [_case(1), _rating(1, 1), _corrected(1, 5), _detail(2)],
    "naming itself": [_case(1), _rating(1, 1), _corrected(3, 5), _detail(2)],
    "rating_seq absent": [_case(1), _rating(1, 1), _corrected(None, 5), _detail(2)],
    "of a 差评 older than the newest rating": [
        _case(1),
        _rating(1, 1),
        _case(3),
        _rating(3, 2),
        _corrected(2, 5),
        _detail(4),
        _detail(2),
    ],
}


@pytest.mark.parametrize("name", sorted(HOSTILE_LOGS))
def test_a_hostile_devices_corrections_give_the_same_tables_and_figures_whatever_the_batches(tmp_path, name):
    """Found: a rating_corrected (or rating_detail) naming a rating later in the same upload was applied
    by the ingest (which inserts the batch's ratings first) but not by ``derive_ratings`` nor the figures'
    fold (which read the log in order), so ``kiosk hub verify`` failed after one upload and passed after
    another. Fixed in hub.ratings: a reference must name an earlier seq."""
    batch = data.chain(LOG, HOSTILE_LOGS[name])
    for cut in range(1, len(batch) + 1):
        store = HubStore(database_url(tmp_path / f"hub{cut}", None))
        try:
            store.add_device(W)
            figures = FigureStore(store.engine)
            for lo in range(0, len(batch), cut):
                store.ingest(W, LOG, batch[lo : lo + cut])
                figures.refresh()
            assert [(r.name, r.first) for r in run_checks(store) if not r.ok] == [], cut
            assert figures.verify() == [], cut
        finally:
            store.close()


# --- the console's login throttle against a hostile client -------------------------------------------


def _login_from(port: int, source: str, name: str, password: str, forwarded: str | None = None) -> int:
    """One login attempt over a new connection from ``source`` (a loopback address of its own)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        connection.request("GET", "/console/login")
        page = connection.getresponse()
        page.read()
        csrf = next(
            h.split(";")[0].split("=", 1)[1]
            for h in page.headers.get_all("set-cookie") or []
            if h.startswith(f"{LOGIN_CSRF_COOKIE}=")
        )
        headers = {
            "Cookie": f"{LOGIN_CSRF_COOKIE}={csrf}",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        if forwarded is not None:
            headers["X-Forwarded-For"] = forwarded
        form = urlencode({"csrf": csrf, "name": name, "password": password})
        connection.request("POST", "/console/login", body=form, headers=headers)
        answer = connection.getresponse()
        answer.read()
        return answer.status
    finally:
        connection.close()


def test_a_client_not_behind_the_proxy_cannot_spread_guesses_over_forged_forwarded_addresses(tmp_path):
    """A client other than the proxy (here 127.0.0.2; the hub trusts only 127.0.0.1, where its nginx is)
    forging X-Forwarded-For, and changing the name's case, width or spacing for each guess, is still one
    address: blocked after MAX_ADDRESS_FAILURES, even with a right password. Names are exact (``Sup``,
    ``ｓｕｐ`` and `` sup`` are no user), so case and Unicode variants gain no guesses at a real user."""
    with desk_hub(tmp_path) as env:
        port = int(env.url.rsplit(":", 1)[1].split("/")[0])
        variants = ["Sup", "SUP", "ｓｕｐ", "sup\u200b", "s\u0075p ", " sup"]
        codes = [
            _login_from(
                port,
                "127.0.0.2",
                variants[i % len(variants)] + str(i // len(variants)),
                "x" * 12,
                f"10.9.{i}.1",
            )
            for i in range(MAX_ADDRESS_FAILURES)
        ]
        assert codes == [401] * MAX_ADDRESS_FAILURES
        assert _login_from(port, "127.0.0.2", "sup", env.passwords["sup"], "10.200.0.1") == 429
        assert _login_from(port, "127.0.0.3", "sup", env.passwords["sup"]) in (200, 303)  # another address
        # Variants of a real name never reach its account: Sup is not sup.
        for variant in ("Sup", "ｓｕｐ", "sup\u200b"):
            assert _login_from(port, "127.0.0.4", variant, env.passwords["sup"]) == 401


def test_a_flood_of_made_up_names_leaves_a_bounded_throttle_table(tmp_path):
    """Every failure is two rows; an address stops adding rows once blocked, and rows older than the
    window go at the next failure: the table holds at most 2 × MAX_ADDRESS_FAILURES rows per address
    within the window, whatever the number of names tried."""
    with desk_hub(tmp_path) as env:
        port = int(env.url.rsplit(":", 1)[1].split("/")[0])
        codes = [
            _login_from(port, "127.0.0.5", f"nobody-{i}", "x" * 12) for i in range(MAX_ADDRESS_FAILURES + 15)
        ]
        assert codes == [401] * MAX_ADDRESS_FAILURES + [429] * 15
        with env.store.engine.connect() as conn:
            rows = conn.execute(select(func.count()).select_from(login_failures)).scalar()
        assert rows == 2 * MAX_ADDRESS_FAILURES


# --- progress bars and scripts ---------------------------------------------------------------------


def test_stats_json_stays_json_on_stdout_when_stderr_is_a_terminal(request, tmp_path):
    """A script reads ``kiosk hub stats --json`` from a pipe while its stderr is the operator's terminal:
    the bars, the migration's and the fold's lines go to the terminal, stdout is JSON and nothing else,
    on a data folder the command opens first (a migration) and after new events (a fold)."""
    hub = request.getfixturevalue("hub_with_events")
    with EventLog(hub.kiosk_log) as log:
        fill_log(log, 60)
    code, _out, _err = run(["sync", "--once", "--config", str(hub.kiosk_config)], terminal=False)
    assert code == 0
    fresh = tmp_path / "fresh"
    for folder in (["--data", str(hub.data)], ["--data", str(fresh)]):
        for by in ([], ["--by", "staff"]):
            code, out, err = run(["hub", "stats", "--json", *folder, *by], terminal=True, cwd=tmp_path)
            assert code == 0, err[-2000:]
            body = json.loads(out)
            assert "total" in body and "rows" in body


# --- kiosk hub --workers: an unlucky operator -------------------------------------------------------


@needs_pg
def test_a_supervisor_killed_by_sigkill_leaves_no_worker_behind(tmp_path):
    """``kill -9`` of the supervisor (an operator's, or the OOM killer's): its workers get SIGTERM from
    the kernel (PR_SET_PDEATHSIG) and stop, so the port is free for the next start; none is orphaned."""
    wipe_database(PG_URL)
    hub = WorkersHub(tmp_path)
    try:
        assert hub.notify.recv(64) == b"READY=1"
        workers = hub.workers()
        assert len(workers) == 2
        os.kill(hub.proc.pid, signal.SIGKILL)
        hub.proc.wait(10)

        def gone() -> bool:
            for pid in workers:
                try:
                    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                except FileNotFoundError:
                    continue
                if state != "Z":  # a zombie waits for its new parent's wait(): it serves nothing
                    return False
            return True

        wait_until(gone, what="the workers of a killed supervisor to stop")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", hub.port))  # the port is free again
    finally:
        hub.close()


# --- a hostile console user ------------------------------------------------------------------------


def test_a_desk_user_cannot_withdraw_an_item_through_the_api_or_the_console(tmp_path):
    """``withdraw`` is the system's (the ingest's, after the rater's correction): a supervisor posting it
    through the API or a console form, with any note or role-like field, is refused and nothing is
    appended; the item stays open and ``kiosk hub verify`` agrees."""
    with desk_hub(tmp_path) as env:
        item_id = env.bad_rating("W1", "370211202611280101")
        for fields in ({"action": "withdraw"}, {"action": "withdraw", "role": "system", "by_user": "kiosk"}):
            answer = env.api("sup", "POST", f"/bad-ratings/{item_id}/actions", json=fields)
            assert answer.status_code == 422, answer.text
        console = _session(env, "sup")
        page = console.get(f"{env.url}/console/items/{item_id}", timeout=10).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        for action in ("withdraw", "WITHDRAW", "withdraw "):
            answer = console.post(
                f"{env.url}/console/items/{item_id}/actions",
                data={"csrf": csrf, "action": action, "note": "评价人在评价器上改为好评"},
                allow_redirects=False,
                timeout=10,
            )
            assert answer.status_code == 422, answer.status_code
        item = env.api("sup", "GET", f"/bad-ratings/{item_id}").json()
        assert (item["status"], item["history"]) == ("open", [])
        assert all(r.ok for r in run_checks(env.store))


def test_a_session_cookie_of_another_hub_is_no_session_here(tmp_path):
    """Two halls' hubs, each with its own contact key and the same user names: a cookie one signed is
    refused by the other (the login page), while it is good where it was issued."""
    with desk_hub(tmp_path / "a") as hall_a, desk_hub(tmp_path / "b") as hall_b:
        assert bytes(hall_a.store.private_key) != bytes(hall_b.store.private_key)
        on_a = _session(hall_a, "sup")
        cookie = on_a.cookies.get(COOKIE)
        assert on_a.get(f"{hall_a.url}/console/items", allow_redirects=False, timeout=10).status_code == 200
        answer = requests.get(
            f"{hall_b.url}/console/items", cookies={COOKIE: cookie}, allow_redirects=False, timeout=10
        )
        assert (answer.status_code, answer.headers.get("location")) == (303, "/console/login")


def test_a_worker_whose_supervisor_died_before_it_asked_to_follow_it_does_not_start():
    """Found: PR_SET_PDEATHSIG is asked for after the fork; a supervisor killed in between (SIGKILL, the
    OOM killer) sends no signal, and the worker served on, orphaned, holding the port. Now the worker
    checks its parent after asking and does not start when it is gone. Real processes: a middle process
    forks a child and exits at once; the child, adopted by then, is told so."""
    read_end, write_end = os.pipe()
    middle = os.fork()
    if middle == 0:  # the "supervisor": forks its "worker" and dies before the worker asks
        try:
            parent = os.getpid()
            child = os.fork()
            if child == 0:
                try:
                    deadline = time.monotonic() + 10
                    while os.getppid() == parent and time.monotonic() < deadline:
                        time.sleep(0.01)  # the child waits for its parent's death, as in the race
                    os.write(write_end, b"1" if _die_with_parent(parent) else b"0")
                finally:
                    os._exit(0)
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(middle, 0)
    with os.fdopen(read_end, "rb") as answer:
        assert answer.read() == b"0"  # the worker knows: it must not start (a living parent: the tests above)


def test_the_desks_csv_says_which_levels_the_rater_corrected(tmp_path):
    """Found: the 台账's CSV (API ``format=csv`` and the console's export) showed the corrected level with
    no trace of the correction (a 1 corrected to 2 read as a plain 不满意, a withdrawn item as a 5), while
    the item's JSON and page say it. The CSV now has ``correctedFrom`` beside ``satisfaction``."""
    with desk_hub(tmp_path) as env:
        log = env.logs["W1"]
        for case_no, level in (("370211202611280201", 2), ("370211202611280202", 5)):
            rating = log.append("rating", rating_payload(1, case_no=case_no, satisfaction=1))
            log.append(
                "rating_corrected", {"rating_seq": rating["seq"], "satisfaction": level, "input": "touch"}
            )
            log.append("rating_detail", {"rating_seq": rating["seq"], "reasons": [], "contact_sealed": None})
        assert (
            post_events(env.url, env.secrets["W1"], log.log_id, list(log.events_after(0)), "W1").status_code
            == 200
        )
        env.bad_rating("W1", "370211202611280203")  # never corrected
        text = env.api("sup", "GET", "/bad-ratings?format=csv").content.decode("utf-8-sig")
        rows = {r["projectNo"]: r for r in csv.DictReader(io.StringIO(text))}
        assert [
            (rows[c]["satisfaction"], rows[c]["correctedFrom"], rows[c]["status"]) for c in sorted(rows)
        ] == [
            ("2", "1", "open"),
            ("5", "1", "withdrawn"),
            ("1", "", "open"),
        ]
        console = _session(env, "sup").get(f"{env.url}/console/items.csv", timeout=10)
        assert console.content.decode("utf-8-sig") == text


def test_a_device_with_many_差评_awaiting_details_gets_figures_that_agree_with_the_ratings(tmp_path):
    """Found: the figures' fold kept at most MAX_OPEN_CASES 差评 awaiting a detail per log and forgot the
    oldest, while the ratings table corrected any 差评 still awaiting its detail, so a device that left 17
    差评 without details and then corrected the first had the figures count a 差评 the export called good.
    Now one rule for all three readers: a correction names the log's newest rating (as the kiosk writes
    it); this one names an older one and changes nothing anywhere."""
    from hub.figures.model import MAX_OPEN_CASES

    pending = MAX_OPEN_CASES + 1
    plan = []
    for n in range(pending):
        plan += [_case(2 * n + 1), _rating(2 * n + 1, 1)]
    plan += [_corrected(2, 5)] + [_detail(2 * n + 2) for n in range(pending)]
    store = HubStore(database_url(tmp_path / "hub", None))
    try:
        store.add_device(W)
        figures = FigureStore(store.engine)
        store.ingest(W, LOG, data.chain(LOG, plan))
        figures.refresh()
        with store.engine.connect() as conn:
            good_rows = conn.execute(
                select(func.count()).select_from(ratings).where(ratings.c.satisfaction >= 3)
            ).scalar()
        cells = figures.recompute()[1]
        assert good_rows == 0  # not the newest rating: stored, not applied
        assert sum(c.good for c in cells.values()) == good_rows
        assert [(r.name, r.first) for r in run_checks(store) if not r.ok] == []
        assert figures.verify() == []
    finally:
        store.close()


@pytest.mark.parametrize("kind", DATABASES)
def test_a_burst_of_concurrent_guesses_gets_no_more_than_the_limit(tmp_path, kind):
    """Found: the throttle asked "blocked?" before the password check and recorded the failure after it,
    so every guess sent at the same moment passed the question before any failure was counted: a burst
    of 30 guesses at one name got 30 tries (one per request in flight, and requests in flight are many),
    against the 5 allowed. Now an attempt is counted before the password is checked (and taken back when
    it was right or refused): at most MAX_FAILURES guesses at a name, however they are sent."""
    with desk_hub(tmp_path, database(kind, tmp_path)) as env:
        port = int(env.url.rsplit(":", 1)[1].split("/")[0])
        burst = 30
        start = threading.Barrier(burst)
        codes: list[int] = []

        def guess(n: int) -> None:
            start.wait(10)
            codes.append(_login_from(port, f"127.0.1.{n + 1}", "sup", f"wrong-guess-{n:04d}"))

        threads = [threading.Thread(target=guess, args=(n,)) for n in range(burst)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(codes) == burst and set(codes) <= {401, 429}
        assert codes.count(401) <= MAX_FAILURES, codes
        # Attempts refused in the burst are not kept (on PostgreSQL a burst may even refuse them all):
        # guesses one by one then get only what is left of the limit, and the table holds only failures.
        tried = codes.count(401)
        for n in range(MAX_FAILURES + 1):
            answer = _login_from(port, f"127.0.3.{n + 1}", "sup", f"another-guess-{n}")
            if answer == 429:
                break
            tried += answer == 401
        assert tried == MAX_FAILURES
        assert _login_from(port, "127.0.2.1", "sup", env.passwords["sup"]) == 429  # the right one too
        with env.store.engine.connect() as conn:
            rows = conn.execute(select(func.count()).select_from(login_failures)).scalar()
        assert rows == 2 * MAX_FAILURES


def test_behind_the_proxy_a_forged_forwarded_prefix_does_not_change_the_address(tmp_path):
    """Through the hall's nginx (trusted at 127.0.0.1), which appends the real client address to
    whatever X-Forwarded-For the client sent ($proxy_add_x_forwarded_for): a client rotating its own
    forged entries is still its real address, blocked after MAX_ADDRESS_FAILURES."""
    with desk_hub(tmp_path) as env:
        port = int(env.url.rsplit(":", 1)[1].split("/")[0])
        real = "203.0.113.7"
        codes = [
            _login_from(port, "127.0.0.1", f"nobody-{i}", "x" * 12, f"10.{i}.0.1, 127.0.0.1, {real}")
            for i in range(MAX_ADDRESS_FAILURES)
        ]
        assert codes == [401] * MAX_ADDRESS_FAILURES
        assert _login_from(port, "127.0.0.1", "sup", env.passwords["sup"], f"10.99.0.1, {real}") == 429
        assert _login_from(port, "127.0.0.1", "sup", env.passwords["sup"], "198.51.100.9") == 303


# --- the contact key, on which the console's sessions now hang too -----------------------------------


def test_a_second_host_or_a_restore_without_the_key_file_is_refused_not_given_a_new_key(tmp_path):
    """Found: a hub that finds no key file makes a new contact key, whatever its database holds. On a
    second host whose operator forgot to copy the key file (docs/hub.md: every host needs the same), or
    on a database restored without its key file, the hub started with a key that opens none of the stored
    numbers and that the kiosks' public key does not match, and its console sessions were refused by the
    other host. The database now records the contact key's public half (not secret) at first use, and a
    hub whose key file is missing or another refuses to start and says which key it needs."""
    url = database_url(tmp_path / "hub", None)
    first = HubStore(url, tmp_path / "host-a" / "contact.key")
    public = first.public_key_hex()
    first.close()
    (tmp_path / "host-b").mkdir()
    for key_file in (tmp_path / "host-b" / "contact.key", tmp_path / "restored" / "contact.key"):
        other = HubStore(url, key_file)
        try:
            with pytest.raises(KeyFileError, match=public[:16]):
                other.public_key_hex()
            assert not key_file.exists()  # no stray new key left behind to be taken for the right one
        finally:
            other.close()
    stray = tmp_path / "host-c" / "contact.key"
    create_key_file(stray, None)  # a key file, but another key
    other = HubStore(url, stray)
    try:
        with pytest.raises(KeyFileError, match="another contact key"):
            other.public_key_hex()
    finally:
        other.close()
    shutil.copy(tmp_path / "host-a" / "contact.key", tmp_path / "host-b" / "contact.key")
    copied = HubStore(url, tmp_path / "host-b" / "contact.key")  # the key file copied: the same key
    try:
        assert copied.public_key_hex() == public
    finally:
        copied.close()

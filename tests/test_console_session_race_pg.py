"""A console login racing a password change, on a real PostgreSQL hub over HTTP: the session a login opens
is bound to the password hash its password was checked against, not to whatever hash the table holds a
moment later. Skipped when ``KIOSK_TEST_PG_URL`` is unset."""

from __future__ import annotations

import os
import threading

import pytest
import requests
from desk_support import desk_hub
from sqlalchemy import text
from test_hub_support import wait_until, waiting_for_a_lock, wipe_database

from hub.console.session import COOKIE

PG_URL = os.environ.get("KIOSK_TEST_PG_URL")
pytestmark = pytest.mark.skipif(not PG_URL, reason="KIOSK_TEST_PG_URL is not set (see .ci/postgres.sh)")


@pytest.fixture
def env(tmp_path):
    wipe_database(PG_URL)
    with desk_hub(tmp_path, PG_URL) as env:
        yield env


def test_a_login_with_the_old_password_racing_its_change_opens_no_session_that_outlives_it(env):
    """The attack: someone holding a user's old password (the one-time password of the first login, one
    seen over a shoulder) logs in while the user changes it. The login's password is checked against the
    old hash; the change commits; the session must be bound to the old hash, so it dies with it. Made
    deterministic by holding the throttle's table against writes: the login waits there after its
    password was checked and before its session is issued, and the password changes meanwhile."""
    old = env.passwords["racer"] = env.desk.add_user("racer", "viewer", None)
    s = requests.Session()
    s.get(f"{env.url}/console/login", timeout=5)
    csrf = s.cookies.get("kiosk_login_csrf")
    answers: list[requests.Response] = []
    login = threading.Thread(
        target=lambda: answers.append(
            s.post(
                f"{env.url}/console/login",
                data={"csrf": csrf, "name": "racer", "password": old},
                allow_redirects=False,
                timeout=30,
            )
        )
    )
    holder = env.store.engine.connect()
    transaction = holder.begin()
    try:
        login.start()

        def counted() -> bool:  # the attempt's failure rows committed (before the password is checked)
            with env.store.engine.connect() as conn:
                return conn.execute(text("SELECT count(*) FROM console_login_failures")).scalar() >= 2

        wait_until(counted, what="the login attempt counted")
        holder.execute(text("LOCK TABLE console_login_failures IN SHARE MODE"))  # reads pass, writes wait
        # The login's password checked, its attempt being taken back (a DELETE) before its session is made.
        wait_until(lambda: waiting_for_a_lock(holder), what="the checked login waiting to be taken back")
        env.desk.set_password("racer", "the-new-password-2026")  # the user's change, elsewhere
    finally:
        transaction.commit()
        holder.close()
        login.join(30)
    assert len(answers) == 1 and answers[0].status_code == 303, answers
    cookie = answers[0].cookies.get(COOKIE)
    assert cookie
    r = requests.get(
        f"{env.url}/console/password", cookies={COOKIE: cookie}, allow_redirects=False, timeout=5
    )
    assert (r.status_code, r.headers.get("location")) == (303, "/console/login")

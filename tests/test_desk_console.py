"""The console in a real browser (Playwright driving Debian's chromium, headless): the whole life of a
差评 as a section user and as a supervisor, a refused out-of-scope access, the number reveal and its audit,
an axe-core check of every page, and screenshots in docs/screenshots/console-*.png. Plus attacks on the
session (forged cookie, missing CSRF token, password guessing) over plain HTTP."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
import requests
from desk_support import PHONE, desk_hub

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
SCRATCH = Path(tempfile.gettempdir()) / f"kiosk-console-shots-{os.getpid()}"
NEW_PASSWORD = "新的密码-0123456789"

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


def _axe_source() -> str:
    import axe_playwright_python

    return (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    with desk_hub(tmp_path_factory.mktemp("console")) as env:
        env.item1 = env.bad_rating("W1", "370211202611280001")
        env.item2 = env.bad_rating("W2", "370211202611280002", satisfaction=2)
        yield env


def check_axe(page, name: str) -> None:
    """No serious or critical axe-core violation on the page (axe.min.js injected from the local package;
    the context bypasses the console's CSP, which allows no script at all)."""
    page.add_script_tag(content=_axe_source())
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{name}: {bad}"


def shot(page, name: str) -> None:
    """Each page as a PNG: into docs/screenshots/ with KIOSK_REFRESH_SCREENSHOTS=1, else a temporary
    folder (the pictures hold today's dates, so every run would change the stored ones)."""
    folder = SHOTS if os.environ.get("KIOSK_REFRESH_SCREENSHOTS") == "1" else SCRATCH
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"console-{name}.png"), full_page=True)


def login(context, env, user: str, *, first: bool = True):
    page = context.new_page()
    page.goto(f"{env.url}/console/login")
    page.fill("#name", user)
    page.fill("#password", env.passwords[user] if first else NEW_PASSWORD)
    page.click("button[type=submit]")
    if first:
        assert page.url.endswith("/console/password")
        page.fill("#current", env.passwords[user])
        page.fill("#new", NEW_PASSWORD)
        page.fill("#again", NEW_PASSWORD)
        page.click("main button[type=submit]")
        env.passwords[user] = NEW_PASSWORD
    return page


def test_dept_user_lifecycle_and_refused_access(browser, env):
    context = browser.new_context(bypass_csp=True, locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{env.url}/console/items")
    assert page.url.endswith("/console/login")  # no session: to the login
    check_axe(page, "login")
    shot(page, "login")
    page.close()

    page = context.new_page()
    page.goto(f"{env.url}/console/login")
    page.fill("#name", "d1")
    page.fill("#password", env.passwords["d1"])
    page.click("button[type=submit]")
    assert page.url.endswith("/console/password")
    check_axe(page, "password")
    shot(page, "password")
    page.goto(f"{env.url}/console/items")  # not before the password is changed
    assert page.url.endswith("/console/password")
    page.fill("#current", env.passwords["d1"])
    page.fill("#new", NEW_PASSWORD)
    page.fill("#again", NEW_PASSWORD)
    page.click("main button[type=submit]")
    env.passwords["d1"] = NEW_PASSWORD

    assert page.url.endswith("/console/items")
    rows = page.locator("tbody tr")
    assert rows.count() == 1 and "370211202611280001" in rows.first.inner_text()
    assert "370211202611280002" not in page.content() and PHONE not in page.content()
    check_axe(page, "items")
    shot(page, "items")

    page.goto(f"{env.url}/console/items/{env.item2}")  # another section's item
    assert "无权访问" in page.content() and "370211202611280002" not in page.content()
    response = page.goto(f"{env.url}/console/items?dept=D2")
    assert response.status == 403

    page.goto(f"{env.url}/console/items/{env.item1}")
    page.click("text=显示号码（回访）")
    assert PHONE in page.content()
    page.goto(f"{env.url}/console/items/{env.item1}")
    page.check("form.action >> input[name=reached][value='1']")
    page.fill("#note-callback", "已电话联系，说明情况")
    page.click("text=提交回访")
    page.fill("#note-rectify", "窗口人员业务培训")
    page.click("text=提交整改")
    check_axe(page, "item")
    shot(page, "item")
    page.fill("#note-close", "已向评价人反馈整改结果")
    page.click("text=提交办结反馈")
    assert "已办结" in page.locator("h1").inner_text()
    history = page.locator("table").last.inner_text()
    assert "回访" in history and "整改" in history and "办结反馈" in history and "查看号码" in history
    assert PHONE not in page.content()
    context.close()


def test_supervisor_review_audit_and_admin_pages(browser, env):
    context = browser.new_context(bypass_csp=True, locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = login(context, env, "d2")
    page.goto(f"{env.url}/console/items/{env.item2}")
    page.fill("#note-request_review", "工作人员称评价人误按")
    page.click("text=提交申请复核")
    page.check("form.action >> input[name=adopt][value='0']")
    page.fill("#note-review_opinion", "建议不予采纳")
    page.click("text=提交科室初审意见")
    assert page.locator("text=提交督查复核决定").count() == 0  # not a dept user's to decide
    context.close()

    context = browser.new_context(bypass_csp=True, locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = login(context, env, "sup")
    page.goto(f"{env.url}/console/reviews")
    assert f"#{env.item2}" in page.content()
    check_axe(page, "reviews")
    shot(page, "reviews")
    page.goto(f"{env.url}/console/items/{env.item2}")
    page.check("form.action >> input[name=adopt][value='0']")
    page.fill("#note-review_decide", "经核实不属实")
    page.click("text=提交督查复核决定")
    assert "不属实" in page.locator("h1").inner_text()

    late = env.bad_rating("W1", "370211202611280003")  # item1 is closed; this one goes overdue
    env.clock.advance(12)
    try:
        page.goto(f"{env.url}/console/items?overdue=1")
        assert f"#{late}" in page.content() and "督办" in page.content()
        check_axe(page, "overdue")
        shot(page, "overdue")
    finally:
        env.clock.advance(-12)

    page.goto(f"{env.url}/console/audit")
    audit = page.locator("tbody").inner_text()
    assert "d1" in audit and PHONE not in page.content()
    check_axe(page, "audit")
    shot(page, "audit")
    page.goto(f"{env.url}/console/settings")
    check_axe(page, "settings")
    shot(page, "settings")
    response = page.goto(f"{env.url}/console/users")
    assert response.status == 403
    context.close()

    context = browser.new_context(bypass_csp=True, locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = login(context, env, "admin")
    page.goto(f"{env.url}/console/users")
    page.fill("#s-code", "D3")
    page.fill("#s-name", "市场监管科")
    page.click("text=保存")
    assert "市场监管科" in page.content()
    check_axe(page, "users")
    shot(page, "users")
    assert page.goto(f"{env.url}/console/items").status == 403
    context.close()


def test_viewer_sees_no_items(browser, env):
    context = browser.new_context(bypass_csp=True, locale="zh-CN")
    page = login(context, env, "view")
    assert page.goto(f"{env.url}/console/items").status == 403
    assert page.goto(f"{env.url}/console/items/{env.item1}").status == 403
    assert "370211202611280001" not in page.content()
    context.close()


# --- attacks on the session, over plain HTTP --------------------------------------------------------


def _session(env, user: str) -> requests.Session:
    s = requests.Session()
    s.get(f"{env.url}/console/login", timeout=5)
    csrf = s.cookies.get("kiosk_login_csrf")
    r = s.post(
        f"{env.url}/console/login",
        data={"csrf": csrf, "name": user, "password": env.passwords[user]},
        allow_redirects=False,
        timeout=5,
    )
    assert r.status_code == 303, r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    if r.headers["location"] == "/console/password":  # first login: set a password of one's own
        page = s.get(f"{env.url}/console/password", timeout=5).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        current = env.passwords[user]
        form = {"csrf": csrf, "current": current, "new": NEW_PASSWORD, "again": NEW_PASSWORD}
        assert (
            s.post(f"{env.url}/console/password", data=form, allow_redirects=False, timeout=5).status_code
            == 303
        )
        env.passwords[user] = NEW_PASSWORD
    return s


def test_a_form_without_the_csrf_token_is_refused(env):
    s = _session(env, "sup")
    r = s.post(f"{env.url}/console/items/{env.item1}/contact", data={}, timeout=5)
    assert r.status_code == 403 and PHONE not in r.text
    r = s.post(f"{env.url}/console/items/{env.item1}/contact", data={"csrf": "forged"}, timeout=5)
    assert r.status_code == 403


def test_a_forged_or_altered_cookie_is_no_session(env):
    s = _session(env, "d2")
    cookie = s.cookies.get("kiosk_console")
    data, _, mac = cookie.rpartition(".")
    import base64
    import json

    fields = json.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
    fields["u"] = "sup"
    forged = base64.urlsafe_b64encode(json.dumps(fields).encode()).rstrip(b"=").decode() + "." + mac
    r = requests.get(
        f"{env.url}/console/items", cookies={"kiosk_console": forged}, allow_redirects=False, timeout=5
    )
    assert r.status_code == 303 and r.headers["location"] == "/console/login"


def test_a_stolen_cookie_dies_when_its_user_changes_the_password(env):
    """The attack: a session cookie copied off a shared office PC. Changing the password (here, on
    another browser) ends every session opened with the old one; the changer's own goes on."""
    env.passwords["view2"] = env.desk.add_user("view2", "viewer", None)
    victim = _session(env, "view2")
    stolen = victim.cookies.get("kiosk_console")

    def with_stolen() -> tuple[int, str | None]:
        r = requests.get(
            f"{env.url}/console/overview", cookies={"kiosk_console": stolen}, allow_redirects=False, timeout=5
        )
        return r.status_code, r.headers.get("location")

    assert with_stolen() == (200, None)
    other_browser = _session(env, "view2")
    page = other_browser.get(f"{env.url}/console/password", timeout=5).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    renewed = "另一个新密码-2026-long"
    form = {"csrf": csrf, "current": env.passwords["view2"], "new": renewed, "again": renewed}
    answer = other_browser.post(f"{env.url}/console/password", data=form, allow_redirects=False, timeout=5)
    assert answer.status_code == 303
    env.passwords["view2"] = renewed
    assert with_stolen() == (303, "/console/login")
    assert victim.get(f"{env.url}/console/overview", allow_redirects=False, timeout=5).status_code == 303
    assert (
        other_browser.get(f"{env.url}/console/overview", allow_redirects=False, timeout=5).status_code == 200
    )


def test_password_guessing_is_throttled(env):
    s = requests.Session()
    s.get(f"{env.url}/console/login", timeout=5)
    csrf = s.cookies.get("kiosk_login_csrf")
    codes = [
        s.post(
            f"{env.url}/console/login", data={"csrf": csrf, "name": "d1", "password": f"guess{i}"}, timeout=5
        ).status_code
        for i in range(7)
    ]
    assert codes[:5] == [401] * 5 and codes[5:] == [429, 429]
    right = s.post(
        f"{env.url}/console/login",
        data={"csrf": csrf, "name": "d1", "password": env.passwords["d1"]},
        allow_redirects=False,
        timeout=5,
    )
    assert right.status_code == 429  # even the right password waits out the window


def test_a_dept_user_cannot_post_to_another_sections_item(env):
    env.passwords["d1b"] = env.desk.add_user("d1b", "dept", "D1")  # d1 is locked out by the guessing test
    s = _session(env, "d1b")
    page = s.get(f"{env.url}/console/items", timeout=5).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    before = len(env.desk.audit())
    reveal = s.post(f"{env.url}/console/items/{env.item2}/contact", data={"csrf": csrf}, timeout=5)
    assert reveal.status_code == 403 and PHONE not in reveal.text
    act = s.post(
        f"{env.url}/console/items/{env.item2}/actions",
        data={"csrf": csrf, "action": "callback", "reached": "1"},
        timeout=5,
    )
    assert act.status_code == 403
    assert len(env.desk.audit()) == before
    assert s.get(f"{env.url}/console/reviews", timeout=5).text.count("370211202611280002") == 0


def test_the_console_export_is_scoped(env):
    s = _session(env, "d2")
    csv_text = s.get(f"{env.url}/console/items.csv", timeout=5).text
    assert "370211202611280002" in csv_text and "370211202611280001" not in csv_text and PHONE not in csv_text
    assert s.get(f"{env.url}/console/items.csv?dept=D1", timeout=5).status_code == 403
    viewer = _session(env, "view")
    assert viewer.get(f"{env.url}/console/items.csv", timeout=5).status_code == 403

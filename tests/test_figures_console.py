"""The console's figures pages in a real browser (Playwright driving Debian's chromium): 总览 with its
drill-down section → window → staff → 事项, role scope, the 通报 downloads, the quarterly sample drawn and
a call recorded; axe-core on each page; 总览 at 1920×1080 in docs/screenshots/."""

from __future__ import annotations

import shutil
from pathlib import Path

import figures_data as data
import pytest
from test_figures_api import Env
from test_figures_screen import shots_folder

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "figures-test-0123456789"
playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


def _axe_source() -> str:
    import axe_playwright_python

    return (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text(encoding="utf-8")


def check_axe(page, name: str) -> None:
    page.add_script_tag(content=_axe_source())
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    bad = [
        (v["id"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{name}: {bad}"


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


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    e.decide()
    for name in ("sup", "da", "view"):
        e.desk.set_password(name, PASSWORD)
    yield e
    e.hub.stop()
    e.store.close()


def login(browser, env, user: str):
    context = browser.new_context(bypass_csp=True, locale="zh-CN", viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    page.goto(f"{env.hub.url}/console/login")
    page.fill("#name", user)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    return context, page


def test_overview_drill_down_and_screenshot(browser, env):
    context, page = login(browser, env, "sup")
    page.goto(f"{env.hub.url}/console/overview?month=2026-11")
    assert "总览 · 2026年11月" in page.inner_text("h1")
    tiles = page.inner_text("section[aria-label=本月]")
    assert "7" in tiles and "60.0%" in tiles and "85.7%" in tiles  # services, 满意率 3/5, 参评率 6/7
    assert page.locator("svg").count() >= 3  # two trends and the bars, drawn on the server
    check_axe(page, "overview")
    page.screenshot(path=str(shots_folder() / "figures-overview.png"), full_page=False)
    page.click("#drill a:has-text('企业服务科')")
    assert "03号窗口" in page.inner_text("#drill")
    page.click("#drill a:has-text('03号窗口')")
    page.click("#drill a:has-text('王晓燕')")
    rows = page.inner_text("#drill")
    assert "企业设立登记" in rows and "社保卡补办" in rows and "未关联事项" in rows
    assert "王晓燕" in page.inner_text("nav.crumbs")
    context.close()


def test_a_dept_user_sees_its_own_section(browser, env):
    context, page = login(browser, env, "da")
    page.goto(f"{env.hub.url}/console/overview?month=2026-11")
    body = page.inner_text("main")
    assert "03号窗口" in body and "05号窗口" not in body and "李强" not in body
    response = page.goto(f"{env.hub.url}/console/overview?dept={data.DEPT_B}")
    assert response.status == 403
    context.close()


def test_reports_page_and_downloads(browser, env):
    context, page = login(browser, env, "sup")
    page.goto(f"{env.hub.url}/console/reports")
    check_axe(page, "reports")
    page.select_option("#r-period", "2026-11")
    with page.expect_download() as got:
        page.click("main button[type=submit]")
    path = got.value.path()
    assert Path(path).read_bytes().startswith(b"%PDF")
    xlsx = context.request.get(f"{env.hub.url}/console/reports/file?period=2026Q4&format=xlsx&public=1")
    assert xlsx.status == 200 and xlsx.body()[:2] == b"PK"
    context.close()
    context, page = login(browser, env, "view")  # a viewer gets the public version whatever it asks
    html = context.request.get(f"{env.hub.url}/console/reports/file?period=2026-11&format=html&public=0")
    assert html.status == 200 and "公开" in html.text() and "王晓燕" not in html.text()
    context.close()


def test_sample_drawn_and_a_call_recorded(browser, env):
    context, page = login(browser, env, "sup")
    page.goto(f"{env.hub.url}/console/sample?quarter=2026Q4")
    page.click("text=抽取 2026Q4 样本")
    assert "随机种子" in page.inner_text("main")
    check_axe(page, "sample")
    context.close()
    context, page = login(browser, env, "da")
    page.goto(f"{env.hub.url}/console/sample?quarter=2026Q4")
    forms = page.locator("form.call")
    if forms.count():
        form = forms.first
        form.locator("input[name=reached][value='1']").check()
        form.locator("input[name=satisfied][value='1']").check()
        form.locator("input[name=comment]").fill("满意，希望增加自助机")
        form.locator("button").click()
        assert "回访结果已记录" in page.inner_text("main")
        assert "已接通，满意（满意，希望增加自助机）" in page.inner_text("main table")
    context.close()

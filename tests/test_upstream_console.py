"""The console's 上报省平台 page in a real browser (Debian's chromium through Playwright): counts, the daily
reconciliation, failing records with their last error, refused ones with the province's message and the
supervisor's resend form; an admin reads it without actions; a section user is refused."""

from __future__ import annotations

import pytest
import requests
from desk_support import desk_hub
from test_desk_console import CHROMIUM, NEW_PASSWORD, check_axe, login, shot  # noqa: F401
from test_hub_support import DEVICE, rating_payload
from upstream_support import AREA, DEPT, KEY, add_window_ratings, make_sender, statuses

from core.store import EventLog
from hub.upstream.standin import StandinProvince

playwright_api = pytest.importorskip("playwright.sync_api")
from test_desk_console import browser  # noqa: E402,F401  (the module's fixture)


def test_the_upstream_page(browser, tmp_path):  # noqa: F811
    with desk_hub(tmp_path) as env:
        store = env.store
        store.add_device(DEVICE, area_code=AREA, dept_code=DEPT)
        add_window_ratings(store, tmp_path, 6, seed=21)
        add_window_ratings(store, tmp_path, 1, seed=22, start=300, item_code="UNKNOWN-ITEM")
        with EventLog(tmp_path / "walkin.db") as log:
            log.append("rating", rating_payload(1, case_no=None, satisfaction=4))
            store.ingest(DEVICE, log.log_id, list(log.events_after(0)))
        with StandinProvince(
            "json-v1", key=KEY, app="APPMARK-TEST", reject_task_codes=("UNKNOWN-ITEM",)
        ) as p:
            make_sender(store, "json-v1", p.url).drain(10)
            add_window_ratings(store, tmp_path, 2, seed=23, start=400)
            make_sender(store, "json-v1", "http://127.0.0.1:9/report", timeout_s=0.5).send_once()  # refused
            assert statuses(store) == {"sent": 6, "rejected": 1, "needs_linkage": 1, "failing": 2}
            context = browser.new_context(
                bypass_csp=True, locale="zh-CN", viewport={"width": 1280, "height": 900}
            )
            page = login(context, env, "sup")
            page.goto(f"{env.url}/console/upstream")
            text = page.inner_text("main")
            assert (
                "每日对账" in text
                and "不在事项目录中" in text
                and "Connection" in text
                and "projectNo" in text
            )
            check_axe(page, "upstream")
            shot(page, "upstream")
            p.reject_task_codes.clear()
            page.fill("form[action$='/resend'] input[name=note]", "事项已入目录")
            page.click("form[action$='/resend'] button[type=submit]")
            assert "已重新排队上报" in page.inner_text("main")
            make_sender(store, "json-v1", p.url).drain(10)
            assert statuses(store)["sent"] == 9
            context.close()
        context = browser.new_context(bypass_csp=True, locale="zh-CN")
        page = login(context, env, "admin")
        page.goto(f"{env.url}/console/upstream")
        assert "每日对账" in page.inner_text("main") and page.locator("form[action$='/resend']").count() == 0
        page = login(context, env, "d1")
        answer = page.goto(f"{env.url}/console/upstream")
        assert answer.status == 403
        context.close()
        # The resend form without its CSRF token is refused, and changes nothing.
        forged = requests.post(
            f"{env.url}/console/upstream/1/resend", data={"note": "x"}, timeout=5, allow_redirects=False
        )
        assert forged.status_code in (303, 403)

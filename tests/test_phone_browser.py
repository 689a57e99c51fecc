"""The phone rating page in a real browser (Debian's chromium, Playwright; tests/browser.py) at phone
sizes: with and without JavaScript, at 200% zoom and with a larger browser font, double taps on a slow
network, errors in view on a small screen, and axe-core on every state (no serious or critical
violation). The pictures go to $KIOSK_SCREENSHOTS_OUT when it is set (docs/screenshots/phone-*.png:
``KIOSK_SCREENSHOTS_OUT=docs/screenshots ./dev test tests/test_phone_browser.py``), else to a
temporary folder."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

import pytest
from browser import (
    PHONE,
    SMALL_PHONE,
    DelayingProxy,
    axe_violations,
    axe_violations_without_script,
    contrast_ratio,
    set_default_font_size,
)
from sqlalchemy import select
from test_hub_support import DEVICE, qr_token, register, thread_hub, upload_case, wait_until

from hub.config import HubConfig, ServerConfig
from hub.schema import phone_ratings

HALL = "青岛西海岸新区政务服务大厅"
CASE_WITH_ITEM = "370211202611300012"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with thread_hub(tmp_path_factory.mktemp("hub"), config=HubConfig(server=ServerConfig(hall=HALL))) as h:
        h.secret = register(h.store, area_code="370211")
        upload_case(h.url, h.secret, tmp_path_factory.mktemp("kiosk") / "kiosk.db", CASE_WITH_ITEM)
        h.next_case = 100
        yield h


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    out = os.environ.get("KIOSK_SCREENSHOTS_OUT")
    folder = Path(out) if out else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def new_case(hub) -> str:
    hub.next_case += 1
    return f"37021120261130{hub.next_case:04d}"


def rows(hub, case_no: str) -> list[dict]:
    query = select(phone_ratings).where(
        (phone_ratings.c.device_id == DEVICE) & (phone_ratings.c.case_no == case_no)
    )
    with hub.store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def assert_axe_clean(page, state: str, *, javascript: bool = True) -> None:
    found = axe_violations(page) if javascript else axe_violations_without_script(page)
    assert found == [], f"{state}: {found}"


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def in_view(page, selector: str, *, whole: bool = False) -> bool:
    """Whether the element's top (or all of it) is inside the viewport now."""
    box = page.evaluate(
        "s => { const r = document.querySelector(s).getBoundingClientRect();"
        " return [r.top, r.bottom, innerHeight]; }",
        selector,
    )
    top, bottom, height = box
    return top >= -1 and (bottom <= height + 1 if whole else top < height)  # -1: subpixel rounding


def pseudo(page, selector: str, which: str, prop: str) -> str:
    return page.evaluate(
        "([s, w, p]) => getComputedStyle(document.querySelector(s), w).getPropertyValue(p)",
        [selector, which, prop],
    )


def style(page, selector: str, prop: str) -> str:
    return pseudo(page, selector, "", prop)


def size_name(viewport: dict) -> str:
    return f"{viewport['width']}x{viewport['height']}"


@pytest.mark.parametrize("viewport", [PHONE, SMALL_PHONE], ids=size_name)
def test_the_form_at_phone_sizes_is_one_small_request_and_axe_clean(hub, browser_page, shots, viewport):
    page = browser_page(**viewport)
    requests_made = []
    page.on("request", lambda r: requests_made.append(r.url))
    response = page.goto(f"{hub.url}/q/{qr_token(hub.secret, CASE_WITH_ITEM)}")
    assert response.status == 200 and len(response.body()) < 9000
    assert requests_made == [response.url]  # no favicon, font, script or style fetched: one request
    assert page.locator(".place").inner_text() == f"{HALL} · 03 号窗口"
    assert page.get_by_role("group", name="您对本次服务满意吗？").is_visible()
    assert no_horizontal_scroll(page)
    assert_axe_clean(page, "form")
    page.screenshot(path=shots / f"phone-form-{size_name(viewport)}.png", full_page=True)


def test_the_masked_case_number_has_a_spoken_label(hub, browser_page):
    page = browser_page(**PHONE)
    page.goto(f"{hub.url}/q/{qr_token(hub.secret, CASE_WITH_ITEM)}")
    spoken = page.locator(".case").aria_snapshot()
    assert "尾号0012" in spoken and "*" not in spoken
    assert page.locator(".case").inner_text().count("3702**********0012") == 1


def test_a_choice_is_shown_by_a_mark_and_words_and_focus_is_visible(hub, browser_page, shots):
    page = browser_page(**PHONE)
    page.goto(f"{hub.url}/q/{qr_token(hub.secret, new_case(hub))}")
    # Keyboard: Tab reaches the first level, whose button shows a focus ring.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "s5"
    assert style(page, "label[for=s5]", "outline-style") == "solid"
    assert float(style(page, "label[for=s5]", "outline-width").removesuffix("px")) >= 3
    page.keyboard.press("ArrowDown")  # moves to 满意 and chooses it, as on any radio group
    assert page.evaluate("document.activeElement.id") == "s4" and page.is_checked("#s4")
    assert "✓" in pseudo(page, "label[for=s4]", "::before", "content")
    assert "已选" in pseudo(page, "label[for=s4]", "::after", "content")
    assert pseudo(page, "label[for=s5]", "::after", "content") in ("none", "normal")
    page.screenshot(path=shots / "phone-chosen-390x844.png")
    # Levels are round choices, reasons square boxes: they do not look alike.
    page.click("label[for=s1]")
    assert pseudo(page, "label[for=s1]", "::before", "border-radius") == "50%"
    assert pseudo(page, "label[for=r201]", "::before", "border-radius") != "50%"
    page.click("label[for=r201]")
    assert page.is_checked("#r201") and "已选" in pseudo(page, "label[for=r201]", "::after", "content")
    assert page.get_by_role("group", name="请选择不满意的原因（可多选，至少一项）").is_visible()
    assert_axe_clean(page, "chosen")


def test_borders_and_marks_have_3_to_1_against_what_is_around_them(hub, browser_page):
    page = browser_page(**PHONE)
    page.goto(f"{hub.url}/q/{qr_token(hub.secret, new_case(hub))}")
    page.click("label[for=s2]")
    page.click("label[for=r101]")
    page_bg = style(page, "body", "background-color")
    white = "rgb(255, 255, 255)"
    checks = {
        "level border": (style(page, "label[for=s5]", "border-top-color"), [white, page_bg]),
        "level circle": (pseudo(page, "label[for=s5]", "::before", "border-top-color"), [white]),
        "reason border": (style(page, "label[for=r102]", "border-top-color"), [white]),
        "reason square": (pseudo(page, "label[for=r102]", "::before", "border-top-color"), [white]),
        "phone field": (style(page, "#phone", "border-top-color"), [white, page_bg]),
        "chosen level": (style(page, "label[for=s2]", "border-top-color"), [page_bg]),
        "chosen reason": (pseudo(page, "label[for=r101]", "::before", "background-color"), [white]),
        "submit button": (style(page, "button", "background-color"), [page_bg]),
        "focus ring": ("rgb(11, 79, 156)", [page_bg, white]),
    }
    for what, (color, around) in checks.items():
        for background in around:
            assert contrast_ratio(color, background) >= 3, (what, color, background)


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_on_a_small_phone_the_reasons_and_errors_stay_in_view(hub, browser_page, shots, javascript):
    page = browser_page(**SMALL_PHONE, javascript=javascript)
    case_no = new_case(hub)
    page.goto(f"{hub.url}/q/{qr_token(hub.secret, case_no)}")
    page.click("label[for=s2]")
    assert page.is_visible("#reasons")
    if javascript:  # the page brings the reasons up under the chosen level
        wait_until(lambda: in_view(page, "label[for=r101]", whole=True), what="the first reason in view")
    assert in_view(page, "#reasons legend")
    suffix = "" if javascript else "-nojs"
    page.screenshot(path=shots / f"phone-reasons-360x640{suffix}.png")
    assert_axe_clean(page, "reasons", javascript=javascript)
    # 提交评价 without a reason: the hub's message shows beside the reasons, in view.
    page.click("button")
    page.wait_for_selector("#err-reason")
    assert page.url.endswith("#problem")
    assert in_view(page, "#err-reason", whole=True) and in_view(page, "label[for=r101]")
    assert page.is_checked("#s2")
    page.screenshot(path=shots / f"phone-error-reason-360x640{suffix}.png")
    assert_axe_clean(page, "reason missing", javascript=javascript)
    # A wrong phone number: the message beside the field, in view; what was typed is kept.
    page.click("label[for=r201]")
    page.fill("#phone", "138 1234 567")
    page.click("button")
    page.wait_for_selector("#err-phone")
    assert in_view(page, "#err-phone", whole=True) and in_view(page, "#phone", whole=True)
    assert page.input_value("#phone") == "138 1234 567" and page.is_checked("#r201")
    page.screenshot(path=shots / f"phone-error-phone-360x640{suffix}.png")
    assert_axe_clean(page, "phone wrong", javascript=javascript)
    # Full-width digits, as some Chinese keyboards type them: stored as ASCII.
    page.fill("#phone", "１３８ １２３４ ５６７８")
    page.click("button")
    page.wait_for_selector("h1:has-text('评价成功')")
    assert page.url.split("#")[0].endswith("/q/" + page.url.split("/q/")[1].split("#")[0])
    (row,) = rows(hub, case_no)
    assert row["satisfaction"] == 2 and row["reasons"] == "201" and row["contact_sealed"]


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
@pytest.mark.parametrize("latency_s", [0.3, 1.5])
def test_a_double_tap_on_a_slow_network_says_done_and_stores_one(
    hub, browser_page, shots, javascript, latency_s
):
    proxy = DelayingProxy(hub.port, delay_s=0)
    try:
        page = browser_page(**PHONE, javascript=javascript)
        posts = []
        page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
        case_no = new_case(hub)
        page.goto(f"{proxy.url}/q/{qr_token(hub.secret, case_no)}")
        page.click("label[for=s4]")
        proxy.delay_s = latency_s / 2  # each way
        box = page.locator("button").bounding_box()
        # What the form shows just after the tap, noted by the page itself: Playwright's own calls
        # wait while the page navigates, and this outlives the navigation.
        page.evaluate(
            """() => { const f = document.getElementById('rate'), b = f.querySelector('button');
            f.addEventListener('submit', () => setTimeout(() => sessionStorage.setItem('shown', JSON.stringify(
                [b.textContent, b.disabled, document.getElementById('sending').textContent])), 50)); }"""
        )
        cdp = page.context.new_cdp_session(page)
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.click(x, y)
        page.wait_for_timeout(120)  # a thumb's double tap
        page.mouse.click(x, y)
        if javascript and latency_s > 1:
            picture = cdp.send("Page.captureScreenshot", {"format": "png"})["data"]
            (shots / "phone-sending-390x844.png").write_bytes(base64.b64decode(picture))
        page.wait_for_selector("h1:has-text('评价成功')", timeout=20_000)
        assert "您已完成评价" in page.inner_text("main") and "该办件已评价" not in page.content()
        if javascript:  # it said it was sending, and the second tap sent nothing
            shown = page.evaluate("JSON.parse(sessionStorage.getItem('shown'))")
            assert shown == ["正在提交…", True, "正在提交，请稍候"] and len(posts) == 1
        elif latency_s > 1:  # each tap sent the form; the hub answered both with the result page
            assert len(posts) == 2
        assert len(rows(hub, case_no)) == 1
        assert_axe_clean(page, "done", javascript=javascript)
        # A refresh, and Back: still 评价成功, never a second rating or 该办件已评价.
        page.reload()
        assert page.inner_text("h1").endswith("评价成功")
        page.go_back()
        page.wait_for_selector("h1")
        assert page.inner_text("h1").endswith("评价成功")
        assert len(rows(hub, case_no)) == 1
        if latency_s > 1 and javascript:
            page.screenshot(path=shots / "phone-done-390x844.png")
    finally:
        proxy.close()


def test_at_200_percent_zoom_nothing_overflows(hub, browser_page, shots):
    """200% zoom on a 390-px-wide phone lays the page out 195 CSS pixels wide."""
    page = browser_page(width=PHONE["width"] // 2, height=PHONE["height"] // 2, device_scale_factor=2)
    page.goto(f"{hub.url}/q/{qr_token(hub.secret, CASE_WITH_ITEM)}")
    assert no_horizontal_scroll(page)
    box = page.locator(".case dd").nth(1).bounding_box()
    assert box["x"] + box["width"] <= PHONE["width"] // 2
    page.screenshot(path=shots / "phone-zoom200-390x844.png")
    page.click("label[for=s1]")
    assert no_horizontal_scroll(page)
    assert_axe_clean(page, "zoom 200%")


def test_a_larger_browser_font_makes_the_text_larger(hub, browser_page, shots):
    page = browser_page(**PHONE)
    set_default_font_size(page, 32)  # twice the default 16 px
    page.goto(f"{hub.url}/q/{qr_token(hub.secret, CASE_WITH_ITEM)}")
    assert style(page, "body", "font-size") == "36px"  # 1.125rem
    assert float(style(page, "label[for=s5]", "font-size").removesuffix("px")) >= 40
    assert no_horizontal_scroll(page)
    page.screenshot(path=shots / "phone-large-font-390x844.png")


def test_a_code_that_expires_while_the_form_is_open(hub, browser_page, shots):
    page = browser_page(**SMALL_PHONE, javascript=False)
    issued_at = int(time.time())
    case_no = new_case(hub)
    page.goto(f"{hub.url}/q/{qr_token(hub.secret, case_no, issued_at=issued_at, ttl_s=2)}")
    page.click("label[for=s1]")
    page.click("label[for=r202]")
    page.fill("#phone", "13812345678")
    wait_until(lambda: time.time() >= issued_at + 2, what="the code to expire")
    page.click("button")
    page.wait_for_selector(".notice")
    assert "二维码已过期" in page.inner_text("#problem") and in_view(page, "#problem", whole=True)
    assert page.is_checked("#s1") and page.is_checked("#r202") and page.input_value("#phone") == "13812345678"
    assert page.locator("button").count() == 0 and rows(hub, case_no) == []
    page.screenshot(path=shots / "phone-expired-while-open-360x640.png")
    assert_axe_clean(page, "expired while open", javascript=False)
    # The staff show the case again; the new code's page has the choices (not the phone number).
    page.goto(f"{hub.url}/q/{qr_token(hub.secret, case_no)}")
    assert page.is_checked("#s1") and page.is_checked("#r202") and page.input_value("#phone") == ""
    assert "已带入您上次的选择" in page.inner_text("main")
    page.screenshot(path=shots / "phone-kept-choice-360x640.png")
    assert_axe_clean(page, "kept choice", javascript=False)
    page.click("button")
    page.wait_for_selector("h1:has-text('评价成功')")
    (row,) = rows(hub, case_no)
    assert row["satisfaction"] == 1 and row["reasons"] == "202" and row["contact_sealed"] is None
    assert page.context.cookies() == []  # done with


MESSAGE_PAGES = {
    "already-rated": (lambda h: f"/q/{qr_token(h.secret, CASE_WITH_ITEM)}", 409, "该办件已评价"),
    "invalid": (lambda h: "/q/not-a-token", 400, "二维码无效"),
    "code-expired": (
        lambda h: f"/q/{qr_token(h.secret, 'X1', issued_at=int(time.time()) - 700)}",
        410,
        "已过期",
    ),
    "not-found": (lambda h: "/q/", 404, "页面不存在"),
}


@pytest.mark.parametrize("name", MESSAGE_PAGES)
def test_message_pages_are_chinese_and_axe_clean(hub, browser_page, shots, name):
    make, status, words = MESSAGE_PAGES[name]
    if name == "already-rated":
        token = qr_token(hub.secret, CASE_WITH_ITEM)
        page = browser_page(**PHONE)
        page.goto(f"{hub.url}/q/{token}")
        if page.locator("button").count():  # rate it once with another code first
            page.click("label[for=s5]")
            page.click("button")
            page.wait_for_selector("h1:has-text('评价成功')")
    page = browser_page(**PHONE)
    response = page.goto(hub.url + make(hub))
    assert response.status == status and words in page.inner_text("h1")
    assert no_horizontal_scroll(page)
    assert_axe_clean(page, name)
    page.screenshot(path=shots / f"phone-{name}-390x844.png")

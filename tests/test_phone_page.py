"""The phone page's answers over HTTP, on a hub served on 127.0.0.1: phone numbers as citizens type
them, Chinese pages for every error under /q/ (404, 405, 500 included), a code that expires while the
form is open, the hall named, the page's weight. The same page in a real browser:
tests/test_phone_browser.py."""

from __future__ import annotations

import time

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, text
from test_hub_support import ADMIN_TOKEN, DEVICE, qr_token, register, thread_hub, upload_case, wait_until

from core.contact import seal_contact, valid_phone
from hub.config import HubConfig, ServerConfig
from hub.qrpage import FormError, RatingForm, complete_rating, normalize_phone, spoken_case_no
from hub.schema import phone_ratings

HALL = "青岛西海岸新区政务服务大厅"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with thread_hub(tmp_path_factory.mktemp("hub"), config=HubConfig(server=ServerConfig(hall=HALL))) as h:
        h.secret = register(h.store, area_code="370211")
        yield h


def post(hub, token: str, body: dict | str) -> requests.Response:
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if isinstance(body, str) else {}
    return requests.post(
        f"{hub.url}/q/{token}", data=body, headers=headers, timeout=10, allow_redirects=False
    )


def exported_contact(hub, case_no: str) -> str | None:
    body = requests.get(
        f"{hub.url}/api/v1/ratings", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
    ).json()
    (record,) = [r for r in body["ratings"] if r["projectNo"] == case_no]
    return record["contact"]


def stored_rows(hub, case_no: str) -> list[dict]:
    query = select(phone_ratings).where(
        (phone_ratings.c.device_id == DEVICE) & (phone_ratings.c.case_no == case_no)
    )
    with hub.store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


TYPED_PHONES = {
    "full-width digits": "13８１２３４５６７８",
    "all full-width": "１３８１２３４５６７８",
    "spaces": "138 1234 5678",
    "dashes": "138-1234-5678",
    "+86": "+86 138 1234 5678",
    "full-width +86": "＋８６－１３８－１２３４－５６７８",
    "0086": "0086 13812345678",
    "ideographic space": "138\u30001234\u30005678",
}


@pytest.mark.parametrize("why", TYPED_PHONES)
def test_a_phone_number_typed_as_people_type_it_is_stored_as_11_ascii_digits(hub, why):
    """Full-width digits were a 500 (the pattern took any Unicode digit, sealing encoded ASCII)."""
    case_no = f"37021120261129{list(TYPED_PHONES).index(why):04d}"
    token = qr_token(hub.secret, case_no)
    r = post(hub, token, {"satisfaction": "4", "phone": TYPED_PHONES[why]})
    assert r.status_code == 303, r.text
    assert exported_contact(hub, case_no) == "13812345678"


REFUSED_PHONES = {
    "Arabic-Indic digits": "١٣٨١٢٣٤٥٦٧٨",
    "Devanagari digits": "१३८१२३४५६७८",
    "ten digits": "1381234567",
    "a landline": "0532-8888-8888",
    "letters": "138abcd5678",
    "+1": "+1 138 1234 5678",
}


@pytest.mark.parametrize("why", REFUSED_PHONES)
def test_a_phone_number_that_is_not_a_mobile_gets_the_hubs_chinese_message(hub, why):
    case_no = f"37021120261129{50 + list(REFUSED_PHONES).index(why):04d}"
    typed = REFUSED_PHONES[why]
    r = post(hub, qr_token(hub.secret, case_no), {"satisfaction": "4", "phone": typed})
    assert r.status_code == 400 and "手机号码格式不正确" in r.text
    # What was typed comes back as typed, beside the message, and the level stays chosen.
    assert f'value="{typed}"' in r.text and 'value="4" id="s4" checked' in r.text
    assert 'id="err-phone"' in r.text and 'aria-invalid="true"' in r.text
    assert stored_rows(hub, case_no) == []


def test_the_phone_field_does_not_cut_or_pattern_what_is_typed(hub):
    r = requests.get(f"{hub.url}/q/{qr_token(hub.secret, '370211202611290100')}", timeout=10)
    assert "maxlength" not in r.text and "pattern=" not in r.text and " novalidate" in r.text
    assert 'type="tel"' in r.text and " required" not in r.text


@given(st.text(max_size=32))
def test_any_typed_phone_is_a_form_error_or_11_sealable_ascii_digits(typed):
    form = RatingForm(5, (), typed.strip() or None)
    try:
        rating = complete_rating(form)
    except FormError as e:
        assert not e.hostile and set(e.problems) == {"phone"}
        return
    assert rating.phone is None or (valid_phone(rating.phone) and rating.phone.isascii())
    if rating.phone:
        from nacl.public import PrivateKey

        seal_contact(rating.phone, PrivateKey.generate().public_key)


def test_normalize_phone_keeps_what_it_does_not_understand():
    assert normalize_phone("＋８６ １３８-１２３４-５６７８") == "13812345678"
    assert normalize_phone("86 13812345678") == "8613812345678"  # not a prefix we guess at
    assert normalize_phone("١٣٨") == "١٣٨"


def test_every_problem_is_named_beside_its_field(hub):
    r = post(hub, qr_token(hub.secret, "370211202611290101"), {"phone": "12"})
    assert r.status_code == 400
    assert 'id="err-satisfaction"' in r.text and "请选择您的评价" in r.text
    assert 'id="err-phone"' in r.text
    # The form's action ends in #problem and the first problem carries that id: without any script
    # the browser scrolls to it (tests/test_phone_browser.py shows it in view on 360×640).
    assert 'action="#problem"' in r.text and r.text.count('id="problem"') == 1
    assert r.text.index('id="problem"') < r.text.index("err-satisfaction")


@pytest.mark.parametrize(
    ("method", "path", "status", "words"),
    [
        ("GET", "/q/", 404, "页面不存在"),
        ("GET", "/q", 404, "页面不存在"),
        ("GET", "/q/a/b", 404, "页面不存在"),
        ("PUT", "/q/abc", 405, "无法处理此请求"),
        ("DELETE", "/q/abc", 405, "无法处理此请求"),
    ],
)
def test_errors_under_q_are_chinese_pages_not_json(hub, method, path, status, words):
    r = requests.request(method, f"{hub.url}{path}", timeout=10)
    assert r.status_code == status and r.headers["Content-Type"].startswith("text/html")
    assert words in r.text and '<html lang="zh-CN">' in r.text and "{" not in r.text.split("<style>")[0]
    assert r.headers["Cache-Control"] == "no-store"
    # The API keeps answering JSON.
    api = requests.get(f"{hub.url}/api/v1/nothing", timeout=10)
    assert api.status_code == 404 and api.json() == {"error": "Not Found"}


def test_a_server_error_under_q_is_a_chinese_page(tmp_path):
    """A real fault: the table the rating goes into is gone."""
    with thread_hub(tmp_path) as h:
        secret = register(h.store)
        with h.store.engine.begin() as conn:
            conn.execute(text("DROP TABLE phone_ratings"))
        r = post(h, qr_token(secret, "370211202611290102"), {"satisfaction": "5"})
        assert r.status_code == 500 and r.headers["Content-Type"].startswith("text/html")
        assert "暂时无法提交" in r.text and "您的评价可能没有保存" in r.text and "Traceback" not in r.text


def test_a_code_that_expires_while_the_form_is_open_keeps_the_choices(hub):
    case_no = "370211202611290103"
    token = qr_token(hub.secret, case_no, issued_at=int(time.time()) - 601)  # ttl 600 s, just gone
    r = post(hub, token, {"satisfaction": "2", "reason": ["201", "203"], "phone": "138 1234 5678"})
    assert r.status_code == 410 and "二维码已过期" in r.text and "重新扫描" in r.text
    assert 'value="2" id="s2" checked' in r.text
    assert 'value="201" id="r201" checked' in r.text and 'value="203" id="r203" checked' in r.text
    assert 'value="138 1234 5678"' in r.text and "提交评价</button>" not in r.text
    assert stored_rows(hub, case_no) == []
    # A hostile body with an expired code is still just the expired page.
    assert post(hub, token, "satisfaction=9").status_code == 410


def test_choices_of_an_expired_code_come_back_with_the_next_code_of_the_case(hub):
    """The window staff show the case again; the citizen scans the new code: the choices are there."""
    case_no = "370211202611290109"
    late = qr_token(hub.secret, case_no, issued_at=int(time.time()) - 601)
    r = post(hub, late, {"satisfaction": "1", "reason": ["202", "901"], "phone": "13812345678"})
    assert r.status_code == 410
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("q_kept=v1.") and "Max-Age=1800" in cookie and "HttpOnly" in cookie
    assert "Path=" not in cookie  # the folder of /…/q/TOKEN: a proxy's path prefix is kept
    assert "13812345678" not in cookie and case_no not in cookie  # nothing personal in it
    kept = r.cookies["q_kept"]
    fresh = requests.get(f"{hub.url}/q/{qr_token(hub.secret, case_no)}", cookies={"q_kept": kept}, timeout=10)
    assert 'value="1" id="s1" checked' in fresh.text and 'value="202" id="r202" checked' in fresh.text
    assert 'value="901" id="r901" checked' in fresh.text and "已带入您上次的选择" in fresh.text
    assert 'id="phone" autocomplete="tel" value=""' in fresh.text  # the phone number is never kept
    # Another case, or a cookie that is not ours: a fresh form, never an error.
    other = qr_token(hub.secret, "370211202611290110")
    for value in (kept, "v1.0000000000000000.1.202", "v1." + "a" * 16 + ".9.202", "x" * 300, "v1.%00"):
        r = requests.get(f"{hub.url}/q/{other}", cookies={"q_kept": value}, timeout=10)
        assert r.status_code == 200 and " checked" not in r.text and "已带入" not in r.text
    # Once the rating is stored the kept choices are done with.
    token = qr_token(hub.secret, case_no)
    r = requests.post(
        f"{hub.url}/q/{token}",
        data={"satisfaction": "1", "reason": "202"},
        cookies={"q_kept": kept},
        allow_redirects=False,
        timeout=10,
    )
    assert r.status_code == 303 and r.headers["Set-Cookie"].startswith("q_kept=; Max-Age=0")


def test_a_code_used_before_it_expired_still_shows_the_rating_as_done(hub):
    case_no = "370211202611290104"
    issued_at = int(time.time())
    token = qr_token(hub.secret, case_no, issued_at=issued_at, ttl_s=2)
    unused = qr_token(hub.secret, "370211202611290107", issued_at=issued_at, ttl_s=2)
    assert post(hub, token, {"satisfaction": "5"}).status_code == 303
    wait_until(lambda: time.time() >= issued_at + 2, what="both codes to expire")
    assert requests.get(f"{hub.url}/q/{unused}", timeout=10).status_code == 410
    # A refresh of the result page, or Back and send, after the code expired: still 评价成功.
    r = requests.get(f"{hub.url}/q/{token}", timeout=10)
    assert r.status_code == 200 and "您已完成评价" in r.text
    assert post(hub, token, {"satisfaction": "1"}).status_code == 303
    assert [row["satisfaction"] for row in stored_rows(hub, case_no)] == [5]


def test_the_page_names_the_hall_and_window_and_never_a_raw_item_code(hub, tmp_path):
    case_no = "370211202611290105"
    token = qr_token(hub.secret, case_no)
    r = requests.get(f"{hub.url}/q/{token}", timeout=10)
    assert f"{HALL} · 03 号窗口" in r.text
    assert "办理事项" not in r.text and "11370211MB0000001X" not in r.text  # the token's item code
    upload_case(hub.url, hub.secret, tmp_path / "kiosk.db", case_no)
    r = requests.get(f"{hub.url}/q/{token}", timeout=10)
    assert "<dt>办理事项</dt><dd>不动产登记</dd>" in r.text


def test_the_page_names_the_devices_section_once_it_has_one(tmp_path):
    with thread_hub(tmp_path, config=HubConfig(server=ServerConfig(hall=HALL))) as h:
        secret = register(h.store, device="XHA-W07")
        token = qr_token(secret, "370211202611290108", device="XHA-W07")
        assert f"{HALL} · 03 号窗口" in requests.get(f"{h.url}/q/{token}", timeout=10).text
        h.app_desk.add_section("BDC", "不动产登记科")
        h.app_desk.set_device_section("XHA-W07", "BDC")
        assert f"{HALL} · 不动产登记科 · 03 号窗口" in requests.get(f"{h.url}/q/{token}", timeout=10).text


def test_the_page_is_small(hub):
    """One request, a few kilobytes on a slow network (docs/performance.md)."""
    r = requests.get(f"{hub.url}/q/{qr_token(hub.secret, '370211202611290106')}", timeout=10)
    assert len(r.content) < 9000, len(r.content)


def test_the_masked_case_number_is_spoken_by_its_tail():
    assert spoken_case_no("370211202611280012") == "尾号0012"
    assert spoken_case_no("CA202630") == "尾号30"
    assert spoken_case_no("A12") == "已隐去"  # all of it masked

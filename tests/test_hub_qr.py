"""The phone rating page behind the kiosk's QR code, on a hub served on 127.0.0.1: tokens the kiosk
issues open it, ratings are stored once per token and once per case (一次一评) and exported with pf 3,
and bad tokens and hostile forms get a Chinese 4xx page and store nothing."""

from __future__ import annotations

import base64
import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import import_module

import pytest
import requests
from sqlalchemy import create_engine, inspect, select, text
from test_hub_support import ADMIN_TOKEN, DEVICE, qr_token, register, thread_hub, upload_case

from core.domain import DEFAULT_REASONS, LEVELS, PF_HALL_EVALUATOR, PF_QRCODE
from hub import migrate
from hub.schema import ALL_DEVICES, phone_ratings
from hub.storage import HubStore, StaffEntry, database_url


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """One hub for the module: each test rates its own case numbers."""
    with thread_hub(tmp_path_factory.mktemp("hub")) as h:
        h.secret = register(h.store, area_code="370211", dept_code="11370211MB0000001X")
        h.store.import_roster(ALL_DEVICES, [StaffEntry("0006102437", "0371", "王晓燕", "", None, None)])
        yield h


def page(hub, token: str) -> requests.Response:
    return requests.get(f"{hub.url}/q/{token}", timeout=10)


def rate(hub, token: str, **form) -> requests.Response:
    """The answer to the post itself: 303 when stored (or stored before with this token)."""
    return requests.post(f"{hub.url}/q/{token}", data=form, timeout=10, allow_redirects=False)


def stored(r: requests.Response, token: str) -> bool:
    """A 303 to GET /q/TOKEN (relative, for a hub behind a path prefix), which says 评价成功."""
    return (
        r.status_code == 303 and r.headers["Location"] == token and r.headers["Cache-Control"] == "no-store"
    )


def exported(hub, query: str = "") -> dict:
    return requests.get(
        f"{hub.url}/api/v1/ratings{query}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
    ).json()


def phone_rows(hub, case_no: str | None = None) -> list[dict]:
    query = select(phone_ratings).where(phone_ratings.c.device_id == DEVICE)
    if case_no is not None:
        query = query.where(phone_ratings.c.case_no == case_no)
    with hub.store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def test_a_token_from_the_kiosk_opens_the_page(hub, tmp_path):
    case_no = "370211202611280101"
    upload_case(hub.url, hub.secret, tmp_path / "kiosk.db", case_no)
    r = page(hub, qr_token(hub.secret, case_no))
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert "不动产登记" in r.text and "3702**********0101" in r.text and case_no not in r.text
    assert all(LEVELS[s] in r.text for s in LEVELS) and all(x.label in r.text for x in DEFAULT_REASONS)
    # Self-contained: nothing fetched from elsewhere, the one inline script allowed by its hash only,
    # and the token does not leak onward.
    assert "src=" not in r.text and "http" not in r.text and r.text.count("<script>") == 1
    script = r.text.split("<script>")[1].split("</script>")[0]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and f"script-src 'sha256-{digest}';" in policy
    assert r.headers["Referrer-Policy"] == "no-referrer" and r.headers["Cache-Control"] == "no-store"


def test_a_case_not_yet_uploaded_shows_no_item_code(hub):
    """A raw item code means nothing to a citizen: the page shows the item's name or nothing."""
    r = page(hub, qr_token(hub.secret, "370211202611280102"))
    assert r.status_code == 200 and "11370211MB0000001X" not in r.text and "办理事项" not in r.text
    assert "3702**********0102" in r.text and "尾号0102" in r.text


def test_a_good_rating_is_stored_sealed_and_exported_with_pf_3(hub, tmp_path):
    case_no = "370211202611280103"
    upload_case(hub.url, hub.secret, tmp_path / "kiosk.db", case_no)
    token = qr_token(hub.secret, case_no)
    assert stored(rate(hub, token, satisfaction="4", phone="13800138000"), token)
    r = page(hub, token)
    assert r.status_code == 200 and "评价成功" in r.text and "您已完成评价" in r.text
    (row,) = phone_rows(hub, case_no)
    assert row["contact_sealed"] and "13800138000" not in row["contact_sealed"]
    (record,) = [x for x in exported(hub)["ratings"] if x["projectNo"] == case_no]
    assert record["pf"] == PF_QRCODE and record["satisfaction"] == 4 and record["satisfactionCode"] == 2
    assert record["contact"] == "13800138000" and record["evalDetail"] == "" and record["duplicate"] is False
    assert record["taskName"] == "不动产登记" and record["ticketNo"] == "A017" and record["windowNo"] == "03"
    assert record["areaCode"] == "370211" and record["qrNonce"] == row["nonce"] and record["logId"] is None
    assert record["staffNo"] == "0371" and record["staffName"] == "王晓燕"
    today = record["assessTime"][:10]
    assert record in exported(hub, f"?from={today}&to={today}")["ratings"]
    assert exported(hub, "?to=2000-01-01")["count"] == 0


def test_a_bad_rating_needs_a_reason_from_the_catalogue(hub):
    case_no = "370211202611280104"
    token = qr_token(hub.secret, case_no)
    r = rate(hub, token, satisfaction="1")
    assert r.status_code == 400 and "请至少选择一项" in r.text and 'value="1" id="s1" checked' in r.text
    assert phone_rows(hub, case_no) == []
    assert stored(rate(hub, token, satisfaction="1", reason=["201", "901"], phone=""), token)
    (record,) = [x for x in exported(hub)["ratings"] if x["projectNo"] == case_no]
    assert record["evalDetail"] == "201,901" and record["contact"] is None


def test_reasons_left_ticked_are_not_part_of_a_good_rating(hub):
    case_no = "370211202611280105"
    token = qr_token(hub.secret, case_no)
    assert stored(rate(hub, token, satisfaction="5", reason="201"), token)
    (row,) = phone_rows(hub, case_no)
    assert row["satisfaction"] == 5 and row["reasons"] is None


def test_one_rating_per_token_and_per_case(hub):
    case_no = "370211202611280106"
    token = qr_token(hub.secret, case_no)
    assert stored(rate(hub, token, satisfaction="5"), token)
    # The same token again (a second tap, Back and send, a refresh) is its holder's own rating: the
    # same result, 评价成功, never 该办件已评价; the first post is the one kept.
    assert stored(rate(hub, token, satisfaction="3"), token) and stored(rate(hub, token, phone=""), token)
    again = page(hub, token)
    assert again.status_code == 200 and "您已完成评价" in again.text and "该办件已评价" not in again.text
    # The kiosk shows a new token when the old one expires: the case is still rated.
    fresh = qr_token(hub.secret, case_no)
    assert page(hub, fresh).status_code == 409 and rate(hub, fresh, satisfaction="1").status_code == 409
    assert [r["satisfaction"] for r in phone_rows(hub, case_no)] == [5]


def test_a_case_rated_at_the_window_cannot_be_rated_by_phone(hub, tmp_path):
    case_no = "370211202611280107"
    upload_case(hub.url, hub.secret, tmp_path / "kiosk.db", case_no, rated=True)
    token = qr_token(hub.secret, case_no)
    assert "该办件已评价" in page(hub, token).text
    r = rate(hub, token, satisfaction="5")
    assert r.status_code == 409 and "该办件已评价" in r.text and phone_rows(hub, case_no) == []


def test_a_window_rating_after_a_phone_rating_is_kept_and_flagged(hub, tmp_path):
    case_no = "370211202611280108"
    token = qr_token(hub.secret, case_no)
    assert stored(rate(hub, token, satisfaction="4"), token)
    upload_case(hub.url, hub.secret, tmp_path / "kiosk.db", case_no, rated=True)
    body = exported(hub)
    records = sorted((x for x in body["ratings"] if x["projectNo"] == case_no), key=lambda x: x["pf"])
    assert [(x["pf"], x["duplicate"]) for x in records] == [(PF_QRCODE, False), (PF_HALL_EVALUATOR, True)]
    assert body["duplicates"] >= 1
    csv = requests.get(
        f"{hub.url}/api/v1/ratings?format=csv", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
    )
    assert csv.headers["X-Duplicate-Count"] == str(body["duplicates"])


def test_a_rating_without_a_case_number_is_one_per_token(hub):
    first, second = qr_token(hub.secret, None), qr_token(hub.secret, None)
    assert stored(rate(hub, first, satisfaction="3"), first)
    assert stored(rate(hub, first, satisfaction="3"), first)
    assert stored(rate(hub, second, satisfaction="3"), second)
    assert len([r for r in phone_rows(hub) if r["nonce"] in {first, second} or r["case_no"] is None]) >= 2


def _tampered(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]


BAD_TOKENS = {
    "expired": (lambda s: qr_token(s, "3702112026112801E1", issued_at=int(time.time()) - 700), 410, "已过期"),
    "tampered": (lambda s: _tampered(qr_token(s, "3702112026112801E2")), 400, "二维码无效"),
    "other key": (lambda s: qr_token(bytes(32), "3702112026112801E3"), 400, "二维码无效"),
    "unknown device": (lambda s: qr_token(s, "3702112026112801E4", device="XHA-W99"), 400, "二维码无效"),
    "not a token": (lambda s: "not-a-token", 400, "二维码无效"),
    "not yet valid": (
        lambda s: qr_token(s, "3702112026112801E5", issued_at=int(time.time()) + 900),
        403,
        "尚未生效",
    ),
}


@pytest.mark.parametrize("why", BAD_TOKENS)
def test_bad_tokens_get_a_chinese_4xx_page_and_store_nothing(hub, why):
    make, status, words = BAD_TOKENS[why]
    token = make(hub.secret)
    before = len(phone_rows(hub))
    for r in (page(hub, token), rate(hub, token, satisfaction="5")):
        assert (
            r.status_code == status and words in r.text and r.headers["Content-Type"].startswith("text/html")
        )
    assert len(phone_rows(hub)) == before


HOSTILE_FORMS = {
    "satisfaction 6": ("satisfaction=6", 400),
    "satisfaction 0": ("satisfaction=0", 400),
    "not a number": ("satisfaction=%E5%A5%BD", 400),
    "unknown reason": ("satisfaction=1&reason=999", 400),
    "repeated reason": ("satisfaction=1&reason=201&reason=201", 400),
    "two levels": ("satisfaction=5&satisfaction=1", 400),
    "unknown field": ("satisfaction=5&admin=1", 400),
    "not UTF-8": (b"satisfaction=5&phone=\xff\xfe", 400),
    "not a form": ('{"satisfaction": 5}', 400),
    "huge": ("satisfaction=5&phone=" + "1" * 100_000, 413),
}


@pytest.mark.parametrize("why", HOSTILE_FORMS)
def test_hostile_forms_get_4xx_and_store_nothing(hub, why):
    body, status = HOSTILE_FORMS[why]
    case_no = "370211202611289999"
    token = qr_token(hub.secret, case_no)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    r = requests.post(f"{hub.url}/q/{token}", data=body, headers=headers, timeout=10)
    assert r.status_code == status and "提交的内容无效" in r.text
    assert phone_rows(hub, case_no) == []


def test_wrong_media_type_and_bad_phone(hub):
    case_no = "370211202611280109"
    token = qr_token(hub.secret, case_no)
    assert requests.post(f"{hub.url}/q/{token}", json={"satisfaction": 5}, timeout=10).status_code == 415
    r = rate(hub, token, satisfaction="5", phone="12345")
    assert r.status_code == 400 and "手机号码格式不正确" in r.text and 'value="12345"' in r.text
    assert phone_rows(hub, case_no) == []


def test_concurrent_posts_for_one_case_store_exactly_one(hub):
    case_no = "370211202611280110"
    tokens = [qr_token(hub.secret, case_no) for _ in range(8)]
    with ThreadPoolExecutor(len(tokens)) as pool:
        statuses = sorted(pool.map(lambda t: rate(hub, t, satisfaction="5").status_code, tokens))
    assert statuses == [303] + [409] * 7 and len(phone_rows(hub, case_no)) == 1


def test_concurrent_posts_of_one_token_all_say_stored_and_store_one(hub):
    """A double tap on a slow network: both posts arrive together, both get the result page."""
    case_no = "370211202611280111"
    token = qr_token(hub.secret, case_no)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda level: rate(hub, token, satisfaction=level), "5544"))
    assert all(stored(a, token) for a in answers) and len(phone_rows(hub, case_no)) == 1


def test_a_database_made_before_the_phone_page_gets_its_table_and_index(tmp_path):
    # As a hub of 0.1.0 before the phone page left it: the baseline tables, without phone_ratings and the
    # ratings index, and no alembic_version.
    baseline = import_module("hub.migrations.versions.0001_baseline")
    url = database_url(tmp_path, None)
    engine = create_engine(url)
    old_tables = [t for name, t in baseline.baseline.tables.items() if name != "phone_ratings"]
    baseline.baseline.create_all(engine, tables=old_tables)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ratings_device_case"))
    engine.dispose()
    upgraded = HubStore(url)
    try:
        found = inspect(upgraded.engine)
        assert "phone_ratings" in found.get_table_names()
        assert "ratings_device_case" in {i["name"] for i in found.get_indexes("ratings")}
        assert migrate.current_revision(upgraded.engine) == migrate.head_revision()
    finally:
        upgraded.close()

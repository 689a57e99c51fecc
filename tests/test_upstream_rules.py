"""The upward reporting's pure rules: each profile's mapping table, envelopes, signatures and answer
rules, the outbox state machine, backoff and the circuit breaker."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.upstream import rules
from hub.upstream.profiles import (
    JSON_V1,
    PHONE,
    PROFILES,
    SHANDONG,
    WINDOW,
    ZHEJIANG,
    Failure,
    NeedsLinkage,
    Outcome,
    UpstreamRating,
    excerpt,
    shandong_sign_text,
)
from hub.upstream.signing import (
    HMAC_SHA256,
    SM2_SM3,
    HmacSha256,
    SigningKeyError,
    make_signer,
    parse_hex_key,
    sm2_public_key,
    sm2_verify,
)

KEY = bytes(range(32))
NOW = datetime(2026, 11, 29, 10, 15, 3, tzinfo=UTC)


def rating(**changes) -> UpstreamRating:
    base = UpstreamRating(
        project_no="370211202611290001",
        assess_number=1,
        task_code="11370211MB0000001X4000100001",
        task_name="个体工商户设立登记",
        channel=WINDOW,
        satisfaction=5,
        reasons=None,
        assessed_at="2026-11-29 10:15:03",
        area_code="370211",
        dept_code="11370211MB0000001X",
        staff_name="王芳",
    )
    return UpstreamRating(**{**base.__dict__, **changes})


ratings = st.builds(
    rating,
    satisfaction=st.sampled_from([1, 2, 3, 4, 5]),
    channel=st.sampled_from([WINDOW, PHONE]),
    assess_number=st.sampled_from([1, 2]),
    reasons=st.one_of(st.none(), st.lists(st.sampled_from(["101", "201", "301"]), max_size=3).map(tuple)),
)

# The expected codes, written out per profile (not derived from the tables under test).
EXPECTED_SATISFACTION = {  # internal 5 = 非常满意 -> target
    "json-v1": {5: 5, 4: 4, 3: 3, 2: 2, 1: 1},
    "zhejiang-offlinereport": {5: 5, 4: 4, 3: 3, 2: 2, 1: 1},
    "shandong": {5: 5, 4: 4, 3: 3, 2: 2, 1: 1},
}
EXPECTED_PF = {name: {WINDOW: 4, PHONE: 3} for name in PROFILES}


@pytest.mark.parametrize("profile", PROFILES.values(), ids=PROFILES)
@given(r=ratings)
def test_each_profile_maps_codes_and_time_by_its_table(profile, r):
    record = profile.map(r)
    assert isinstance(record, dict)
    project, number = profile.key_fields
    assert record[project] == r.project_no and record[number] == r.assess_number
    assert record["satisfaction"] == EXPECTED_SATISFACTION[profile.name][r.satisfaction]
    assert record["pf"] == EXPECTED_PF[profile.name][r.channel]
    assert record["assessTime"] == "2026-11-29 10:15:03"
    assert record["evalDetail"] == (None if r.reasons is None else ",".join(r.reasons))


def test_shandong_names_the_assess_number_service_number():
    record = SHANDONG.map(rating(assess_number=2))
    assert record["serviceNumber"] == 2 and "assessNumber" not in record


@pytest.mark.parametrize("profile", PROFILES.values(), ids=PROFILES)
@pytest.mark.parametrize(
    "change, field",
    [
        ({"project_no": None}, "projectNo"),
        ({"project_no": "  "}, "projectNo"),
        ({"project_no": "x" * 51}, "projectNo"),
        ({"task_code": None}, "taskCode"),
        ({"area_code": None}, "areaCode"),
        ({"area_code": "37A211"}, "areaCode"),
        ({"assess_number": None}, None),
    ],
)
def test_a_missing_required_field_needs_linkage_never_a_default(profile, change, field):
    result = profile.map(rating(**change))
    assert isinstance(result, NeedsLinkage)
    name = field or profile.key_fields[1]
    assert any(p.startswith(f"{name}:") for p in result.problems), result.problems


def test_profiles_differ_where_their_tables_differ():
    no_dept = rating(dept_code=None, task_name=None)
    assert JSON_V1.map(no_dept)["deptCode"] is None  # optional in the reference profile
    assert {p.split(":")[0] for p in ZHEJIANG.map(no_dept).problems} == {"taskName", "deptCode"}
    assert {p.split(":")[0] for p in SHANDONG.map(no_dept).problems} == {"taskName", "deptCode"}
    third = rating(assess_number=3)
    assert JSON_V1.map(third)["assessNumber"] == 3
    assert isinstance(ZHEJIANG.map(third), NeedsLinkage)
    assert isinstance(SHANDONG.map(rating(area_code="370211000000")), dict)
    assert isinstance(ZHEJIANG.map(rating(area_code="370211000000")), NeedsLinkage)


def test_json_v1_request_is_the_documented_one():
    record = JSON_V1.map(rating())
    request = JSON_V1.request([record], "APPMARK", HmacSha256(KEY), NOW)
    assert json.loads(request.body) == {"records": [record]}
    ts = request.headers["X-Upstream-Timestamp"]
    assert ts == str(int(NOW.timestamp())) and request.headers["X-Upstream-App"] == "APPMARK"
    import hashlib
    import hmac

    expected = hmac.new(KEY, ts.encode() + b"\n" + request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Upstream-Signature"] == expected
    with pytest.raises(ValueError):
        JSON_V1.request([record] * 101, "APPMARK", HmacSha256(KEY), NOW)


def test_json_v1_answers():
    keys = [("A", 1), ("B", 2)]

    def answer(results, status=200, headers=None):
        return JSON_V1.answer(status, headers or {}, json.dumps({"results": results}).encode(), keys)

    ok = {"projectNo": "A", "assessNumber": 1, "status": "ok", "message": ""}
    bad = {"projectNo": "B", "assessNumber": 2, "status": "rejected", "message": "事项编码不存在"}
    assert answer([ok, bad]) == [Outcome(True), Outcome(False, "事项编码不存在")]
    assert isinstance(answer([bad, ok]), Failure)  # out of order
    assert isinstance(answer([ok]), Failure)  # one short
    assert isinstance(answer([ok, {**bad, "status": "maybe"}]), Failure)
    failure = answer([ok, bad], status=429, headers={"retry-after": "7"})
    assert isinstance(failure, Failure) and failure.retry_after == "7"


@pytest.mark.parametrize("profile", PROFILES.values(), ids=PROFILES)
@given(status=st.sampled_from([200, 200, 200, 500, 429]), body=st.binary(max_size=300))
@settings(max_examples=60)
def test_any_answer_is_an_outcome_or_a_failure_never_a_crash(profile, status, body):
    result = profile.answer(status, {"c-response-desc": "success"}, body, [("A", 1)])
    assert isinstance(result, Failure) or (isinstance(result, list) and len(result) == 1)
    if isinstance(result, Failure):
        assert len(result.detail) < 300


def test_shandong_envelope_sign_and_success_rule():
    records = [SHANDONG.map(rating()), SHANDONG.map(rating(project_no="P2"))]
    request = SHANDONG.request(records, "APPMARK", HmacSha256(KEY), NOW)
    body = json.loads(request.body)
    assert set(body) == {"txnBodyCom", "txnCommCom"} and body["txnCommCom"] == {}
    inner = body["txnBodyCom"]
    assert inner["time"] == "20261129101503" and inner["appMark"] == "APPMARK"
    assert inner["params"] == {"evaluate": records}
    assert HmacSha256(KEY).verify(
        shandong_sign_text(inner["time"], "APPMARK", inner["params"]), inner["sign"]
    )
    keys = [("A", 1), ("B", 1)]
    ok = SHANDONG.answer(200, {"c-response-desc": "success"}, b'{"success":"true"}', keys)
    assert ok == [Outcome(True), Outcome(True)]
    refused = SHANDONG.answer(200, {"c-response-desc": "success"}, b'{"success":"false","msg":"sign"}', keys)
    assert refused == [Outcome(False, "sign")] * 2
    refused = SHANDONG.answer(200, {"c-response-desc": "fail"}, b'{"msg":"appMark"}', keys)
    assert refused == [Outcome(False, "appMark")] * 2
    assert isinstance(SHANDONG.answer(200, {}, b'{"success":"true"}', keys), Failure)
    assert isinstance(SHANDONG.answer(502, {"c-response-desc": "success"}, b"", keys), Failure)


def test_sm2_signatures_verify_with_the_public_key_only():
    signer = make_signer(SM2_SM3, KEY)
    public = sm2_public_key(KEY)
    signature = signer.sign(b"20261129101503APPMARK{}")
    assert sm2_verify(public, b"20261129101503APPMARK{}", signature)
    assert not sm2_verify(public, b"20261129101503APPMARK{ }", signature)
    assert not sm2_verify(public, b"x", "zz")
    assert signer.sign(b"m") != signer.sign(b"m")  # a fresh nonce each time


def test_keys_are_checked():
    assert parse_hex_key(" 0a0B\n") == b"\n\x0b"
    for text in ("", "abc", "xyz1", "0a 0b"):
        with pytest.raises(ValueError):
            parse_hex_key(text)
    with pytest.raises(SigningKeyError):
        make_signer(HMAC_SHA256, b"short")
    with pytest.raises(SigningKeyError):
        make_signer(SM2_SM3, b"\x00" * 32)
    with pytest.raises(ValueError):
        make_signer("md5", KEY)


def test_excerpt_is_bounded_and_printable():
    assert excerpt(b"\x00\xffabc") == " \ufffdabc"
    assert len(excerpt("x" * 10_000)) == 201 and "\n" not in excerpt("a\nb")


# --- state machine -------------------------------------------------------------------------------------


@given(st.lists(st.sampled_from(sorted(rules.TRANSITIONS)), max_size=30), st.sampled_from(rules.STATUSES))
def test_state_machine_invariants(actions, start):
    status = start
    for what in actions:
        try:
            after = rules.next_status(status, what)
        except rules.TransitionError:
            continue
        assert status not in rules.FINAL  # nothing leaves sent or not_reportable
        if status == rules.REJECTED:  # only a person moves a rejected record
            assert what in rules.PERSON_ACTIONS
        if after == rules.NOT_REPORTABLE:  # never the sender's decision
            assert what == "not_reportable"
        if status in rules.SENDABLE and what == "failed":
            assert after == rules.FAILING  # a failure is retried, never dropped
        status = after


def test_transitions_refused():
    with pytest.raises(rules.TransitionError):
        rules.next_status(rules.SENT, "resend")
    with pytest.raises(rules.TransitionError):
        rules.next_status(rules.PENDING, "not_reportable")
    assert rules.next_status(rules.AWAITING_DETAIL, "detail_arrived") == rules.PENDING


@given(st.integers(0, 200), st.floats(0, 1, exclude_max=True))
def test_backoff_bounds(attempts, jitter):
    delay = rules.backoff_s(attempts, jitter)
    assert rules.BASE_S / 2 <= delay <= rules.CAP_S
    assert rules.backoff_s(attempts + 1, jitter) >= delay


@given(st.integers(1, 50), st.floats(0, 1, exclude_max=True), st.integers(0, 100_000))
def test_retry_after_is_never_undercut(attempts, jitter, asked):
    wait = rules.retry_after_s(str(asked), NOW)
    assert wait == min(asked, rules.MAX_RETRY_AFTER_S)
    assert rules.delay_after_failure(attempts, jitter, wait) >= wait


def test_retry_after_dates():
    later = (NOW + timedelta(seconds=90)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert rules.retry_after_s(later, NOW) == 90
    assert rules.retry_after_s("soon", NOW) is None and rules.retry_after_s(None, NOW) is None
    assert rules.retry_after_s("Mon, 01 Jan 2001 00:00:00 GMT", NOW) == 0


def test_circuit_opens_probes_and_doubles():
    c = rules.Circuit()
    for i in range(rules.FAILURES_TO_OPEN - 1):
        c = c.after_failure(float(i))
        assert c.allows(float(i)) and c.state(float(i)) == "closed"
    c = c.after_failure(10.0)
    assert not c.allows(10.0 + rules.OPEN_S - 1) and c.state(11.0) == "open"
    assert c.allows(10.0 + rules.OPEN_S) and c.state(10.0 + rules.OPEN_S) == "half-open"
    c = c.after_failure(50.0)  # the probe failed
    assert c.open_s == 2 * rules.OPEN_S and not c.allows(50.0 + rules.OPEN_S)
    assert c.after_success() == rules.Circuit()


@given(st.lists(st.booleans(), max_size=60))
def test_circuit_open_time_is_bounded(results):
    c, now = rules.Circuit(), 0.0
    for ok in results:
        now = max(now, c.open_until or now)
        c = c.after_success() if ok else c.after_failure(now)
        assert c.open_s <= rules.MAX_OPEN_S
        assert (c.open_until or now) - now <= rules.MAX_OPEN_S

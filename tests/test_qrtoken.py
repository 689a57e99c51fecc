"""The QR token: round trip, tampering, expiry, wrong keys, size, and garbage that must only ever be a
TokenError."""

import base64
import hashlib
import hmac
import struct

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from core.qrtoken import (
    CLOCK_SKEW_S,
    MAC_CONTEXT,
    MAX_FIELD_BYTES,
    MAX_TOKEN_CHARS,
    TokenClaims,
    TokenError,
    issue_token,
    qr_url,
    verify_token,
)

SECRET = bytes.fromhex("5f" * 32)
OTHER_SECRET = bytes.fromhex("a0" * 32)
T0 = 1_764_295_000
CLAIMS = {
    "device_id": "XHA-W03",
    "window": "03",
    "staff_no": "0371",
    "case_no": "370211202611280012",
    "item_code": "11370211MB0000001X",
}


def secrets_of(device_id: str) -> bytes | None:
    return {"XHA-W03": SECRET}.get(device_id)


def token(**overrides) -> str:
    return issue_token(SECRET, **(CLAIMS | {"issued_at": T0, "ttl_s": 600} | overrides))


def reason(token: str, now: int = T0 + 1, secret_for=secrets_of) -> str:
    with pytest.raises(TokenError) as caught:
        verify_token(token, secret_for, now)
    return caught.value.reason


def test_round_trip_carries_every_claim():
    claims = verify_token(token(nonce=b"\x01" * 8), secrets_of, T0 + 599)
    assert claims == TokenClaims(**CLAIMS, issued_at=T0, expires_at=T0 + 600, nonce="01" * 8)


def test_absent_fields_stay_absent():
    claims = verify_token(token(staff_no=None, case_no=None, item_code=None), secrets_of, T0)
    assert (claims.staff_no, claims.case_no, claims.item_code) == (None, None, None)


def test_every_token_is_different_by_its_nonce():
    assert token() != token()


def test_a_typical_token_is_short_and_url_safe():
    t = token()
    assert len(t) < 160
    assert set(t) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert qr_url("http://127.0.0.1:8700/q/", t) == "http://127.0.0.1:8700/q/" + t


def test_longest_chinese_values_stay_within_a_few_hundred_characters():
    longest = "办" * (MAX_FIELD_BYTES // 3)
    t = token(
        device_id="D" * MAX_FIELD_BYTES, window="窗" * 5, staff_no=longest, case_no=longest, item_code=longest
    )
    assert len(t) <= MAX_TOKEN_CHARS <= 500
    assert verify_token(t, lambda _: SECRET, T0).case_no == longest


@pytest.mark.parametrize("field", ["staff_no", "case_no", "item_code"])
def test_a_field_too_long_for_the_code_is_refused(field):
    with pytest.raises(ValueError, match=field):
        token(**{field: "办" * (MAX_FIELD_BYTES // 3 + 1)})


@pytest.mark.parametrize(
    "overrides", [{"device_id": None}, {"window": None}, {"ttl_s": 0}, {"nonce": b"short"}, {"issued_at": -1}]
)
def test_issue_refuses_what_cannot_be_a_token(overrides):
    with pytest.raises(ValueError):
        token(**overrides)


def test_every_flipped_bit_is_caught():
    raw = base64.urlsafe_b64decode(token() + "==")
    for i in range(len(raw) * 8):
        tampered = bytearray(raw)
        tampered[i // 8] ^= 1 << (i % 8)
        t = base64.urlsafe_b64encode(bytes(tampered)).rstrip(b"=").decode()
        assert reason(t) in ("bad_signature", "malformed", "unknown_device")


def test_decoding_the_token_shows_neither_the_case_number_nor_the_staff_number():
    """Issue 10 item 10: the page masks 3702****0012; base64-decoding a photographed code used to show
    it whole. Only the device id (whose key opens the rest) is readable."""
    raw = base64.urlsafe_b64decode(token() + "==")
    for secret_text in (CLAIMS["case_no"], "0012", CLAIMS["staff_no"], CLAIMS["item_code"], "11370211"):
        assert secret_text.encode() not in raw
    assert b"XHA-W03" in raw
    assert len(token()) < 130  # shorter than the readable version 1 of the same claims (138)


def _v1_token(**claims) -> str:
    """A version 1 token as kiosks before 0.2.0 issue them: readable fields, HMAC-signed."""
    values = CLAIMS | claims
    body = struct.pack(">BII8s", 1, T0, T0 + 600, bytes(8))
    for name in ("device_id", "window", "staff_no", "case_no", "item_code"):
        data = values[name].encode()
        body += bytes([len(data)]) + data
    mac = hmac.new(SECRET, MAC_CONTEXT + body, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(body + mac).rstrip(b"=").decode()


def test_version_1_tokens_of_kiosks_not_yet_upgraded_still_verify_and_are_still_tamper_proof():
    assert verify_token(_v1_token(), secrets_of, T0 + 1).case_no == CLAIMS["case_no"]
    genuine = base64.urlsafe_b64decode(_v1_token() + "==")
    forged = genuine.replace(b"370211202611280012", b"370211202611289999")
    assert reason(base64.urlsafe_b64encode(forged).rstrip(b"=").decode()) == "bad_signature"


def test_expiry_and_clock_skew():
    t = token()
    assert verify_token(t, secrets_of, T0 + 599).case_no == CLAIMS["case_no"]
    assert reason(t, now=T0 + 600) == "expired"
    assert verify_token(t, secrets_of, T0 - CLOCK_SKEW_S).issued_at == T0
    assert reason(t, now=T0 - CLOCK_SKEW_S - 1) == "not_yet_valid"


def test_wrong_key_and_unknown_device():
    t = token()
    assert reason(t, secret_for=lambda _: OTHER_SECRET) == "bad_signature"
    assert reason(t, secret_for=lambda _: None) == "unknown_device"
    assert reason(issue_token(SECRET, **CLAIMS | {"device_id": "OTHER"}, issued_at=T0, ttl_s=600)) == (
        "unknown_device"
    )


def test_other_spellings_of_the_same_bytes_are_refused():
    t = token()
    assert reason(t + "=") == "malformed"
    assert reason(t + "\n") == "malformed"
    # The last character's spare bits must be zero: exactly one spelling per token.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    respelled = [t[:-1] + c for c in alphabet if c != t[-1]]
    assert all(reason(r) in ("malformed", "bad_signature") for r in respelled)


@given(st.text(max_size=600))
def test_garbage_text_is_only_ever_a_token_error(text):
    with pytest.raises(TokenError):
        verify_token(text, secrets_of, T0)


@given(st.binary(max_size=400))
def test_garbage_bytes_in_base64url_are_only_ever_a_token_error(data):
    text = base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    with pytest.raises(TokenError):
        verify_token(text, lambda _: SECRET, T0)


@given(st.binary(min_size=1, max_size=100), st.integers(0, 200))
def test_a_genuine_prefix_with_garbage_after_it_is_only_ever_a_token_error(tail, cut):
    raw = base64.urlsafe_b64decode(token() + "==")
    assume(raw[:cut] + tail != raw)
    text = base64.urlsafe_b64encode(raw[:cut] + tail).rstrip(b"=").decode()
    with pytest.raises(TokenError):
        verify_token(text, lambda _: SECRET, T0)

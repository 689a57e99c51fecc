"""Device request signatures and the hub's answer signatures (docs/protocol.md §2): the one place both sides
compute and check them. The agent hands ``core.requests_auth.DeviceSignature`` (built on these functions) to its ``requests``
session; the hub calls
``verify_request`` and ``sign_answer``; tests and benchmarks use the same functions.

- Version 2 (sent by every agent now): ``v2=`` + hex(HMAC-SHA256(secret, timestamp + "\\n" + METHOD +
  "\\n" + target + "\\n" + hex(SHA-256(body)))). ``target`` is the path and query as sent, with any prefix
  of the hub URL, so a signature made for one method or path is worth nothing on another.
- Version 1 (the first agents): hex(HMAC-SHA256(secret, timestamp + "\\n" + body)). It binds no method
  or path; the hub accepts it only from devices registered before version 2, until switched off.
- Answer: ``v2=`` + hex(HMAC-SHA256(secret, request_signature + "\\n" + status + "\\n" +
  hex(SHA-256(answer body)))), so a man in the middle can neither forge an answer nor move a genuine
  one to another request.

``secret`` is always the bytes the device's hex secret decodes to. No I/O here.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from .domain import CLOCK_SKEW_S

DEVICE_HEADER = "X-Kiosk-Device"
TIMESTAMP_HEADER = "X-Kiosk-Timestamp"
SIGNATURE_HEADER = "X-Kiosk-Signature"
ANSWER_SIGNATURE_HEADER = "X-Kiosk-Answer-Signature"
MAX_SKEW_S = CLOCK_SKEW_S  # core.domain: the one figure for device clocks
V2 = "v2="
_HEX64 = re.compile(r"[0-9a-f]{64}")


class SignatureError(Exception):
    """Why a request is refused: for the hub's log only; the caller answers every reason alike."""


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _hmac_hex(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign_v1(secret: bytes, timestamp: str, body: bytes) -> str:
    return _hmac_hex(secret, timestamp.encode("ascii") + b"\n" + body)


def sign_v2(secret: bytes, timestamp: str, method: str, target: str, body: bytes) -> str:
    text = f"{timestamp}\n{method.upper()}\n{target}\n{body_hash(body)}"
    return V2 + _hmac_hex(secret, text.encode("utf-8"))


def sign_answer(secret: bytes, request_signature: str, status: int, body: bytes) -> str:
    text = f"{request_signature}\n{status}\n{body_hash(body)}"
    return V2 + _hmac_hex(secret, text.encode("utf-8"))


def answer_is_genuine(
    secret: bytes, request_signature: str, status: int, body: bytes, given: str | None
) -> bool:
    """Whether ``given`` (the answer's X-Kiosk-Answer-Signature, None when absent) is the hub's."""
    if not given or not given.isascii():
        return False
    return hmac.compare_digest(sign_answer(secret, request_signature, status, body), given.strip())


def request_headers(
    device_id: str, secret: bytes, method: str, target: str, body: bytes, timestamp: int
) -> dict[str, str]:
    """The three headers of a v2-signed request."""
    ts = str(timestamp)
    return {
        DEVICE_HEADER: device_id,
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: sign_v2(secret, ts, method, target, body),
    }


def target_of(url: str) -> str:
    """The signed target of a URL: its path and query exactly as they go on the request line."""
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


@dataclass(frozen=True)
class Claimed:
    """What a request's headers claim, checked for form and freshness but not yet for the secret."""

    device_id: str
    timestamp: str
    signature: str  # as sent

    @property
    def version(self) -> int:
        return 2 if self.signature.startswith(V2) else 1


def claimed(headers: Mapping[str, str], now: float) -> Claimed:
    """The device, timestamp and signature of a request's headers: present, well formed and fresh.
    Cheap, and needs no body: the hub calls it before it reads one. SignatureError otherwise."""
    device_id = headers.get(DEVICE_HEADER)
    timestamp = headers.get(TIMESTAMP_HEADER)
    given = headers.get(SIGNATURE_HEADER)
    if not device_id or not timestamp or not given:
        raise SignatureError(f"missing {DEVICE_HEADER}, {TIMESTAMP_HEADER} or {SIGNATURE_HEADER}")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureError("timestamp is not unix seconds")
    if abs(now - int(timestamp)) > MAX_SKEW_S:
        raise SignatureError(f"timestamp more than {MAX_SKEW_S} s from the hub's clock")
    given = given.strip()
    hex_part = given[len(V2) :] if given.startswith(V2) else given
    if not _HEX64.fullmatch(hex_part.lower()):  # before comparing: compare_digest takes ASCII text only
        raise SignatureError("signature is not 64 hex digits (v1) or v2= and 64 hex digits")
    return Claimed(device_id, timestamp, given)


def verify_request(
    claim: Claimed, secret: bytes, method: str, target: str, body: bytes, *, v1_allowed: bool
) -> None:
    """SignatureError unless ``claim`` signs this method, target and body under ``secret``."""
    if claim.version == 2:
        expected = sign_v2(secret, claim.timestamp, method, target, body)
        if not hmac.compare_digest(expected, V2 + claim.signature[len(V2) :].lower()):
            raise SignatureError("wrong v2 signature (method, target or body differ, or another secret)")
        return
    if not v1_allowed:
        raise SignatureError("v1 signature from a device that must sign v2")
    if not hmac.compare_digest(sign_v1(secret, claim.timestamp, body), claim.signature.lower()):
        raise SignatureError("wrong v1 signature")

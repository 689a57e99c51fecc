"""The dynamic QR code's token: who, where and which case, signed with the device secret.

A citizen who scans the rate page's QR code opens ``qr.base_url + token`` on their phone; the hub
verifies the token before it offers the online form, so a code cannot be forged, altered or kept for
later. The token is binary, HMAC-SHA256 signed and base64url encoded, a few hundred characters at
most so the code stays easy to scan. Format: docs/protocol.md §5. Shared by the kiosk (issue) and the hub
(verify). No I/O here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass

from .domain import CLOCK_SKEW_S  # a token issued this far in the future is still good

VERSION = 1
NONCE_BYTES = 8
MAC_BYTES = 32
# Longest text field in UTF-8 bytes (21 Chinese characters, 64 ASCII): keeps the code scannable.
MAX_FIELD_BYTES = 64
# Signed together with the token so the MAC can never double as a hub request signature.
MAC_CONTEXT = b"kiosk-qr-token\n"

_HEADER = struct.Struct(">BII8s")  # version, issued_at, expires_at, nonce
_NULL = 0xFF  # length byte of an absent field
_TEXT_FIELDS = ("device_id", "window", "staff_no", "case_no", "item_code")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
# The longest token: header, five full text fields with their length bytes, MAC.
MAX_TOKEN_CHARS = len(base64.urlsafe_b64encode(bytes(_HEADER.size + 5 * (1 + MAX_FIELD_BYTES) + MAC_BYTES)))


class TokenError(ValueError):
    """A token that is not to be trusted; ``reason`` is one of the codes in docs/protocol.md §5.

    Only an ``expired`` token, genuine but late, also carries its ``claims``: the hub still tells the
    holder of a used code that their rating is stored."""

    def __init__(self, reason: str, message: str, claims: TokenClaims | None = None):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.claims = claims


@dataclass(frozen=True)
class TokenClaims:
    device_id: str
    window: str
    staff_no: str | None
    case_no: str | None
    item_code: str | None
    issued_at: int  # unix seconds
    expires_at: int
    nonce: str  # hex


def issue_token(
    secret: bytes,
    *,
    device_id: str,
    window: str,
    staff_no: str | None,
    case_no: str | None,
    item_code: str | None,
    issued_at: int,
    ttl_s: int,
    nonce: bytes | None = None,
) -> str:
    """A token valid from ``issued_at`` for ``ttl_s`` seconds. ValueError for a field that is too long."""
    if not secret:
        raise ValueError("the device secret is empty")
    if ttl_s <= 0:
        raise ValueError(f"ttl_s must be positive, got {ttl_s}")
    nonce = secrets.token_bytes(NONCE_BYTES) if nonce is None else nonce
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"nonce must be {NONCE_BYTES} bytes")
    expires_at = issued_at + ttl_s
    if issued_at < 0 or expires_at >= 2**32:
        raise ValueError(f"issued_at {issued_at} and ttl_s {ttl_s} do not fit in unsigned 32-bit seconds")
    values = {
        "device_id": device_id,
        "window": window,
        "staff_no": staff_no,
        "case_no": case_no,
        "item_code": item_code,
    }
    body = bytearray(_HEADER.pack(VERSION, issued_at, expires_at, nonce))
    for name in _TEXT_FIELDS:
        body += _pack_text(name, values[name], required=name in ("device_id", "window"))
    mac = _mac(secret, bytes(body))
    return base64.urlsafe_b64encode(bytes(body) + mac).rstrip(b"=").decode("ascii")


def qr_url(base_url: str, token: str) -> str:
    """What the QR code encodes: the base URL as configured, then the token."""
    return base_url + token


def verify_token(token: str, secret_for: Callable[[str], bytes | None], now: int) -> TokenClaims:
    """The claims of a genuine, current token; TokenError (with a reason) for anything else.

    ``secret_for`` maps a device id to its secret, or None for a device the verifier does not know.
    """
    raw = _decode(token)
    if len(raw) < _HEADER.size + MAC_BYTES:
        raise TokenError("malformed", "too short")
    body, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    version, issued_at, expires_at, nonce = _HEADER.unpack_from(body)
    if version != VERSION:
        raise TokenError("malformed", f"unknown version {version}")
    fields: dict[str, str | None] = {}
    offset = _HEADER.size
    for name in _TEXT_FIELDS:
        fields[name], offset = _unpack_text(body, offset, name)
    if offset != len(body):
        raise TokenError("malformed", "trailing bytes")
    device_id, window = fields["device_id"], fields["window"]
    if device_id is None or window is None:
        raise TokenError("malformed", "device id and window are required")
    if expires_at <= issued_at:
        raise TokenError("malformed", "expires before it is issued")
    secret = secret_for(device_id)
    if not secret:
        raise TokenError("unknown_device", f"no secret for device {device_id!r}")
    if not hmac.compare_digest(mac, _mac(secret, body)):
        raise TokenError("bad_signature", "signature does not match")
    if issued_at > now + CLOCK_SKEW_S:
        raise TokenError("not_yet_valid", f"issued at {issued_at}, now {now}")
    claims = TokenClaims(
        device_id=device_id,
        window=window,
        staff_no=fields["staff_no"],
        case_no=fields["case_no"],
        item_code=fields["item_code"],
        issued_at=issued_at,
        expires_at=expires_at,
        nonce=nonce.hex(),
    )
    if now >= expires_at:
        raise TokenError("expired", f"expired at {expires_at}, now {now}", claims)
    return claims


def _mac(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, MAC_CONTEXT + body, hashlib.sha256).digest()


def _pack_text(name: str, value: str | None, *, required: bool) -> bytes:
    if value is None:
        if required:
            raise ValueError(f"{name} is required")
        return bytes([_NULL])
    data = value.encode("utf-8")
    if len(data) > MAX_FIELD_BYTES:
        raise ValueError(f"{name} is {len(data)} bytes in UTF-8, at most {MAX_FIELD_BYTES} fit in a QR token")
    return bytes([len(data)]) + data


def _unpack_text(body: bytes, offset: int, name: str) -> tuple[str | None, int]:
    if offset >= len(body):
        raise TokenError("malformed", f"{name} missing")
    length = body[offset]
    offset += 1
    if length == _NULL:
        return None, offset
    if length > MAX_FIELD_BYTES or offset + length > len(body):
        raise TokenError("malformed", f"{name} has a bad length")
    try:
        return body[offset : offset + length].decode("utf-8"), offset + length
    except UnicodeDecodeError:
        raise TokenError("malformed", f"{name} is not UTF-8") from None


def _decode(token: str) -> bytes:
    """Strict base64url without padding: exactly one spelling per token."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise TokenError("malformed", "not a token")
    if not _BASE64URL.fullmatch(token) or len(token) % 4 == 1:
        raise TokenError("malformed", "not base64url")
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
        raise TokenError("malformed", "not canonical base64url")
    return raw

"""Who is asking: device signatures (docs/protocol.md §2) and the operator's bearer token.

A device signs ``timestamp + "\\n" + raw body`` with HMAC-SHA256 under its secret. The hub refuses a
missing or wrong signature, an unknown device, or a timestamp more than 300 s off, exactly the 401 cases
of docs/protocol.md §2. A copy of a signed request replayed inside that window is answered like the original:
every device request is idempotent (events already held are not stored twice), so a replay can change
nothing, and refusing it would also refuse a device's honest retry within the same second.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping

MAX_SKEW_S = 300
DEVICE_HEADER = "X-Kiosk-Device"
TIMESTAMP_HEADER = "X-Kiosk-Timestamp"
SIGNATURE_HEADER = "X-Kiosk-Signature"
_HEX_SIGNATURE = re.compile(r"[0-9a-f]{64}")


class AuthError(Exception):
    """Why a request is refused with 401; the text names no secret."""


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    return hmac.new(secret, timestamp.encode("ascii") + b"\n" + body, hashlib.sha256).hexdigest()


class DeviceAuthenticator:
    """Checks signed device requests."""

    def __init__(self, secret_for: Callable[[str], bytes | None], clock: Callable[[], float] = time.time):
        self._secret_for = secret_for
        self._clock = clock

    def check(self, headers: Mapping[str, str], body: bytes) -> str:
        """The device id of a correctly signed, fresh request; AuthError otherwise."""
        device_id = headers.get(DEVICE_HEADER)
        timestamp = headers.get(TIMESTAMP_HEADER)
        given = headers.get(SIGNATURE_HEADER)
        if not device_id or not timestamp or not given:
            raise AuthError(f"missing {DEVICE_HEADER}, {TIMESTAMP_HEADER} or {SIGNATURE_HEADER}")
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            raise AuthError("timestamp is not unix seconds")
        now = self._clock()
        if abs(now - int(timestamp)) > MAX_SKEW_S:
            raise AuthError(f"timestamp more than {MAX_SKEW_S} s from the hub's clock")
        secret = self._secret_for(device_id)
        if secret is None:
            raise AuthError("unknown device")
        given = given.strip().lower()
        if not _HEX_SIGNATURE.fullmatch(given):  # before comparing: compare_digest takes ASCII text only
            raise AuthError("signature is not 64 hex digits")
        if not hmac.compare_digest(signature(secret, timestamp, body), given):
            raise AuthError("wrong signature")
        return device_id


def check_bearer(authorization: str | None, token: str | None) -> None:
    """The operator's ``Authorization: Bearer TOKEN``; AuthError unless it matches ``token``."""
    if token is None:
        raise AuthError("ratings export is disabled: start the hub with --admin-token")
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise AuthError("missing or wrong operator token")

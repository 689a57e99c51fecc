"""Who is asking: signed device requests (docs/protocol.md §2, computed by ``core.signing``) and the
operator's bearer token.

A device request is checked in two steps so that no body is read for a stranger: ``claim`` looks at the
headers only (present, well formed, fresh timestamp, known device), ``verify`` then checks the signature
over method, target and body. A v2 signature binds the method and path; a v1 signature (which binds
neither) is accepted only from a device allowed v1 (registered before v2, until an operator turns it
off). Every refusal is an AuthError whose text names the reason for the hub's log, never a secret; the
client always gets the same 401 body. A copy of a signed request replayed inside the 300 s window is
answered like the original: every device request is idempotent, so a replay changes nothing.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Mapping

from core.signing import (
    DEVICE_HEADER,
    MAX_SKEW_S,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Claimed,
    SignatureError,
    claimed,
    verify_request,
)

__all__ = [
    "DEVICE_HEADER",
    "MAX_SKEW_S",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "AuthError",
    "DeviceAuthenticator",
    "MIN_ADMIN_TOKEN_CHARS",
    "check_bearer",
]

MIN_ADMIN_TOKEN_CHARS = 32


class AuthError(Exception):
    """Why a request is refused with 401; the text names no secret. ``device_id``: as claimed, or None."""

    def __init__(self, reason: str, device_id: str | None = None):
        super().__init__(reason)
        self.device_id = device_id


class DeviceAuthenticator:
    """Checks signed device requests against the hub's device table."""

    def __init__(
        self,
        secret_for: Callable[[str], bytes | None],
        v1_allowed_for: Callable[[str], bool] = lambda _device_id: False,
        clock: Callable[[], float] = time.time,
    ):
        self._secret_for = secret_for
        self._v1_allowed_for = v1_allowed_for
        self._clock = clock

    def claim(self, headers: Mapping[str, str]) -> tuple[Claimed, bytes]:
        """The claim of a request's headers and the claimed device's secret, before any body is read."""
        try:
            claim = claimed(headers, self._clock())
        except SignatureError as e:
            raise AuthError(str(e), headers.get(DEVICE_HEADER)) from None
        secret = self._secret_for(claim.device_id)
        if secret is None:
            raise AuthError("unknown device", claim.device_id)
        return claim, secret

    def verify(self, claim: Claimed, secret: bytes, method: str, target: str, body: bytes) -> str:
        """The device id of a request whose signature covers ``method``, ``target`` and ``body``."""
        v1_allowed = claim.version == 1 and self._v1_allowed_for(claim.device_id)
        try:
            verify_request(claim, secret, method, target, body, v1_allowed=v1_allowed)
        except SignatureError as e:
            raise AuthError(str(e), claim.device_id) from None
        return claim.device_id

    def check(self, headers: Mapping[str, str], method: str, target: str, body: bytes) -> str:
        claim, secret = self.claim(headers)
        return self.verify(claim, secret, method, target, body)


def check_bearer(authorization: str | None, token: str | None) -> None:
    """The operator's ``Authorization: Bearer TOKEN``; AuthError unless it matches ``token``."""
    if token is None:
        raise AuthError("ratings export is disabled: start the hub with an admin token")
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise AuthError("missing or wrong operator token")

"""``session.auth = DeviceSignature(device_id, secret)``: the agent's ``requests`` session signs every
request with ``core.signing`` (version 2). Apart from ``core.signing`` because it needs ``requests``, a
terminal package: the hub, which verifies with the same functions, never imports this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

from .signing import request_headers


class DeviceSignature(requests.auth.AuthBase):
    """``session.auth = DeviceSignature(device_id, secret)``: every request goes out v2-signed.

    ``secret`` may be a callable returning the current secret, so a rotated one signs the next request.
    """

    def __init__(
        self,
        device_id: str,
        secret: bytes | Callable[[], bytes],
        clock: Callable[[], float] = time.time,
    ):
        self.device_id = device_id
        self._secret = secret
        self._clock = clock

    @property
    def secret(self) -> bytes:
        return self._secret() if callable(self._secret) else self._secret

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        if not isinstance(body, bytes):
            raise TypeError("DeviceSignature signs bytes bodies only, not streams")
        headers = request_headers(
            self.device_id,
            self.secret,
            request.method or "GET",
            request.path_url,
            body,
            int(self._clock()),
        )
        request.headers.update(headers)
        return request

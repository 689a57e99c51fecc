"""Schemathesis against the hub's own OpenAPI document: whatever it generates, correctly signed or not,
the hub answers without a server error. The document declares the signature headers, so schemathesis
makes values for them; about half the requests go with those values (unsigned, or signed wrongly), the
others with a correct signature of the generated body instead, so generated input also reaches past the
check. Bounded to a few hundred examples."""

from __future__ import annotations

import zlib

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from test_hub_support import ADMIN_TOKEN, DEVICE, register, signed_headers, thread_hub

from hub.app import create_app
from hub.storage import HubStore

EXAMPLES_PER_OPERATION = 40


class DeviceSigning(requests.auth.AuthBase):
    """Signs about half of what schemathesis made (chosen by a checksum of the request, so a failing
    example repeats), so generated input reaches past the signature check and generated headers too."""

    def __init__(self, secret: bytes):
        self.secret = secret

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        generated = str(request.headers.get("X-Kiosk-Signature", "")).encode("utf-8", "replace")
        if zlib.crc32(body + generated) % 2 == 0:
            request.headers.update(
                signed_headers(self.secret, body, DEVICE, method=request.method, target=request.path_url)
            )
        request.headers.setdefault("Authorization", f"Bearer {ADMIN_TOKEN}")
        return request


@pytest.fixture(scope="module")
def live_hub(tmp_path_factory):
    with thread_hub(tmp_path_factory.mktemp("hub")) as hub:
        hub.secret = register(hub.store)
        yield hub


def test_the_document_declares_the_signature_headers():
    document = _openapi_document()
    for path, method in (("/api/v1/events", "post"), ("/api/v1/devices/{device_id}/roster", "get")):
        headers = {p["name"] for p in document["paths"][path][method]["parameters"] if p["in"] == "header"}
        assert {"X-Kiosk-Device", "X-Kiosk-Timestamp", "X-Kiosk-Signature"} <= headers


def _openapi_document() -> dict:
    """The document the hub serves at /openapi.json; it does not depend on what the store holds."""
    store = HubStore("sqlite://")
    try:
        return create_app(store).openapi()
    finally:
        store.close()


schema = schemathesis.openapi.from_dict(_openapi_document())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_makes_a_server_error(case, live_hub):
    session = requests.Session()
    session.auth = DeviceSigning(live_hub.secret)
    response = case.call(base_url=live_hub.url, session=session)
    assert response.status_code < 500, response.text

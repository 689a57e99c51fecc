"""The hub's HTTP API as seen by one device (docs/protocol.md §2–3): signs each request and maps each answer
to a value or to one of three errors the agent treats differently.

- HubUnavailable: the network, a timeout, a 5xx or a 429 — try again later (``retry_after`` if told);
- HubRefused: 400/401/403/413… — configuration or a bug; retrying soon will not help;
- ChainConflict: 409 — the hub wants another ``expected_seq`` (gap) or refuses the log (fork, bad_hash);
- AnswerNotGenuine: an answer the agent would act on (200, 304, 409) without the hub's answer signature,
  or with a wrong one: a man in the middle, or a hub too old to sign; nothing of it is believed.

Every request is v2-signed by ``core.requests_auth.DeviceSignature`` and every answer checked with
``core.signing.answer_is_genuine`` (docs/protocol.md §1). Transport is any ``requests.Session`` (point it
anywhere, wrap it, or give it adapters); no retries here.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from core.photo import MAX_PHOTO_BYTES
from core.requests_auth import DeviceSignature
from core.signing import ANSWER_SIGNATURE_HEADER, SIGNATURE_HEADER, answer_is_genuine

DEFAULT_TIMEOUT_S = (5.0, 30.0)  # connect, read
EVENTS_PATH = "/api/v1/events"


class HubError(Exception):
    pass


class HubUnavailable(HubError):
    def __init__(self, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class HubRefused(HubError):
    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class AnswerNotGenuine(HubUnavailable):
    """The answer is not signed by the hub with this device's secret: kept pending, tried again later."""


# Answers whose content the agent acts on (acked_seq, roster, photo, expected_seq): each must be signed.
_SIGNED_STATUSES = frozenset({200, 304, 409})


class ChainConflict(HubError):
    def __init__(self, error: str, expected_seq: int, seq: int | None):
        super().__init__(f"{error} (hub expects seq {expected_seq})")
        self.error, self.expected_seq, self.seq = error, expected_seq, seq


@dataclass(frozen=True)
class RosterUpdate:
    version: str
    etag: str | None
    staff: list[dict[str, Any]]  # card, staff_no, name, title, photo_url


def encode_event(event: dict[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def batch_body(device_id: str, log_id: str, encoded_events: Sequence[bytes]) -> bytes:
    """The POST /api/v1/events body around events already encoded with ``encode_event``."""
    head = json.dumps({"device_id": device_id, "log_id": log_id}, separators=(",", ":"))[:-1]
    return head.encode("utf-8") + b',"events":[' + b",".join(encoded_events) + b"]}"


def _retry_after(response: requests.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
        return str(body.get("detail") or body.get("error") or body)[:200]
    except (ValueError, AttributeError):
        return response.reason or "no detail"


class HubClient:
    """Signed requests from one device to the hub."""

    def __init__(
        self,
        base_url: str,
        device_id: str,
        secret: bytes,
        session: requests.Session | None = None,
        timeout_s: tuple[float, float] = DEFAULT_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
    ):
        self.base_url = base_url.rstrip("/")  # with the path prefix a reverse proxy may serve the hub under
        self.device_id = device_id
        self.secret = secret  # the agent puts a rotated one here; the next request is signed with it
        self.session = session or requests.Session()
        self.timeout_s = timeout_s
        self._clock = clock

    def _send(
        self, method: str, url: str, body: bytes, headers: dict | None, max_bytes: int | None = None
    ) -> requests.Response:
        secret = self.secret  # the answer is checked with the secret the request was signed with
        try:
            response = self.session.request(
                method,
                url,
                data=body or None,
                headers=headers,
                auth=DeviceSignature(self.device_id, secret, self._clock),
                timeout=self.timeout_s,
                stream=max_bytes is not None,
            )
            if max_bytes is not None:
                _read_capped(response, max_bytes)
        except requests.RequestException as e:
            raise HubUnavailable(f"{type(e).__name__}: cannot reach the hub") from None
        if response.status_code in _SIGNED_STATUSES:
            request_signature = response.request.headers.get(SIGNATURE_HEADER, "")
            if isinstance(request_signature, bytes):  # requests' headers may hold either; ours are text
                request_signature = request_signature.decode("ascii", "replace")
            given = response.headers.get(ANSWER_SIGNATURE_HEADER)
            if not answer_is_genuine(
                secret, request_signature, response.status_code, response.content, given
            ):
                why = (
                    "without the hub's answer signature" if given is None else "with a wrong answer signature"
                )
                raise AnswerNotGenuine(
                    f"HTTP {response.status_code} {why}: not believed, events kept pending "
                    "(something between here and the hub alters answers, or the hub is older than 0.2.0)"
                )
        return response

    def _request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict | None = None,
        max_bytes: int | None = None,
    ):
        """``path`` (``/api/v1/…``) under the base URL, prefix kept: https://gov.example/kiosk-hub/api/v1/…"""
        response = self._send(method, self.base_url + path, body, headers, max_bytes)
        if response.status_code == 429 or response.status_code >= 500:
            raise HubUnavailable(
                f"HTTP {response.status_code}: {_error_text(response)}", _retry_after(response)
            )
        if response.status_code == 409:
            try:
                body_json = response.json()
                raise ChainConflict(
                    str(body_json["error"]), int(body_json["expected_seq"]), body_json.get("seq")
                )
            except (ValueError, KeyError, TypeError):
                raise HubUnavailable("HTTP 409 with an unreadable body") from None
        if response.status_code >= 400:
            raise HubRefused(response.status_code, _error_text(response))
        return response

    def _json(self, response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            # A proxy answering 200 with something else: the request may or may not have arrived.
            raise HubUnavailable(f"HTTP {response.status_code} with an unreadable body") from None

    def post_batch(self, body: bytes) -> int:
        """Send a body made by ``batch_body``; the hub's acked_seq for that log."""
        response = self._request("POST", EVENTS_PATH, body, {"Content-Type": "application/json"})
        acked = self._json(response).get("acked_seq")
        if type(acked) is not int:
            raise HubUnavailable("answer without acked_seq")
        return acked

    def get_roster(self, etag: str | None) -> RosterUpdate | None:
        """The device's roster, or None when it still matches ``etag``."""
        headers = {"If-None-Match": etag} if etag else {}
        response = self._request("GET", f"/api/v1/devices/{self.device_id}/roster", headers=headers)
        if response.status_code == 304:
            return None
        data = self._json(response)
        if not isinstance(data, dict) or "version" not in data or not isinstance(data.get("staff"), list):
            raise HubUnavailable("roster answer without version and a staff list")
        return RosterUpdate(str(data["version"]), response.headers.get("ETag"), data["staff"])

    def get_photo(self, photo_path: str) -> bytes:
        """A roster entry's ``photo_url``: a path on the hub ending in the photo's SHA-256, which the bytes
        must match; at most ``MAX_PHOTO_BYTES`` are read. HubUnavailable otherwise."""
        data = self._request("GET", photo_path, max_bytes=MAX_PHOTO_BYTES).content
        if hashlib.sha256(data).hexdigest() != photo_path.rsplit("/", 1)[-1].lower():
            raise HubUnavailable(f"photo {photo_path[-64:]}: the bytes do not match the SHA-256 in its URL")
        return data


class PhotoTooLarge(HubUnavailable):
    pass


def _read_capped(response: requests.Response, max_bytes: int) -> None:
    """Read a streamed answer's body into ``response.content``, refusing it past ``max_bytes``."""
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > max_bytes:
        response.close()
        raise PhotoTooLarge(f"photo of {length} bytes, at most {max_bytes}")
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            response.close()
            raise PhotoTooLarge(f"photo over {max_bytes} bytes")
        chunks.append(chunk)
    response._content = b"".join(chunks)  # what .content returns from now on

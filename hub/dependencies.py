"""What every route may ask for, as FastAPI dependencies: the store, the signed device behind a request,
the operator behind a bearer token. A route declares what it needs; the checks are written once, here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from .auth import AuthError, DeviceAuthenticator, check_bearer
from .config import HubConfig
from .errors import HubError
from .storage import HubStore


def get_store(request: Request) -> HubStore:
    return request.app.state.store


Store = Annotated[HubStore, Depends(get_store)]


def authenticated_device(request: Request, body: bytes = b"") -> str:
    """The device id of a correctly signed, fresh request over ``body``; 401 otherwise."""
    authenticator: DeviceAuthenticator = request.app.state.device_authenticator
    try:
        return authenticator.check(request.headers, body)
    except AuthError as e:
        raise HubError(401, "unauthorized", detail=str(e)) from None


def signed_device(request: Request) -> str:
    """The device behind a signed request without a body (GET)."""
    return authenticated_device(request)


Device = Annotated[str, Depends(signed_device)]


def require_operator(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    """The operator's bearer token given to ``kiosk hub`` (``--admin-token``); 401/403 otherwise."""
    token: str | None = request.app.state.admin_token
    try:
        check_bearer(authorization, token)
    except AuthError as e:
        raise HubError(401 if token else 403, "unauthorized", detail=str(e)) from None


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to pass ``limit`` bytes."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise HubError(413, "too_large", detail=f"body over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HubError(413, "too_large", detail=f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def get_config(request: Request) -> HubConfig:
    return request.app.state.config


Config = Annotated[HubConfig, Depends(get_config)]

"""What every route may ask for, as FastAPI dependencies: the store, the signed device behind a request,
the operator behind a bearer token. A route declares what it needs; the checks are written once, here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from .auth import AuthError, DeviceAuthenticator, check_bearer
from .config import HubConfig
from .console.session import COOKIE, Session, Signer
from .desk.roles import Principal
from .desk.store import DeskStore
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


# --- the 差评 desk: users, roles and section scope (API by bearer token, console by session) -------------


def get_desk(request: Request) -> DeskStore:
    return request.app.state.desk


Desk = Annotated[DeskStore, Depends(get_desk)]


def api_user(desk: Desk, authorization: Annotated[str | None, Header()] = None) -> Principal:
    """The desk user behind ``Authorization: Bearer TOKEN`` (``kiosk hub user token NAME``); 401 otherwise."""
    scheme, _, token = (authorization or "").partition(" ")
    principal = desk.principal_for_token(token.strip()) if scheme.lower() == "bearer" and token else None
    if principal is None:
        raise HubError(401, "unauthorized", detail="missing or wrong user token")
    return principal


ApiUser = Annotated[Principal, Depends(api_user)]


def item_reader(user: ApiUser) -> Principal:
    """A user who may read 差评 items (supervisor, or dept for its own section); 403 otherwise."""
    if not user.sees_items():
        raise HubError(403, "forbidden", detail=f"a {user.role} user sees no 差评 items")
    return user


ItemReader = Annotated[Principal, Depends(item_reader)]


def audit_reader(user: ApiUser) -> Principal:
    if not user.sees_audit():
        raise HubError(403, "forbidden", detail=f"a {user.role} user may not read the audit log")
    return user


AuditReader = Annotated[Principal, Depends(audit_reader)]


def scoped_dept(user: Principal, dept: str | None) -> str | None:
    """The section filter a request may use: a dept user's own, whatever it asked; 403 for another."""
    own = user.item_scope()
    if own is not None and dept not in (None, own):
        raise HubError(403, "forbidden", detail="a dept user sees only its own section")
    return dept


class ConsoleRedirect(Exception):
    """Answer a console page with a redirect (to the login or the password page)."""

    def __init__(self, location: str):
        super().__init__(location)
        self.location = location


@dataclass(frozen=True)
class ConsoleUser:
    principal: Principal
    session: Session


def console_session(request: Request, desk: Desk) -> ConsoleUser:
    """The user of a valid console session, even one that must still change its password."""
    signer: Signer = request.app.state.console_signer
    session = signer.read(request.cookies.get(COOKIE))
    principal = desk.principal(session.user) if session else None
    if session is None or principal is None:
        raise ConsoleRedirect("/console/login")
    return ConsoleUser(principal, session)


def console_user(user: Annotated[ConsoleUser, Depends(console_session)]) -> ConsoleUser:
    """The user of a valid console session that has set its own password; else to that page."""
    if user.session.must_change:
        raise ConsoleRedirect("/console/password")
    return user


SessionUser = Annotated[ConsoleUser, Depends(console_session)]
PageUser = Annotated[ConsoleUser, Depends(console_user)]

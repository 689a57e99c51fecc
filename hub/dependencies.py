"""What every route may ask for, as FastAPI dependencies: the store, the signed device behind a request,
the operator behind a bearer token. A route declares what it needs; the checks are written once, here.

Every refusal of a device is logged with the device id as claimed and the reason, and answered with one
and the same 401 body, so a client learns nothing of which check failed (docs/security.md).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from core.signing import Claimed

from .auth import DEVICE_HEADER, AuthError, DeviceAuthenticator, check_bearer
from .config import HubConfig
from .console.session import COOKIE, Session, Signer
from .desk.roles import Principal
from .desk.store import DeskStore
from .errors import HubError
from .storage import HubStore

log = logging.getLogger("hub")

UNAUTHORIZED = HubError(401, "unauthorized")  # the one body of every device refusal
ANSWER_KEY = "answer_key"  # request state: (secret, request signature) for signing the answer
BODY_READ_TIMEOUT_S = 30.0  # the agent's 512 KB batch takes seconds even on a poor link


async def get_store(request: Request) -> HubStore:
    """Async, though it awaits nothing: FastAPI runs a plain ``def`` dependency in a worker thread, one
    thread hop more for every request that names the store (an upload's cost was a fifth that hop)."""
    return request.app.state.store


Store = Annotated[HubStore, Depends(get_store)]


def request_target(request: Request) -> str:
    """The path and query as the device sent them, with the prefix the hub is served under."""
    scope = request.scope
    path = (scope.get("raw_path") or scope["path"].encode("utf-8")).decode("latin-1")
    root = scope.get("root_path") or ""
    if root and not path.startswith(root):  # a proxy stripped the prefix, uvicorn --root-path restores it
        path = root + path
    query = scope.get("query_string", b"").decode("latin-1")
    return path + (f"?{query}" if query else "")


def _refuse(request: Request, e: AuthError) -> HubError:
    device = (e.device_id or "-")[:64].encode("ascii", "backslashreplace").decode("ascii")
    # The database named too: a hub started on another data folder knows none of the devices registered
    # on the first (its log also said NEW EMPTY DATABASE when it made that one).
    log.warning(
        "device %r refused: %s (%s %s); registered devices are in %s",
        device,
        e,
        request.method,
        request.url.path[:200],
        request.app.state.store.location,
    )
    return UNAUTHORIZED


def claimed_device(request: Request) -> tuple[Claimed, bytes]:
    """The claim of a request's headers (device known, timestamp fresh), checked before any body is read."""
    authenticator: DeviceAuthenticator = request.app.state.device_authenticator
    try:
        return authenticator.claim(request.headers)
    except AuthError as e:
        raise _refuse(request, e) from None


async def claimed_device_off_loop(request: Request) -> tuple[Claimed, bytes]:
    """``claimed_device`` for an async route: when this process's cache does not hold the claimed device's
    secret, it is read from the database in a worker thread, so the event loop never waits for it."""
    store: HubStore = request.app.state.store
    if store.secret_cache.holds(request.headers.get(DEVICE_HEADER, "")):
        return claimed_device(request)
    return await run_in_threadpool(claimed_device, request)


def verified_device(request: Request, claim: Claimed, secret: bytes, body: bytes = b"") -> str:
    """The device id once the signature covers this request's method, target and body; its answer will be
    signed (docs/protocol.md §2)."""
    authenticator: DeviceAuthenticator = request.app.state.device_authenticator
    try:
        device_id = authenticator.verify(claim, secret, request.method, request_target(request), body)
    except AuthError as e:
        raise _refuse(request, e) from None
    request.state.answer_key = (secret, claim.signature)
    return device_id


def signed_device(request: Request) -> str:
    """The device behind a signed request without a body (GET)."""
    claim, secret = claimed_device(request)
    return verified_device(request, claim, secret)


Device = Annotated[str, Depends(signed_device)]


def require_operator(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    """The operator's bearer token given to ``kiosk hub``; 401/403 otherwise."""
    token: str | None = request.app.state.admin_token
    try:
        check_bearer(authorization, token)
    except AuthError as e:
        raise HubError(401 if token else 403, "unauthorized", detail=str(e)) from None


class BodyReads:
    """Request bodies being read at once, over every route; beyond ``limit`` the hub answers 429 at once
    rather than hold one more connection's buffers. Only the event loop's thread touches it."""

    def __init__(self, limit: int, timeout_s: float = BODY_READ_TIMEOUT_S):
        self.limit, self.used, self.timeout_s = limit, 0, timeout_s


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to pass ``limit`` bytes, with 429 when
    too many bodies are being read, with 408 when it takes longer than the hub allows."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise HubError(413, "too_large", detail=f"body over {limit} bytes")
    reads: BodyReads | None = getattr(request.app.state, "body_reads", None)
    timeout_s = reads.timeout_s if reads is not None else BODY_READ_TIMEOUT_S
    if reads is not None and reads.used >= reads.limit:
        raise HubError(429, "busy", headers={"Retry-After": "1"})

    async def read() -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HubError(413, "too_large", detail=f"body over {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    if reads is not None:
        reads.used += 1
    try:
        async with asyncio.timeout(timeout_s):
            return await read()
    except TimeoutError:
        raise HubError(408, "timeout", detail=f"body not received within {timeout_s:g} s") from None
    except ClientDisconnect:  # gone before its body was whole: nobody to answer, nothing to log as an error
        raise HubError(
            400, "incomplete", detail="the client went away before its body was complete"
        ) from None
    finally:
        if reads is not None:
            reads.used -= 1


async def get_config(request: Request) -> HubConfig:
    return request.app.state.config


Config = Annotated[HubConfig, Depends(get_config)]


# --- the 差评 desk: users, roles and section scope (API by bearer token, console by session) -------------


async def get_desk(request: Request) -> DeskStore:
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
    found = desk.session_principal(session.user) if session else None
    if session is None or found is None or not signer.still_valid(session, found[1]):
        raise ConsoleRedirect("/console/login")  # no session, a disabled user, or a password since changed
    return ConsoleUser(found[0], session)


def console_user(user: Annotated[ConsoleUser, Depends(console_session)]) -> ConsoleUser:
    """The user of a valid console session that has set its own password; else to that page."""
    if user.session.must_change:
        raise ConsoleRedirect("/console/password")
    return user


SessionUser = Annotated[ConsoleUser, Depends(console_session)]
PageUser = Annotated[ConsoleUser, Depends(console_user)]

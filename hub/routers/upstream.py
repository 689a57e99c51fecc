"""Routes for the outbox of ratings reported to the province (docs/upstream.md): the records by status,
one record with its history, the daily reconciliation, and a person's actions (resend after a fix, link
to a case number, mark not reportable, retry now), each appended with who and when."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from ..dependencies import ApiUser, Store
from ..desk.roles import ADMIN, SUPERVISOR, Principal
from ..errors import HubError
from ..ratings import time_bound
from ..upstream import outbox, rules


def upstream_reader(user: ApiUser) -> Principal:
    """Supervisors and admins read the outbox (no personal data in it); 403 for other roles."""
    if user.role not in (SUPERVISOR, ADMIN):
        raise HubError(403, "forbidden", detail=f"a {user.role} user does not see the upstream outbox")
    return user


def upstream_actor(user: ApiUser) -> Principal:
    """Only a supervisor (局机关大督查) acts on upstream records; 403 otherwise."""
    if user.role != SUPERVISOR:
        raise HubError(403, "forbidden", detail="only a supervisor acts on upstream records")
    return user


Reader = Annotated[Principal, Depends(upstream_reader)]
Actor = Annotated[Principal, Depends(upstream_actor)]
router = APIRouter(tags=["upstream"])
Status = Literal[
    "pending", "sent", "rejected", "failing", "needs_linkage", "not_reportable", "awaiting_detail"
]


class Action(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["resend", "link", "not_reportable", "retry"]
    note: str | None = Field(default=None, max_length=500)
    projectNo: str | None = Field(default=None, max_length=50)  # noqa: N815 - the national field name
    taskCode: str | None = Field(default=None, max_length=64)  # noqa: N815
    taskName: str | None = Field(default=None, max_length=200)  # noqa: N815


class Resend(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=500)


def _sender_state(request: Request) -> dict[str, Any] | None:
    sender = getattr(request.app.state, "upstream_sender", None)
    return sender.state() if sender is not None else None


@router.get("/api/v1/manage/upstream")
def list_upstream(
    store: Store,
    _user: Reader,
    request: Request,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    after: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> dict[str, Any]:
    with store.engine.connect() as conn:
        records = outbox.list_records(conn, status, limit=limit, after_id=after)
        counts = outbox.counts(conn)
    return {"counts": counts, "sender": _sender_state(request), "count": len(records), "records": records}


@router.get("/api/v1/manage/upstream/reconciliation")
def reconciliation(
    store: Store,
    _user: Reader,
    from_: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    to: Annotated[str | None, Query(max_length=10)] = None,
) -> dict[str, Any]:
    try:
        first = time_bound(from_, end=False)[:10] if from_ else None
        last = time_bound(to, end=True)[:10] if to else None
    except ValueError:
        raise HubError(400, "malformed", detail="from/to: expected yyyy-MM-dd") from None
    with store.engine.connect() as conn:
        days = outbox.reconciliation(conn, first, last)
    return {"days": days, "agrees": all(d["agrees"] for d in days)}


@router.get("/api/v1/manage/upstream/{record_id}")
def get_upstream(
    store: Store, _user: Reader, record_id: Annotated[int, Path(ge=1, le=2**31)]
) -> dict[str, Any]:
    return _record(store, record_id)


def _record(store, record_id: int) -> dict[str, Any]:
    with store.engine.connect() as conn:
        found = conn.execute(outbox.outbox.select().where(outbox.outbox.c.id == record_id)).first()
        if found is None:
            raise HubError(404, "not_found", detail=f"no upstream record {record_id}")
        return {**outbox.item(found), "history": outbox.history(conn, record_id)}


def _act(store, who: str, record_id: int, what: str, **detail: Any) -> dict[str, Any]:
    try:
        with store.engine.begin() as conn:
            outbox.act(conn, record_id, what, who, **detail)
    except outbox.ActionError as e:
        error = {404: "not_found", 409: "conflict"}.get(e.status, "malformed")
        raise HubError(e.status, error, detail=str(e)) from None
    return _record(store, record_id)


@router.post("/api/v1/manage/upstream/{record_id}/resend")
def resend(
    store: Store, user: Actor, record_id: Annotated[int, Path(ge=1, le=2**31)], body: Resend | None = None
) -> dict[str, Any]:
    """Send a rejected record again (after fixing the cause); 409 for a record in another state."""
    return _act(store, user.name, record_id, "resend", note=body.note if body else None)


@router.post("/api/v1/manage/upstream/{record_id}/actions")
def act(
    store: Store, user: Actor, record_id: Annotated[int, Path(ge=1, le=2**31)], body: Action
) -> dict[str, Any]:
    detail = body.model_dump(exclude={"action"})
    return _act(store, user.name, record_id, body.action, **detail)


assert set(Status.__args__) == set(rules.STATUSES)  # type: ignore[attr-defined]

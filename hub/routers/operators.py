"""Routes for the bureau's operators: the ratings export in the national field names, behind the
operator's bearer token."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask

from core.contact import ContactError, open_contact

from ..auth import token_identity
from ..dependencies import Store, require_operator
from ..errors import HubError
from ..export_stream import export_document
from ..ratings import time_bound
from ..storage import HubStore

log = logging.getLogger("hub")

router = APIRouter(tags=["operators"], dependencies=[Depends(require_operator)])


@router.get("/api/v1/ratings", responses={200: {"content": {"text/csv": {}}}, 401: {}, 403: {}})
def get_ratings(
    request: Request,
    store: Store,
    from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    to: Annotated[str | None, Query(max_length=40)] = None,
    format: Literal["json", "csv"] = "json",  # the contract names it so
) -> Response:
    try:
        first = time_bound(from_, end=False) if from_ else None
        last = time_bound(to, end=True) if to else None
    except ValueError:
        raise HubError(400, "malformed", detail="from/to: expected yyyy-MM-dd or an ISO date-time") from None
    stack = ExitStack()
    totals, chunks = stack.enter_context(
        export_document(store.engine, first, last, format, _contact_opener(store))
    )
    # Who took the ratings with their opened phone numbers: the token's identity, never the token.
    log.warning(
        "ratings export by operator %s from %s: format %s, from %s to %s, %d ratings",
        token_identity(request.app.state.admin_token),
        request.client.host if request.client else "-",
        format,
        first or "-",
        last or "-",
        totals.count,
    )

    def body() -> Iterator[bytes]:
        try:
            for chunk in chunks:
                yield chunk.encode("utf-8")
        finally:
            stack.close()

    media_type = "text/csv; charset=utf-8" if format == "csv" else "application/json"
    # stack.close again after the response: a client gone before the first byte never runs body's finally.
    return StreamingResponse(
        body(), media_type=media_type, headers=totals.headers(), background=BackgroundTask(stack.close)
    )


def _contact_opener(store: HubStore) -> Callable[[str], str | None]:
    def opener(sealed: str) -> str | None:
        try:
            return open_contact(sealed, store.private_key)
        except ContactError:
            log.warning("a sealed contact could not be opened with this hub's key")
            return None

    return opener

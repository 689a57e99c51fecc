"""Routes for the bureau's operators: the ratings export in the national field names, behind the
operator's bearer token."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from core.contact import ContactError, open_contact

from ..auth import token_identity
from ..dependencies import Store, require_operator
from ..errors import HubError
from ..ratings import export_record, time_bound, to_csv
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
    records = [export_record(row, _contact_opener(store)) for row in store.ratings_between(first, last)]
    # Who took the opened phone numbers, and which: the token's identity, never the token or a number.
    log.warning(
        "ratings export by operator %s from %s: format %s, from %s to %s, %d ratings, %d contacts opened",
        token_identity(request.app.state.admin_token),
        request.client.host if request.client else "-",
        format,
        first or "-",
        last or "-",
        len(records),
        sum(1 for r in records if r.get("contact")),
    )
    unlinked = sum(1 for r in records if not r["linked"])
    duplicates = sum(1 for r in records if r["duplicate"])
    counts = {
        "X-Rating-Count": str(len(records)),
        "X-Unlinked-Count": str(unlinked),
        "X-Duplicate-Count": str(duplicates),
    }
    if format == "csv":
        return PlainTextResponse(to_csv(records), media_type="text/csv; charset=utf-8", headers=counts)
    return JSONResponse(
        {"count": len(records), "unlinked": unlinked, "duplicates": duplicates, "ratings": records},
        headers=counts,
    )


def _contact_opener(store: HubStore) -> Callable[[str], str | None]:
    def opener(sealed: str) -> str | None:
        try:
            return open_contact(sealed, store.private_key)
        except ContactError:
            log.warning("a sealed contact could not be opened with this hub's key")
            return None

    return opener

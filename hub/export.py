"""``kiosk hub ratings export``: the ratings export of ``GET /api/v1/ratings`` from the command line, on
the hub's own database (no HTTP, no operator token: whoever may read the database may read this)."""

from __future__ import annotations

import sys

from .cli import UsageError, _open_store, _run
from .export_stream import Format, export_document
from .ratings import time_bound
from .routers.operators import _contact_opener


@_run
def ratings_export(args) -> int:
    try:
        first = time_bound(args.from_, end=False) if args.from_ else None
        last = time_bound(args.to, end=True) if args.to else None
    except ValueError:
        raise UsageError("--from/--to: expected yyyy-MM-dd or an ISO date-time") from None
    store = _open_store(args)
    try:
        fmt: Format = "csv" if args.format == "csv" else "json"
        with export_document(store.engine, first, last, fmt, _contact_opener(store)) as (totals, chunks):
            for chunk in chunks:  # the same document as GET /api/v1/ratings, a page at a time
                sys.stdout.write(chunk)
    finally:
        store.close()
    if args.format != "csv":
        sys.stdout.write("\n")
    print(f"kiosk hub: {totals.count} ratings", file=sys.stderr)
    return 0

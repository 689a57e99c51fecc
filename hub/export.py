"""``kiosk hub ratings export``: the ratings export of ``GET /api/v1/ratings`` from the command line, on
the hub's own database (no HTTP, no operator token: whoever may read the database may read this)."""

from __future__ import annotations

import json
import sys

from .cli import UsageError, _open_store, _run
from .ratings import export_record, time_bound, to_csv
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
        records = [export_record(row, _contact_opener(store)) for row in store.ratings_between(first, last)]
    finally:
        store.close()
    if args.format == "csv":
        sys.stdout.write(to_csv(records))
    else:
        unlinked = sum(1 for r in records if not r["linked"])
        duplicates = sum(1 for r in records if r["duplicate"])
        answer = {"count": len(records), "unlinked": unlinked, "duplicates": duplicates, "ratings": records}
        json.dump(answer, sys.stdout, ensure_ascii=False)  # the same document as GET /api/v1/ratings
        sys.stdout.write("\n")
    print(f"kiosk hub: {len(records)} ratings", file=sys.stderr)
    return 0

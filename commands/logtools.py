"""``kiosk export`` and ``kiosk store verify``: the event log for technicians and auditors."""

from __future__ import annotations

import csv
import json
import sys

from core.config import load_config
from core.spreadsheet import safe_row
from core.store import EventLog

CSV_COLUMNS = ("log_id", "seq", "id", "type", "at", "payload", "prev_hash", "hash")


def export(args) -> int:
    config = load_config(args.config)
    with EventLog(config.store_path) as log:
        out = sys.stdout
        if args.format == "csv":
            writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n")
            writer.writeheader()
            for event in log.events_after(0):
                row = {**event, "payload": json.dumps(event["payload"], ensure_ascii=False)}
                writer.writerow(safe_row(row))  # no cell a spreadsheet would run as a formula
        else:
            for event in log.events_after(0):
                out.write(json.dumps(event, ensure_ascii=False) + "\n")
    return 0


def verify(args) -> int:
    config = load_config(args.config)
    with EventLog(config.store_path) as log:
        result = log.verify()
    if result.ok:
        print(f"ok: {result.count} events, chain intact ({config.store_path})")
        return 0
    print(
        f"FAILED at seq {result.first_bad_seq}: {result.problem} ({result.count} events verified before it)"
    )
    return 1

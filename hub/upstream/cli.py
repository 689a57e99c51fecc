"""``kiosk hub upstream …``: what has been reported to the province, and a person's actions on it.

``status`` prints the counts by status, the daily reconciliation and the records that wait for someone;
``send`` drains what is due now (for cron or a first backlog; the running hub sends by itself);
``retry``, ``resend``, ``link`` and ``not-reportable`` are appended actions, with who did them.
"""

from __future__ import annotations

import getpass
import time
from datetime import date, timedelta

from ..cli import EXIT_FAILURE, EXIT_OK, UsageError, _hub_config, _open_store, _run
from ..config import upstream_target
from . import outbox, rules
from .sender import Sender

SHOWN_RECORDS = 20


def _who() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@_run
def status(args) -> int:
    """`kiosk hub upstream status`"""
    store = _open_store(args)
    if args.status and args.status not in rules.STATUSES:
        raise UsageError(f"--status {args.status!r}: expected one of {', '.join(rules.STATUSES)}")
    first = (date.today() - timedelta(days=max(args.days, 1) - 1)).isoformat()
    with store.engine.connect() as conn:
        counts = outbox.counts(conn)
        days = outbox.reconciliation(conn, first=first)
        shown = {
            s: outbox.list_records(conn, s, limit=SHOWN_RECORDS)
            for s in ([args.status] if args.status else [rules.FAILING, rules.REJECTED, rules.NEEDS_LINKAGE])
        }
    print("status            records")
    for s in rules.STATUSES:
        print(f"{s:<17} {counts[s]:>7}")
    print()
    print("day         held   sent  waiting  agrees")
    for d in days:
        waiting = d["recorded"] - d["sent"] - d["not_reportable"]
        print(f"{d['day']}  {d['held']:>5}  {d['sent']:>5}  {waiting:>7}  {'yes' if d['agrees'] else 'NO'}")
    for s, items in shown.items():
        if items:
            print(f"\n{s} (first {SHOWN_RECORDS}):")
        for r in items:
            why = r["message"] or r["lastError"] or ""
            key = f"{r['projectNo'] or '-'}/{r['assessNumber'] or '-'}"
            print(f"  #{r['id']} {key} attempts {r['attempts']}: {why}")
    return EXIT_OK


@_run
def send(args) -> int:
    """`kiosk hub upstream send`: exit 0 when nothing sendable is left, 1 otherwise."""
    config = _hub_config(args)
    if config.upstream is None:
        raise UsageError(f"{config.path or 'no configuration file'}: [upstream]: no target to send to")
    store = _open_store(args, config)
    sender = Sender(store.engine, upstream_target(config.upstream, config.path))
    try:
        sender.drain(args.timeout)
    finally:
        sender.stop()
    with store.engine.connect() as conn:
        counts = outbox.counts(conn)
        left = outbox.left_to_send(conn, time.time())
    print(f"sent by this run: {sender.sent_total}")
    print(", ".join(f"{s} {n}" for s, n in counts.items() if n) or "nothing to report")
    return EXIT_OK if left == 0 else EXIT_FAILURE


def _act(args, what: str, **detail) -> int:
    store = _open_store(args)
    try:
        with store.engine.begin() as conn:
            record = outbox.act(conn, args.id, what, _who(), **detail)
    except outbox.ActionError as e:
        raise UsageError(str(e)) from None
    print(f"#{record['id']} {record['projectNo'] or '-'}/{record['assessNumber'] or '-'}: {record['status']}")
    return EXIT_OK


@_run
def resend(args) -> int:
    return _act(args, "resend", note=args.note or None)


@_run
def link(args) -> int:
    return _act(
        args,
        "link",
        projectNo=args.project_no,
        taskCode=args.task_code,
        taskName=args.task_name,
        note=args.note or None,
    )


@_run
def not_reportable(args) -> int:
    return _act(args, "not_reportable", note=args.reason)


@_run
def retry(args) -> int:
    store = _open_store(args)
    with store.engine.begin() as conn:
        count = outbox.retry_failing(conn, _who())
    print(f"{count} failing records due now")
    return EXIT_OK

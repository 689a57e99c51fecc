"""``kiosk hub verify``: everything the hub holds checked against what it can be re-derived from.

A list of checks, each a function of the store that yields the differences it finds (text naming the
record and what differs). Built in: every stored kiosk log's hash chain, the ratings and opened_cases
tables re-derived from those events, the phone ratings' own chain, the 差评 desk's action chain and its
items' withdrawals after a correction to good (改评价). Another module adds its own with
``@register("name")`` (and its module is listed in ``CHECK_MODULES`` so the command imports it). The
command prints one line a check, names the first difference of each, and exits 1 if any differs.
What this guarantees, and what not: docs/security.md.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import cast

from sqlalchemy import select

from core.domain import is_bad
from core.events import ZERO_HASH, event_hash
from core.progress import advance, set_total, task

from .derived import derive_opened_cases, derive_ratings, opened_cases, phone_row_hash
from .desk import workflow as wf
from .desk.store import check_desk_chain
from .desk.tables import actions as desk_actions
from .desk.tables import items as desk_items
from .schema import logs, phone_ratings, ratings
from .storage import HubStore

Check = Callable[[HubStore], Iterator[str]]
CHECKS: dict[str, Check] = {}
# Modules holding checks of their own, imported before the checks run.
CHECK_MODULES: list[str] = []
CHECK_UNITS = {"event chains": "events", "derived tables": "events", "phone ratings chain": "ratings"}
PROGRESS_EVERY = 10_000  # events between two steps of the progress bar (a terminal's only)


def register(name: str) -> Callable[[Check], Check]:
    """Add a check to ``kiosk hub verify``; its differences are named by what it yields."""

    def add(check: Check) -> Check:
        if name in CHECKS:
            raise ValueError(f"a check named {name!r} is registered already")
        CHECKS[name] = check
        return check

    return add


@dataclass(frozen=True)
class CheckResult:
    name: str
    differences: int
    first: str | None

    @property
    def ok(self) -> bool:
        return self.differences == 0


def run_checks(store: HubStore, names: list[str] | None = None) -> list[CheckResult]:
    for module in CHECK_MODULES:
        importlib.import_module(module)
    results = []
    for name, check in CHECKS.items():
        if names and name not in names:
            continue
        first, count = None, 0
        with task(
            f"verify: {name}", unit=CHECK_UNITS.get(name, "records")
        ):  # on a terminal only (core/progress.py)
            for difference in check(store):
                first = first or difference
                count += 1
        results.append(CheckResult(name, count, first))
    return results


def _logs(store: HubStore) -> list[tuple[str, str, int, str]]:
    with store.engine.connect() as conn:
        query = select(logs.c.device_id, logs.c.log_id, logs.c.acked_seq, logs.c.head_hash)
        rows = conn.execute(query.order_by(logs.c.device_id, logs.c.log_id)).all()
        return cast(list[tuple[str, str, int, str]], [tuple(r) for r in rows])


@register("event chains")
def check_event_chains(store: HubStore) -> Iterator[str]:
    """Every stored event hashes to its hash, links to the one before, and the log's head is its last."""
    held_logs = _logs(store)
    set_total(sum(acked for _d, _l, acked, _h in held_logs))
    for device_id, log_id, acked_seq, head_hash in held_logs:
        where = f"device {device_id} log {log_id}"
        prev, expected_seq = ZERO_HASH, 1
        for e in store.log_events(device_id, log_id):
            if e["seq"] != expected_seq:
                yield f"{where}: seq {expected_seq} missing (next held is {e['seq']})"
                break
            if e["prev_hash"] != prev:
                yield f"{where} seq {e['seq']}: prev_hash does not link to seq {e['seq'] - 1}"
                break
            if event_hash(e) != e["hash"]:
                yield f"{where} seq {e['seq']}: content does not match its hash"
                break
            prev, expected_seq = e["hash"], expected_seq + 1
            if expected_seq % PROGRESS_EVERY == 0:
                advance(PROGRESS_EVERY)
        else:
            if (expected_seq - 1, prev) != (acked_seq, head_hash):
                yield f"{where}: the log's head says seq {acked_seq}, the events end at seq {expected_seq - 1}"
        advance(max(0, acked_seq - (expected_seq // PROGRESS_EVERY) * PROGRESS_EVERY))  # the rest


def _compare(where: str, table: str, derived: dict[int, dict], stored: dict[int, dict]) -> Iterator[str]:
    for seq in sorted(set(derived) | set(stored)):
        if seq not in stored:
            yield f"{where}: {table} row for seq {seq} missing"
        elif seq not in derived:
            yield f"{where}: {table} row for seq {seq} has no event it derives from"
        else:
            for key, value in derived[seq].items():
                if stored[seq].get(key) != value:
                    yield f"{where}: {table} seq {seq} {key} differs from its event"
                    break


def _stored(store: HubStore, table, device_id: str, log_id: str, columns) -> dict[int, dict]:
    with store.engine.connect() as conn:
        query = select(*(table.c[c] for c in columns)).where(
            (table.c.device_id == device_id) & (table.c.log_id == log_id)
        )
        return {r["seq"]: dict(r) for r in conn.execute(query).mappings()}


@register("derived tables")
def check_derived_tables(store: HubStore) -> Iterator[str]:
    """ratings and opened_cases, re-derived from every stored event, equal what the tables hold."""
    held_logs = _logs(store)
    set_total(sum(acked for _d, _l, acked, _h in held_logs))
    for device_id, log_id, _acked, _head in held_logs:
        where = f"device {device_id} log {log_id}"
        held = store.log_events(device_id, log_id)
        advance(len(held))
        rating_rows = derive_ratings(held)
        columns = [c.name for c in ratings.c if c.name not in ("device_id", "log_id")]
        yield from _compare(
            where, "ratings", rating_rows, _stored(store, ratings, device_id, log_id, columns)
        )
        case_rows = derive_opened_cases(held)
        stored_cases = _stored(store, opened_cases, device_id, log_id, ("seq", "case_no", "payload"))
        yield from _compare(where, "opened_cases", case_rows, stored_cases)
    yield from _orphans(store)


def _orphans(store: HubStore) -> Iterator[str]:
    """Derived rows of a log the hub holds no events of."""
    known = {(d, lg) for d, lg, _a, _h in _logs(store)}
    with store.engine.connect() as conn:
        for table in (ratings, opened_cases):
            for device_id, log_id in conn.execute(select(table.c.device_id, table.c.log_id).distinct()):
                if (device_id, log_id) not in known:
                    yield f"{table.name}: rows of device {device_id} log {log_id}, which the hub holds no events of"


@register("phone ratings chain")
def check_phone_chain(store: HubStore) -> Iterator[str]:
    """Phone ratings form one unbroken chain from seq 1, each row matching its hash."""
    with store.engine.connect() as conn:
        rows = conn.execute(select(phone_ratings).order_by(phone_ratings.c.chain_seq)).mappings().all()
    prev = ZERO_HASH
    set_total(len(rows))
    for expected, row in enumerate(rows, 1):
        advance()
        where = f"phone rating of device {row['device_id']} token {row['nonce']}"
        if row["chain_seq"] != expected:
            yield f"{where}: chain seq {row['chain_seq']}, expected {expected} (a row removed or inserted)"
            return
        if row["prev_hash"] != prev:
            yield f"{where} (chain seq {expected}): prev_hash does not link to the row before"
            return
        if phone_row_hash(dict(row)) != row["hash"]:
            yield f"{where} (chain seq {expected}): content does not match its hash"
            return
        prev = row["hash"]


@register("desk action chain")
def check_desk_actions(store: HubStore) -> Iterator[str]:
    """The 差评 desk's hash-chained record of every action and every number reveal."""
    problem = check_desk_chain(store)
    if problem:
        yield problem


@register("desk corrections")
def check_desk_corrections(store: HubStore) -> Iterator[str]:
    """改评价 on the desk: no 差评 item still open whose rating the rater corrected to good (its detail in),
    and no item withdrawn whose rating was not (docs/console.md)."""
    with store.engine.connect() as conn:
        latest = (
            select(desk_actions.c.status)
            .where(desk_actions.c.item_id == desk_items.c.id)
            .order_by(desk_actions.c.seq.desc())
            .limit(1)
            .correlate(desk_items)
            .scalar_subquery()
        )
        rows = conn.execute(
            select(
                desk_items.c.id,
                latest.label("status"),
                ratings.c.satisfaction,
                ratings.c.corrected_from,
                ratings.c.reasons,
            ).select_from(
                desk_items.join(
                    ratings,
                    (ratings.c.device_id == desk_items.c.device_id)
                    & (ratings.c.log_id == desk_items.c.log_id)
                    & (ratings.c.seq == desk_items.c.seq),
                )
            )
        ).all()
    for item_id, status, level, first, reasons in rows:
        corrected_good = first is not None and reasons is not None and not is_bad(cast(int, level))
        if corrected_good and (status or wf.OPEN) not in wf.FINISHED:
            yield f"desk item {item_id}: its rating was corrected to {level} but the item is {status or wf.OPEN}"
        elif status == wf.WITHDRAWN and not corrected_good:
            yield f"desk item {item_id}: withdrawn, but its rating was not corrected to a good level"


def phone_chain_head(store: HubStore) -> tuple[int, str]:
    """(chain seq, hash) of the newest phone rating, (0, zeros) for none: to compare with the journal."""
    with store.engine.connect() as conn:
        row = conn.execute(
            select(phone_ratings.c.chain_seq, phone_ratings.c.hash)
            .order_by(phone_ratings.c.chain_seq.desc())
            .limit(1)
        ).first()
    return (row[0], row[1]) if row else (0, ZERO_HASH)


def report(results: list[CheckResult]) -> str:
    lines = []
    for r in results:
        lines.append(
            f"{'ok' if r.ok else 'FAILED':<7}{r.name}"
            + ("" if r.ok else f": {r.differences} differences; first: {r.first}")
        )
    return "\n".join(lines)

"""The desk's record as the figures read it: each 差评 item in its rating's cell, whether the supervisor
marked it 不属实, whether the rater left a phone number and a 回访 reached them, its deadline and the
day it was closed. Read at the moment of asking (the desk's record grows after the rating). An item
withdrawn because the rater corrected the 差评 to a good level is not a 差评 any more and is left out.

``desk_items`` reads item by item (the rule as written, which the tests compare against);
``desk_counts`` asks the database for the same counts already summed per device and key, as the cells
are read, so a quarter's 100,000 items never come to Python: it reads ``desk_item_facts`` (what the
figures count of each item, kept by the desk in the transaction of each change and checked by
``stats --verify``), one row per item, not each item joined to its rating and its actions."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Integer, String, and_, case, func, select, text

from ..desk import workflow as wf
from ..desk.store import items_with_their_ratings
from ..desk.tables import actions, item_facts, items
from ..schema import phone_ratings, ratings
from . import model as m


def desk_items(
    conn, first: str | None, last: str | None, deadline_of: Callable[[date], date | None] | None
) -> Iterator[m.DeskItem]:
    from .store import local_day

    query = select(
        items.c.id,
        items.c.device_id,
        items.c.assess_time,
        items.c.received,
        func.coalesce(ratings.c.staff_no, phone_ratings.c.staff_no).label("staff_no"),
        func.coalesce(ratings.c.item_code, phone_ratings.c.item_code).label("item_code"),
        func.coalesce(ratings.c.contact_sealed, phone_ratings.c.contact_sealed).label("contact_sealed"),
    ).select_from(items_with_their_ratings())
    in_period = select(items.c.id)
    if first is not None:
        query = query.where(items.c.assess_time >= first + " 00:00:00")
        in_period = in_period.where(items.c.assess_time >= first + " 00:00:00")
    if last is not None:
        query = query.where(items.c.assess_time <= last + " 23:59:59")
        in_period = in_period.where(items.c.assess_time <= last + " 23:59:59")
    rows = conn.execute(query).mappings().all()
    if not rows:
        return
    history: dict[int, list[tuple[str, dict, str, str]]] = {}
    acts = select(
        actions.c.item_id, actions.c.action, actions.c.payload, actions.c.status, actions.c.at
    ).where(actions.c.item_id.in_(in_period.scalar_subquery()))
    for item_id, action, payload, status, at in conn.execute(acts.order_by(actions.c.seq)).all():
        history.setdefault(item_id, []).append((action, json.loads(payload), status, at))
    for r in rows:
        record = history.get(r["id"], [])
        status = record[-1][2] if record else wf.OPEN
        if status == wf.WITHDRAWN:
            continue  # the rater corrected it to a good level: no 差评 to respond to (its rating counts good)
        closed = next((local_day(at) for a, _, _, at in record if a == wf.CLOSE), None)
        yield m.DeskItem(
            cell=m.Cell(r["assess_time"][:10], r["device_id"], r["staff_no"] or "", r["item_code"] or ""),
            not_adopted=status == wf.NOT_ADOPTED,
            real_name=r["contact_sealed"] is not None,
            called_back=any(a == wf.CALLBACK and p.get("reached") is True for a, p, _, _ in record),
            deadline=deadline_of(date.fromisoformat(r["received"])) if deadline_of else None,
            closed_on=date.fromisoformat(closed) if closed else None,
        )


def desk_counts(
    conn,
    first: str | None,
    last: str | None,
    deadline_of: Callable[[date], date | None] | None,
    today: date,
    keep: tuple[str, ...],
    staff: str | None = None,
    item: str | None = None,
    by_device: bool = True,
    fields: tuple[str, ...] = m.DESK_FIELDS,
) -> list[tuple[m.Cell, m.Counts]]:
    """The desk's counts (``m.desk_deltas`` of ``desk_items``) of the 差评 whose rating fell on days
    ``first``…``last``, summed in SQL per device and the columns in ``keep`` (``staff_no``, ``item_code``,
    ``day``, ``month``); each row's cell day is the first day of its items, as ``FigureStore`` reads the
    cells (the caller cuts the period where a device changed section). ``by_device=False`` (with
    something in ``keep``): not per device, each row's device the empty key. ``fields=("not_adopted",)``:
    only the 不属实 items are read (the others' counts are left 0), for a caller that needs no more (the
    satisfaction and participation rates: a year's trend reads 19,000 items, not 400,000).

    The same rule as ``desk_deltas``, over ``desk_item_facts`` (each item's cell, newest status, phone
    number, 回访 and first 办结, kept by the desk with each action): withdrawn items are left out; a deadline comes from the received day through
    ``deadline_of`` (computed here for each distinct received day, passed to SQL as a CASE); the item
    was closed on time when its first 办结 happened before local midnight after the deadline.
    """
    f = item_facts.c
    period = []
    if first is not None:
        period.append(f.day >= first)
    if last is not None:
        period.append(f.day <= last)
    only_not_adopted = tuple(fields) == ("not_adopted",)
    if only_not_adopted:  # no deadline is needed: the received days are not read
        received_days: Any = []
    elif set(fields) == set(m.DESK_FIELDS):
        received_days = conn.execute(select(f.received).where(*period).distinct()).scalars().all()
        if not received_days:
            return []
    else:
        raise ValueError("fields: all the desk's, or only not_adopted")
    bounds: dict[str, str] = {}  # received day -> the instant (UTC) the deadline's day ends
    overdue: list[str] = []  # received days whose deadline is before today
    for received in received_days:
        due = deadline_of(date.fromisoformat(received)) if deadline_of else None
        if due is None:
            continue
        bounds[received] = _utc_start_of(due + timedelta(days=1))
        if today > due:
            overdue.append(received)

    keys: list[Any] = [f.device_id.label("device_id")] if by_device or not keep else []
    if "staff_no" in keep:
        keys.append(f.staff_no.label("staff_no"))
    if "item_code" in keep:
        keys.append(f.item_code.label("item_code"))
    if "day" in keep:
        keys.append(f.day.label("key_day"))
    elif "month" in keep:
        keys.append(func.substr(f.day, 1, 7).label("key_month"))
    # One row per item (its facts kept by the desk with each action); summed below.
    each = select(
        *keys,
        f.day.label("day"),
        f.received,
        (f.status == wf.NOT_ADOPTED).label("not_adopted"),
        (f.real_name == 1).label("real_name"),
        (f.called_back == 1).label("reached"),
        f.closed_at,
    ).where(*period, f.status != wf.WITHDRAWN)
    if only_not_adopted:
        each = each.where(f.status == wf.NOT_ADOPTED)
    if staff is not None:
        each = each.where(f.staff_no == staff)
    if item is not None:
        each = each.where(f.item_code == item)
    # Each received day's deadline joined as a small table (one hash look-up a row; a CASE of 90 days
    # was most of a quarter's time at city scale); closed in time when the first 办结's instant (UTC,
    # one text format: ``desk_item_facts.closed_at``) is before the end of the deadline's day.
    deadlines = _deadlines(conn, {r: (b, int(r in overdue)) for r, b in bounds.items()})
    e = each.subquery()
    joined = e.outerjoin(deadlines, deadlines.c.received == e.c.received)
    adopted = ~e.c.not_adopted
    real_name = and_(adopted, e.c.real_name)
    has_deadline = and_(adopted, deadlines.c.bound.is_not(None))
    closed = e.c.closed_at.is_not(None)
    past_due = deadlines.c.overdue == 1
    closed_in_time = e.c.closed_at < deadlines.c.bound

    def total(condition) -> Any:
        return func.sum(case((condition, 1), else_=0))

    by = [e.c[k.name] for k in keys]
    query = (
        select(
            *by,
            func.min(e.c.day).label("first_day"),
            total(e.c.not_adopted).label("not_adopted"),
            total(real_name).label("real_name_bad"),
            total(and_(real_name, e.c.reached)).label("called_back"),
            total(and_(has_deadline, closed | past_due)).label("response_due"),
            total(and_(has_deadline, closed, closed_in_time)).label("on_time"),
        )
        .select_from(joined)
        .group_by(*by)
    )
    out = []
    for r in conn.execute(query):
        values = r._mapping
        cell = m.Cell(
            r.first_day,
            values.get("device_id", m.NONE_KEY),
            values.get("staff_no", m.NONE_KEY),
            values.get("item_code", m.NONE_KEY),
        )
        out.append((cell, m.Counts(**{f: int(getattr(r, f) or 0) for f in m.DESK_FIELDS})))
    return out


def _deadlines(conn, bounds: dict[str, tuple[str, int]]):
    """``bounds`` (received day -> (end of its deadline's day, past due?)) as a table of the query,
    passed as one parameter (an array each on PostgreSQL, a JSON object on SQLite), so the statement
    is the same whatever the days (compiled once, planned fast; a year has 365 of them)."""
    days = sorted(bounds)
    if conn.engine.dialect.name == "postgresql":
        query = text(
            "SELECT * FROM unnest(CAST(:deadline_received AS text[]), CAST(:deadline_bound AS text[]), "
            "CAST(:deadline_overdue AS integer[])) AS d (received, bound, overdue)"
        ).bindparams(
            deadline_received=days,
            deadline_bound=[bounds[d][0] for d in days],
            deadline_overdue=[bounds[d][1] for d in days],
        )
    else:
        query = text(
            "SELECT key AS received, json_extract(value, '$[0]') AS bound, "
            "json_extract(value, '$[1]') AS overdue FROM json_each(:deadline_days)"
        ).bindparams(deadline_days=json.dumps({d: list(bounds[d]) for d in days}))
    return query.columns(received=String(), bound=String(), overdue=Integer()).subquery("deadlines")


def _utc_start_of(day: date) -> str:
    """The instant the local day ``day`` begins, as an ISO UTC string (the hub's local time zone)."""
    return datetime.combine(day, time()).astimezone().astimezone(UTC).isoformat(timespec="seconds")

"""The desk's record as the figures read it: each 差评 item in its rating's cell, whether the supervisor
marked it 不属实, whether the rater left a phone number and a 回访 reached them, its deadline and the
day it was closed. Read at the moment of asking (the desk's record grows after the rating). An item
withdrawn because the rater corrected the 差评 to a good level is not a 差评 any more and is left out."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date

from sqlalchemy import func, select

from ..desk import workflow as wf
from ..desk.store import items_with_their_ratings
from ..desk.tables import actions, items
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

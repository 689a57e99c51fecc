"""The desk's record as the figures read it: each 差评 item in its rating's cell, whether the supervisor
marked it 不属实, whether the rater left a phone number and a 回访 reached them, its deadline and the
day it was closed. Read at the moment of asking (the desk's record grows after the rating)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date

from sqlalchemy import text

from . import model as m

_ITEMS = """
SELECT i.id, i.device_id, i.assess_time, i.received,
       COALESCE(r.staff_no, p.staff_no) AS staff_no,
       COALESCE(r.item_code, p.item_code) AS item_code,
       COALESCE(r.contact_sealed, p.contact_sealed) AS contact_sealed
FROM desk_items i
LEFT JOIN ratings r ON r.device_id = i.device_id AND r.log_id = i.log_id AND r.seq = i.seq
LEFT JOIN phone_ratings p ON p.device_id = i.device_id AND p.nonce = i.nonce
WHERE i.assess_time >= :first AND i.assess_time <= :last
"""


def items(conn, first: str | None, last: str | None, deadline_of=None) -> Iterator[m.DeskItem]:
    from .store import has_table, local_day

    if not has_table(conn, "desk_items"):
        return
    bounds = {"first": (first or "0000-00-00") + " 00:00:00", "last": (last or "9999-99-99") + " 23:59:59"}
    rows = conn.execute(text(_ITEMS), bounds).mappings().all()
    if not rows:
        return
    history: dict[int, list] = {}
    for item_id, action, payload, status, at in conn.execute(
        text("SELECT item_id, action, payload, status, at FROM desk_actions ORDER BY seq")
    ).all():
        history.setdefault(item_id, []).append((action, json.loads(payload), status, at))
    for r in rows:
        acts = history.get(r["id"], [])
        status = acts[-1][2] if acts else "open"
        closed = next((local_day(at) for a, _, _, at in acts if a == "close"), None)
        deadline = deadline_of(date.fromisoformat(r["received"])) if deadline_of else None
        yield m.DeskItem(
            cell=m.Cell(r["assess_time"][:10], r["device_id"], r["staff_no"] or "", r["item_code"] or ""),
            not_adopted=status == "not_adopted",
            real_name=r["contact_sealed"] is not None,
            called_back=any(a == "callback" and p.get("reached") is True for a, p, _, _ in acts),
            deadline=deadline,
            closed_on=date.fromisoformat(closed) if closed else None,
        )

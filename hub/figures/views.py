"""The figures as the API and the pages show them: rows in the API's field names, labels, rankings. No I/O
here: everything comes from a ``store.Snapshot``."""

from __future__ import annotations

from typing import Any

from . import model as m
from .store import Snapshot

NONE_LABELS = {"dept": "未分配科室", "window": "未知窗口", "staff": "未签到", "item": "未关联事项"}


def label(by: str, key: str, snap: Snapshot) -> str:
    if not key and by in NONE_LABELS:
        return NONE_LABELS[by]
    if by == "dept":
        return snap.section_names.get(key, key)
    if by == "window":
        return f"{key}号窗口" if key.isdigit() else key
    if by == "staff":
        return snap.labels.name("staff", key) or key
    if by == "item":
        return snap.labels.name("items", key) or key
    return key


def counts_json(c: m.Counts) -> dict[str, Any]:
    return {
        "services": c.services,
        "walkin": c.walkin,
        "skipped": c.skipped,
        "rated": c.rated,
        "phone": c.phone,
        "good": c.good,
        "bad": c.bad,
        "not_adopted": c.not_adopted,
        "levels": {str(i): getattr(c, f"s{i}") for i in range(5, 0, -1)},
        "duplicates": c.duplicates,
        "unreadable": c.unreadable,
        "realNameBad": c.real_name_bad,
        "calledBack": c.called_back,
        "responseDue": c.response_due,
        "onTime": c.on_time,
        **m.rates(c),
    }


def stats_json(
    snap: Snapshot,
    by: str,
    first: str | None,
    last: str | None,
    f: m.Filters,
    *,
    show_staff_names: bool = True,
) -> dict[str, Any]:
    groups, total = m.group(snap.cells.items(), by, snap.sections, snap.labels, f, first, last)
    head = snap.head.digest
    rows = []
    for key in sorted(groups):
        name = label(by, key, snap) if (by != "staff" or show_staff_names) else (key or NONE_LABELS["staff"])
        rows.append({"key": key, "label": name, **counts_json(groups[key]), "head": head})
    return {
        "from": first,
        "to": last,
        "by": by,
        "filters": {
            k: v
            for k, v in (("dept", f.dept), ("window", f.window), ("staff", f.staff), ("item", f.item))
            if v is not None
        },
        "today": snap.today.isoformat(),
        "record": snap.head.as_json(),
        "rows": rows,
        "total": {"key": None, "label": "合计", **counts_json(total), "head": head},
    }


def ranking_json(ranked: list[m.Ranked], by: str, snap: Snapshot) -> list[dict[str, Any]]:
    return [
        {
            "key": r.key,
            "label": label(by, r.key, snap),
            "rank": r.rank,
            "satisfactionRate": r.satisfaction_rate,
            "counted": r.counted,
            "bottom": r.bottom,
            "run": r.run,
            "flagged": r.flagged,
        }
        for r in ranked
    ]

"""The hall's big screen (大厅大屏): today's figures per window and per section, for a 1920×1080 display
in the public hall, live over server-sent events. Figures only: no staff names, no citizen's data.

The screen authenticates with a screen key (``kiosk hub screen-key`` prints a new one; only its SHA-256
is kept), given once in the URL and then kept in a cookie. One ``ScreenFeed`` per hub process computes the
figures at most every ``min_interval_s`` and only when the record's head moved, whatever the number of
screens watching.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from starlette.concurrency import run_in_threadpool

from ..schema import meta
from . import model as m
from .store import FigureStore

SCREEN_KEY_META = "figures_screen_key"


def new_screen_key(engine) -> str:
    """A new screen key (the old one stops working); only its SHA-256 is stored."""
    key = secrets.token_urlsafe(24)
    digest = hashlib.sha256(key.encode()).hexdigest()
    with engine.begin() as conn:
        if conn.execute(select(meta.c.key).where(meta.c.key == SCREEN_KEY_META)).first():
            conn.execute(update(meta).where(meta.c.key == SCREEN_KEY_META).values(value=digest))
        else:
            conn.execute(insert(meta).values(key=SCREEN_KEY_META, value=digest))
    return key


def screen_key_ok(engine, key: str | None) -> bool:
    if not key or len(key) > 128:
        return False
    with engine.connect() as conn:
        stored = conn.execute(select(meta.c.value).where(meta.c.key == SCREEN_KEY_META)).scalar()
    return stored is not None and hmac.compare_digest(stored, hashlib.sha256(key.encode()).hexdigest())


def screen_data(figures: FigureStore, hall: str) -> dict[str, Any]:
    """Today's figures by window and by section, this month's 满意率, the head they come from."""
    today = figures.today().isoformat()
    snap = figures.snapshot(today, today)
    windows, total = m.group(snap.cells.items(), "window", snap.sections, snap.labels)
    depts, _ = m.group(snap.cells.items(), "dept", snap.sections, snap.labels)
    month = figures.snapshot(today[:8] + "01", today, refresh=False)
    _, month_total = m.group(month.cells.items(), "day", month.sections, month.labels)
    # Every registered window is on the screen, also before its first service of the day.
    for device_id in snap.labels.windows:
        windows.setdefault(m.window_of(snap.labels, device_id), m.Counts())
    window_dept = {m.window_of(snap.labels, d): snap.sections.of(d, today) for d in snap.labels.windows}

    def figures_of(c: m.Counts) -> dict[str, Any]:
        r = m.rates(c)
        return {
            "services": c.services,
            "rated": c.rated,
            "good": c.good,
            "bad": c.bad - c.not_adopted,
            "satisfaction": _pct(r["satisfactionRate"]),
            "participation": _pct(r["participationRate"]),
        }

    return {
        "hall": hall,
        "day": today,
        "updated": datetime.now().astimezone().strftime("%H:%M:%S"),
        "head": snap.head.digest,
        "total": figures_of(total),
        "month": {"satisfaction": _pct(m.rates(month_total)["satisfactionRate"]), "rated": month_total.rated},
        "windows": [
            {
                "window": w,
                "label": f"{w}号窗口" if w.isdigit() else w,
                "dept": snap.section_names.get(window_dept.get(w, ""), window_dept.get(w, "")),
                **figures_of(c),
            }
            for w, c in sorted(windows.items(), key=lambda kv: (kv[0].zfill(8), kv[0]))
        ],
        "depts": [
            {"dept": k, "name": snap.section_names.get(k, k) or "未分配科室", **figures_of(c)}
            for k, c in sorted(depts.items())
        ],
    }


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v * 100:.1f}%"


class ScreenFeed:
    """The screens' figures, recomputed at most every ``min_interval_s`` when the record moved."""

    def __init__(self, figures: FigureStore, hall: str, min_interval_s: float = 0.25):
        self.figures, self.hall, self.min_interval_s = figures, hall, min_interval_s
        self._data: dict[str, Any] | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def latest(self) -> dict[str, Any]:
        async with self._lock:
            if self._data is None or time.monotonic() - self._at >= self.min_interval_s:
                self._data = await run_in_threadpool(self._compute)
                self._at = time.monotonic()
            return self._data

    def _compute(self) -> dict[str, Any]:
        previous = self._data
        self.figures.refresh()
        head = self.figures.current_head().digest
        if (
            previous is not None
            and previous["head"] == head
            and previous["day"] == self.figures.today().isoformat()
        ):
            return previous
        return screen_data(self.figures, self.hall)


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"

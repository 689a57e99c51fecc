"""One FigureStore per hub store, wired with the desk's working-day deadline rule when the hub has one."""

from __future__ import annotations

from ..config import HubConfig
from ..storage import HubStore
from .store import FigureStore


def deadline_rule(config: HubConfig):
    """received day -> deadline day, by the desk's calendar; None when this hub has no desk."""
    try:
        from ..desk.calendar import deadline, load_calendar  # type: ignore[attr-defined]
    except ImportError:
        return None
    calendar = load_calendar(config.deadline.calendar_file)
    return lambda received: _deadline_or_none(deadline, calendar, received, config.deadline.working_days)


def _deadline_or_none(deadline, calendar, received, days):
    try:
        return deadline(calendar, received, days)
    except Exception:  # a day beyond the calendar: not counted, never guessed (the desk shows the gap)
        return None


def figure_store(store: HubStore, config: HubConfig) -> FigureStore:
    return FigureStore(store.engine, deadline_of=deadline_rule(config))

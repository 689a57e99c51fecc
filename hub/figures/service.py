"""One FigureStore per hub store, with the desk's working-day deadline rule and its idea of today."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from ..config import HubConfig
from ..desk.calendar import CalendarGap, WorkCalendar, deadline
from ..desk.settings import DeskSettings
from ..desk.store import local_today
from ..storage import HubStore
from .store import FigureStore


def deadline_rule(calendar: WorkCalendar, working_days: int) -> Callable[[date], date | None]:
    """received day -> the 差评's deadline; None beyond the calendar (not counted, never guessed)."""

    def rule(received: date) -> date | None:
        try:
            return deadline(calendar, received, working_days)
        except CalendarGap:
            return None

    return rule


def figure_store(store: HubStore, config: HubConfig, settings: DeskSettings | None = None) -> FigureStore:
    settings = settings or DeskSettings.from_config(config)
    return FigureStore(
        store.engine,
        today=settings.today or local_today,
        deadline_of=deadline_rule(settings.calendar, settings.working_days),
    )

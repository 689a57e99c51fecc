"""What the desk is configured with: the deadline rule, the calendar, the alert targets, the public URL
the alerts link to. Built from the hub's configuration file; defaults are the seed's rule."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from . import calendar as cal

DEFAULT_WORKING_DAYS = 5  # seed 第十三条


@dataclass(frozen=True)
class AlertTarget:
    kind: str  # webhook | wecom | dingtalk
    url: str
    events: tuple[str, ...]
    secret: str | None = None  # 钉钉 加签 secret: the URL is signed with it


@dataclass(frozen=True)
class DeskSettings:
    working_days: int = DEFAULT_WORKING_DAYS
    calendar_file: Path | None = None
    alerts: tuple[AlertTarget, ...] = ()
    public_url: str = ""
    today: Callable[[], date] | None = None  # tests fix the date; None: the hub's local date
    calendar: cal.WorkCalendar = field(default=None)  # type: ignore[assignment]

    @classmethod
    def from_config(cls, config) -> DeskSettings:
        """From the hub's configuration file (hub.config.HubConfig): [deadline], [[alerts]], public_url.
        CalendarFileError or OSError when a file it names cannot be read."""
        targets = []
        for a in config.alerts:
            secret = a.secret_file.read_text(encoding="utf-8").strip() if a.secret_file else None
            targets.append(AlertTarget(a.kind, a.url, tuple(a.events), secret))
        return cls(
            working_days=config.deadline.working_days,
            calendar_file=config.deadline.calendar_file,
            alerts=tuple(targets),
            public_url=config.server.public_url or "",
        )

    def __post_init__(self):
        if self.calendar is None:
            object.__setattr__(self, "calendar", cal.load(self.calendar_file))

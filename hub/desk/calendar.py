"""Working days on the official calendar, and the 差评 deadline counted in them (seed 第十三条).

The official calendar (holidays, and the 调休 weekend days that are workdays) comes from the
``chinese-calendar`` package for the years it was released with, plus a deployment's own calendar file
for later years. A date in a year neither knows raises ``CalendarGap``: the console shows it as an
alarm; nothing here guesses that an unknown year has no holidays. No I/O here except ``load``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

MAX_WORKING_DAYS = 60  # a deadline rule longer than three months is a typo


class CalendarGap(Exception):
    """A date falls in a year whose official calendar is not known; the message names the year."""

    def __init__(self, year: int):
        super().__init__(
            f"{year} 年的法定节假日安排未知：请在 [deadline] calendar_file 中加入该年的节假日与调休上班日"
        )
        self.year = year


class CalendarFileError(Exception):
    """The calendar file cannot be read; the message names the file and the key."""


@dataclass(frozen=True)
class WorkCalendar:
    """Which days are working days, for the years in ``known_years``."""

    known_years: frozenset[int]
    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)  # 调休: weekend days worked

    def is_workday(self, day: date) -> bool:
        if day.year not in self.known_years:
            raise CalendarGap(day.year)
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        return day.weekday() < 5

    def add_working_days(self, start: date, count: int) -> date:
        """The ``count``-th working day after ``start`` (``start`` itself is day 0, whatever it is)."""
        day = start
        while count > 0:
            day += timedelta(days=1)
            if self.is_workday(day):
                count -= 1
        return day

    def working_days_left(self, today: date, deadline: date) -> int:
        """Working days from ``today`` to ``deadline``: 0 on the deadline itself, negative once past it."""
        if today <= deadline:
            return sum(1 for d in _days_after(today, deadline) if self.is_workday(d))
        return -sum(1 for d in _days_after(deadline, today) if self.is_workday(d))

    def first_received_due_on_or_after(self, today: date, working_days: int) -> date:
        """The earliest day of receipt whose deadline is ``today`` or later.

        Deadlines never decrease as the day of receipt advances, so an item is overdue exactly when it
        was received before this day: a date bound the database can filter on.
        """
        day = today
        while self.add_working_days(day - timedelta(days=1), working_days) >= today:
            day -= timedelta(days=1)
        return day


def _days_after(first: date, last: date) -> Iterable[date]:
    """The days in (first, last]."""
    day = first + timedelta(days=1)
    while day <= last:
        yield day
        day += timedelta(days=1)


def deadline(calendar: WorkCalendar, received: date, working_days: int) -> date:
    """The day an item received on ``received`` must be answered by (day of receipt = day 0)."""
    return calendar.add_working_days(received, working_days)


def build(
    package_holidays: Iterable[date],
    package_workdays: Iterable[date],
    extra: Mapping[int, tuple[frozenset[date], frozenset[date]]],
) -> WorkCalendar:
    """A calendar from the package's tables plus a file's years; a year in the file replaces the
    package's table for that year entirely (a correction)."""
    holidays = {d for d in package_holidays if d.year not in extra}
    workdays = {d for d in package_workdays if d.year not in extra}
    years = {d.year for d in holidays}
    for year, (file_holidays, file_workdays) in extra.items():
        holidays |= file_holidays
        workdays |= file_workdays
        years.add(year)
    return WorkCalendar(frozenset(years), frozenset(holidays), frozenset(workdays))


def parse_calendar_file(text: str, name: str) -> dict[int, tuple[frozenset[date], frozenset[date]]]:
    """``["2027"] holidays = ["2027-01-01", …], workdays = ["2027-02-06", …]`` per year."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CalendarFileError(f"{name}: not TOML: {e}") from None
    years: dict[int, tuple[frozenset[date], frozenset[date]]] = {}
    for key, table in document.items():
        if not (key.isdigit() and len(key) == 4) or not isinstance(table, dict):
            raise CalendarFileError(f'{name}: [{key}]: expected a table per year, e.g. ["2027"]')
        unknown = set(table) - {"holidays", "workdays"}
        if unknown:
            raise CalendarFileError(f"{name}: [{key}] {sorted(unknown)[0]}: unknown key")
        year = int(key)
        lists = []
        for list_key in ("holidays", "workdays"):
            values = table.get(list_key, [])
            if not isinstance(values, list):
                raise CalendarFileError(f"{name}: [{key}] {list_key}: expected a list of dates")
            days = set()
            for value in values:
                day = _as_date(value)
                if day is None or day.year != year:
                    raise CalendarFileError(f"{name}: [{key}] {list_key}: {value!r} is not a date of {year}")
                days.add(day)
            lists.append(frozenset(days))
        if lists[0] & lists[1]:
            raise CalendarFileError(f"{name}: [{key}]: a day is both a holiday and a workday")
        years[year] = (lists[0], lists[1])
    return years


def _as_date(value: object) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def load(calendar_file: Path | None) -> WorkCalendar:
    """The official calendar: the ``chinese-calendar`` package's years plus ``calendar_file``'s."""
    # The package's tables; importing it reads no files. It ships no type information.
    from chinese_calendar import constants  # type: ignore[import-untyped]

    extra = {}
    if calendar_file is not None:
        try:
            text = calendar_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise CalendarFileError(f"{calendar_file}: cannot read: {e}") from None
        extra = parse_calendar_file(text, str(calendar_file))
    return build(constants.holidays, constants.workdays, extra)

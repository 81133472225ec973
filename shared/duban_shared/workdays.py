"""Working days of the official calendar (statutory holidays and 调休 make-up days)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

SHANGHAI = ZoneInfo("Asia/Shanghai")


class CalendarDataMissing(RuntimeError):
    """The official holiday arrangement of a year is not known to this installation."""

    code = "calendar_year_missing"

    def __init__(self, year: int) -> None:
        super().__init__(
            f"No official holiday arrangement for {year} is installed; counting working days "
            f"would be a guess. Upgrade chinese-calendar once the State Council has published "
            f"the {year} arrangement."
        )
        self.year = year


def is_working_day(day: date) -> bool:
    """Tell whether a Shanghai calendar day is a working day."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError as exc:
        raise CalendarDataMissing(day.year) from exc


def local_day(moment: datetime) -> date:
    """Return the Asia/Shanghai calendar day of an aware moment."""
    return moment.astimezone(SHANGHAI).date()


def add_working_days(start: date, count: int) -> date:
    """Return the day `count` working days after `start` (start itself not counted)."""
    if count < 0:
        raise ValueError("count must not be negative")
    day = start
    remaining = count
    while remaining:
        day += timedelta(days=1)
        if is_working_day(day):
            remaining -= 1
    return day


def working_days_between(start: date, end: date) -> int:
    """Count working days after `start` up to and including `end` (0 if end <= start)."""
    days = 0
    day = start
    while day < end:
        day += timedelta(days=1)
        if is_working_day(day):
            days += 1
    return days


def start_of_local_day(day: date) -> datetime:
    """Return midnight Asia/Shanghai of a day as an aware datetime."""
    return datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)

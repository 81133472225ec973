"""Working hours on the official calendar: when people at an agency can be expected to read.

Escalation waits are promises to people ("the office is told after 16 working hours"), so they
must not run down over a weekend, the National Day week or a night. Working days come from
`duban_shared.workdays.WorkingCalendar` (statutory holidays and 调休 make-up weekend days); a year
it does not know raises `CalendarDataMissing`, which is left to propagate: a guessed calendar
would send escalations on a holiday or hold them through a make-up working Saturday.

Every function takes aware datetimes in any zone and returns Asia/Shanghai-aware datetimes
(they compare equal to the same instant in UTC). Shanghai has had no daylight saving time since
1991, so wall-clock arithmetic on its local times is exact.

The arithmetic walks the calendar a day at a time (one step per day, never per minute), so a span
of months costs a few hundred cheap calendar lookups. The exact forms (`add_working_time`,
`working_time_between`) work in `timedelta`, i.e. whole microseconds, so adding and measuring are
exact inverses; the float-hour forms are for people and configuration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from duban_shared.workdays import SHANGHAI, WorkingCalendar

__all__ = [
    "WorkingHours",
    "add_working_days",
    "add_working_hours",
    "add_working_time",
    "is_open",
    "next_open",
    "whole_working_days_between",
    "working_hours_between",
    "working_time_between",
]

_ONE_DAY = timedelta(days=1)
_SEARCH_LIMIT_DAYS = 366  # a calendar without one working day in a year is broken, not quiet


@dataclass(frozen=True)
class WorkingHours:
    """The daily opening hours on working days, as Asia/Shanghai wall-clock times.

    One window per day (no lunch break): agencies read their messages over the day, and a
    finer model would promise a precision nobody relies on.
    """

    start: time = time(9, 0)
    end: time = time(18, 0)

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError(
                "working hours are Asia/Shanghai wall-clock times; give them without a time zone"
            )
        if not self.start < self.end:
            raise ValueError(
                f"working hours must start before they end (got {self.start:%H:%M} to "
                f"{self.end:%H:%M}); windows across midnight are not supported"
            )

    @property
    def length(self) -> timedelta:
        """How long one working day is open."""
        return datetime.combine(date.min, self.end) - datetime.combine(date.min, self.start)

    def opening(self, day: date) -> datetime:
        """The moment `day` opens (whether or not it is a working day)."""
        return datetime.combine(day, self.start, tzinfo=SHANGHAI)

    def closing(self, day: date) -> datetime:
        """The moment `day` closes (whether or not it is a working day)."""
        return datetime.combine(day, self.end, tzinfo=SHANGHAI)


def _local(moment: datetime) -> datetime:
    """The moment on Shanghai's clock; naive datetimes are refused because their zone is a guess."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            f"{moment.isoformat()} has no time zone; pass an aware datetime (UTC or Asia/Shanghai)"
        )
    return moment.astimezone(SHANGHAI)


def _next_working_day(after: date, calendar: WorkingCalendar) -> date:
    """The first working day after `after`."""
    day = after
    for _ in range(_SEARCH_LIMIT_DAYS):
        day += _ONE_DAY
        if calendar.is_working_day(day):
            return day
    raise ValueError(
        f"no working day in the {_SEARCH_LIMIT_DAYS} days after {after}; check the calendar "
        "files (data/calendar/README.md)"
    )


def is_open(moment: datetime, hours: WorkingHours, calendar: WorkingCalendar) -> bool:
    """Whether `moment` lies in working hours: a working day and start <= local time < end."""
    local = _local(moment)
    return calendar.is_working_day(local.date()) and hours.start <= local.time() < hours.end


def next_open(moment: datetime, hours: WorkingHours, calendar: WorkingCalendar) -> datetime:
    """`moment` itself when open, else the next opening (the start of the next working hours)."""
    local = _local(moment)
    day = local.date()
    if calendar.is_working_day(day) and local.time() < hours.end:
        return max(local, hours.opening(day))
    return hours.opening(_next_working_day(day, calendar))


def add_working_time(
    start: datetime, amount: timedelta, hours: WorkingHours, calendar: WorkingCalendar
) -> datetime:
    """The earliest moment by which `amount` of open time has passed since `start`.

    Only open time counts. A zero amount from a closed moment is the next opening (the wait
    starts when someone can read). An amount that ends exactly at closing time ends there,
    not at the next opening: that is the earliest moment the time has passed.
    """
    if amount < timedelta(0):
        raise ValueError(f"cannot add a negative working time ({amount})")
    current = next_open(start, hours, calendar)
    remaining = amount
    while True:
        available = hours.closing(current.date()) - current
        if remaining <= available:
            return current + remaining
        remaining -= available
        current = hours.opening(_next_working_day(current.date(), calendar))


def add_working_hours(
    start: datetime, hours: float, wh: WorkingHours, calendar: WorkingCalendar
) -> datetime:
    """`add_working_time` with the amount in (possibly fractional) hours, microsecond-rounded."""
    if not math.isfinite(hours) or hours < 0:
        raise ValueError(f"working hours to add must be a finite number >= 0, not {hours}")
    return add_working_time(start, timedelta(hours=hours), wh, calendar)


def working_time_between(
    a: datetime, b: datetime, hours: WorkingHours, calendar: WorkingCalendar
) -> timedelta:
    """The open time from `a` to `b`; negative when `b` is before `a` (so it is antisymmetric).

    The exact inverse of `add_working_time`: for amount >= 0,
    `working_time_between(s, add_working_time(s, amount)) == amount`.
    """
    if b < a:
        return -working_time_between(b, a, hours, calendar)
    local_a, local_b = _local(a), _local(b)
    total = timedelta(0)
    day = local_a.date()
    while day <= local_b.date():
        if calendar.is_working_day(day):
            low = max(local_a, hours.opening(day))
            high = min(local_b, hours.closing(day))
            if high > low:
                total += high - low
        day += _ONE_DAY
    return total


def working_hours_between(
    a: datetime, b: datetime, wh: WorkingHours, calendar: WorkingCalendar
) -> float:
    """`working_time_between` in hours (negative when `b` is before `a`)."""
    return working_time_between(a, b, wh, calendar).total_seconds() / 3600


def add_working_days(start: datetime, days: int, calendar: WorkingCalendar) -> datetime:
    """The same Shanghai time of day, `days` working days later (the start day is not counted).

    From a weekend or holiday the count starts with the next working day, so one working day
    after a Saturday 10:00 is Monday 10:00 (when Monday works). Working hours play no part:
    "five working days" is a date rule, as in the stall model.
    """
    local = _local(start)
    day = calendar.add_working_days(local.date(), days)
    return datetime.combine(day, local.timetz())


def whole_working_days_between(a: datetime, b: datetime, calendar: WorkingCalendar) -> int:
    """How many working days have fully passed from `a` to `b`: the largest n with
    `add_working_days(a, n) <= b` (0 when `b` is before `a`).

    The inverse that repeating day-based schedules need: the n-th working day after `a` has
    passed when it is before `b`'s day, or is `b`'s day and `b` is at or after `a`'s time.
    """
    local_a, local_b = _local(a), _local(b)
    if local_b <= local_a:
        return 0
    passed = calendar.working_days_between(local_a.date(), local_b.date())
    if passed and calendar.is_working_day(local_b.date()) and local_b.time() < local_a.time():
        passed -= 1
    return passed

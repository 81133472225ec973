"""Working days of the official calendar (statutory holidays and 调休 make-up days).

chinese-calendar knows the years the State Council had announced when it was released. A later
year is read from an operator's data file `<year>.toml` in the calendar folder (see
data/calendar/README.md); a year known to neither is refused, never guessed. A file also
overrides chinese-calendar for its year, so a correction needs no new release.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import chinese_calendar

SHANGHAI = ZoneInfo("Asia/Shanghai")


class CalendarDataMissing(RuntimeError):
    """The official holiday arrangement of a year is not known to this installation."""

    code = "calendar_year_missing"

    def __init__(self, year: int, folder: Path | None = None) -> None:
        where = f"{folder}/{year}.toml" if folder else f"data/calendar/{year}.toml"
        super().__init__(
            f"No official holiday arrangement for {year} is installed; counting working days "
            f"would be a guess. Add the State Council's {year} arrangement as {where} (format: "
            f"data/calendar/README.md) and restart, or upgrade chinese-calendar once it has "
            f"{year}."
        )
        self.year = year


class CalendarFileError(ValueError):
    """A calendar data file that cannot be used; the message names the file and the problem."""

    code = "calendar_file_invalid"


@dataclass(frozen=True)
class YearArrangement:
    """One year's official arrangement: days off on weekdays, and weekend days worked."""

    year: int
    holidays: frozenset[date]
    workdays: frozenset[date]

    def is_working_day(self, day: date) -> bool:
        """Weekdays work unless they are holidays; weekend days only when made working days."""
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        return day.weekday() < 5


def load_year(path: Path) -> YearArrangement:
    """Read and check `<year>.toml`: year, holidays and workdays as ISO dates of that year."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CalendarFileError(f"{path}: cannot be read as TOML: {exc}") from exc
    year = data.get("year")
    if not isinstance(year, int) or path.stem != str(year):
        raise CalendarFileError(f"{path}: needs `year = {path.stem}` matching its file name")

    def days(key: str) -> frozenset[date]:
        raw = data.get(key, [])
        if not isinstance(raw, list):
            raise CalendarFileError(f"{path}: `{key}` must be a list of dates")
        out = set()
        for item in raw:
            day = item if isinstance(item, date) else _parse_day(path, key, item)
            if day.year != year:
                raise CalendarFileError(f"{path}: {key} has {day}, which is not in {year}")
            out.add(day)
        return frozenset(out)

    holidays, workdays = days("holidays"), days("workdays")
    both = sorted(holidays & workdays)
    if both:
        raise CalendarFileError(f"{path}: {both[0]} is listed as a holiday and as a workday")
    weekday_workdays = sorted(d for d in workdays if d.weekday() < 5)
    if weekday_workdays:
        raise CalendarFileError(
            f"{path}: {weekday_workdays[0]} is a weekday; `workdays` lists only weekend days "
            "that are worked (调休)"
        )
    return YearArrangement(year, holidays, workdays)


def _parse_day(path: Path, key: str, item: object) -> date:
    try:
        return date.fromisoformat(str(item))
    except ValueError:
        raise CalendarFileError(f"{path}: {key} has {item!r}, not a date like 2027-10-01") from None


class WorkingCalendar:
    """Working days from chinese-calendar and the operator's year files."""

    def __init__(self, years: Iterable[YearArrangement] = (), folder: Path | None = None) -> None:
        self._years = {y.year: y for y in years}
        self._folder = folder
        self._known: dict[date, bool] = {}  # chinese-calendar is slow per call; a day never changes

    @classmethod
    def from_folder(cls, folder: Path | None) -> WorkingCalendar:
        """Load every `<year>.toml` of a folder (none when the folder is None or absent)."""
        if folder is None or not folder.is_dir():
            return cls(folder=folder)
        return cls((load_year(p) for p in sorted(folder.glob("[0-9][0-9][0-9][0-9].toml"))), folder)

    def years_from_files(self) -> list[int]:
        """The years read from files."""
        return sorted(self._years)

    def is_working_day(self, day: date) -> bool:
        """Tell whether a Shanghai calendar day is a working day."""
        known = self._known.get(day)
        if known is None:
            known = self._known[day] = self._look_up(day)
        return known

    def _look_up(self, day: date) -> bool:
        arrangement = self._years.get(day.year)
        if arrangement is not None:
            return arrangement.is_working_day(day)
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError as exc:
            raise CalendarDataMissing(day.year, self._folder) from exc

    def add_working_days(self, start: date, count: int) -> date:
        """Return the day `count` working days after `start` (start itself not counted)."""
        if count < 0:
            raise ValueError("count must not be negative")
        day = start
        remaining = count
        while remaining:
            day += timedelta(days=1)
            if self.is_working_day(day):
                remaining -= 1
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """Count working days after `start` up to and including `end` (0 if end <= start)."""
        days = 0
        day = start
        while day < end:
            day += timedelta(days=1)
            if self.is_working_day(day):
                days += 1
        return days


OFFICIAL = WorkingCalendar()
"""chinese-calendar alone, for callers that were given no calendar folder."""


def local_day(moment: datetime) -> date:
    """Return the Asia/Shanghai calendar day of an aware moment."""
    return moment.astimezone(SHANGHAI).date()


def start_of_local_day(day: date) -> datetime:
    """Return midnight Asia/Shanghai of a day as an aware datetime."""
    return datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)

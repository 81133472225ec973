"""Working days of the official calendar (statutory holidays and 调休 make-up days).

chinese-calendar knows the years the State Council had announced when it was released. A later
year is read from an operator's data file `<year>.toml` in the calendar folder (see
data/calendar/README.md). A file also overrides chinese-calendar for its year, so a correction
needs no new release.

A year known to neither is judged on a *provisional* calendar until its arrangement arrives:
weekends plus the statutory holidays of 全国年节及纪念日放假办法 as amended in 2024 (in force from
2025), with no 调休 make-up workdays; lunar holidays and 清明 come from lunar_python. A year
outside PROVISIONAL_YEARS is refused (CalendarYearUnsupported), never computed. The calendar
records which provisional years a judgement used (`recording()`), so it can be marked as
provisional and made again once the year's official arrangement is installed.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar
from lunar_python import Lunar, Solar

SHANGHAI = ZoneInfo("Asia/Shanghai")

log = logging.getLogger(__name__)

PROVISIONAL_YEARS = range(2025, 2101)
"""Years a provisional calendar may be made for: from the first year under the 2024 amendment
of 全国年节及纪念日放假办法 to 2100, the end of the range over which lunar_python's astronomical
new moons and solar terms are checked against published conversion tables (1901-2100)."""


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


class CalendarYearUnsupported(CalendarDataMissing):
    """A year with no official arrangement for which no provisional calendar can be made either
    (outside PROVISIONAL_YEARS): refused at the edge, never computed."""

    code = "calendar_year_unsupported"

    def __init__(self, year: int, folder: Path | None = None) -> None:
        where = f"{folder}/{year}.toml" if folder else f"data/calendar/{year}.toml"
        RuntimeError.__init__(
            self,
            f"{year} is outside the years a provisional calendar can be made for "
            f"({PROVISIONAL_YEARS.start}-{PROVISIONAL_YEARS.stop - 1}) and no official holiday "
            f"arrangement for it is installed: add the State Council's {year} arrangement as "
            f"{where} (format: data/calendar/README.md) and restart, or correct the date.",
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


def provisional_year(year: int) -> YearArrangement:
    """The provisional arrangement of a year: the statutory holidays of 全国年节及纪念日放假办法
    (2024 amendment), nothing moved, no make-up workdays.

    元旦 1 Jan; 春节 4 days (除夕 and 初一 to 初三); 清明 (the solar term's day); 劳动节 1-2 May;
    端午 (五月初五); 中秋 (八月十五); 国庆 1-3 October. Raises CalendarYearUnsupported outside
    PROVISIONAL_YEARS.
    """
    if year not in PROVISIONAL_YEARS:
        raise CalendarYearUnsupported(year)
    spring = _lunar_day(year, 1, 1)
    days = {
        date(year, 1, 1),
        *(spring + timedelta(days=n) for n in range(-1, 3)),  # 除夕 to 初三
        _qingming(year),
        date(year, 5, 1),
        date(year, 5, 2),
        _lunar_day(year, 5, 5),
        _lunar_day(year, 8, 15),
        date(year, 10, 1),
        date(year, 10, 2),
        date(year, 10, 3),
    }
    return YearArrangement(year, frozenset(days), frozenset())


def _lunar_day(year: int, month: int, day: int) -> date:
    """The Gregorian day of a day of the lunar year that starts in `year`."""
    solar = Lunar.fromYmd(year, month, day).getSolar()
    return date(solar.getYear(), solar.getMonth(), solar.getDay())


def _qingming(year: int) -> date:
    """The day of the solar term 清明 (4, 5 or 6 April), Beijing time."""
    term = Solar.fromYmd(year, 6, 1).getLunar().getJieQiTable()["清明"]
    return date(term.getYear(), term.getMonth(), term.getDay())


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


_RECORDING: ContextVar[set[int] | None] = ContextVar("duban_calendar_recording", default=None)


class WorkingCalendar:
    """Working days from chinese-calendar and the operator's year files, and provisional ones
    for a later year known to neither."""

    def __init__(self, years: Iterable[YearArrangement] = (), folder: Path | None = None) -> None:
        self._years = {y.year: y for y in years}
        self._folder = folder
        self._known: dict[date, bool] = {}  # chinese-calendar is slow per call; a day never changes
        self._provisional: dict[int, YearArrangement] = {}
        # Answers of add_working_days and working_days_between (a sweep asks the same ones for
        # many work points), with the years they counted, so a remembered answer still records
        # its provisional years; days never change, so neither do the answers.
        self._added: dict[tuple[date, int], tuple[date, range]] = {}
        self._between: dict[tuple[date, date], tuple[int, range]] = {}

    @classmethod
    def from_folder(cls, folder: Path | None) -> WorkingCalendar:
        """Load every `<year>.toml` of a folder (none when the folder is None or absent)."""
        if folder is None or not folder.is_dir():
            return cls(folder=folder)
        return cls((load_year(p) for p in sorted(folder.glob("[0-9][0-9][0-9][0-9].toml"))), folder)

    def years_from_files(self) -> list[int]:
        """The years read from files."""
        return sorted(self._years)

    def is_official(self, year: int) -> bool:
        """The year's official arrangement is installed (a year file or chinese-calendar)."""
        return year in self._years or _chinese_calendar_knows(year)

    def official_fingerprint(self) -> tuple[object, ...]:
        """What decides which years are official: the year files and chinese-calendar's range.
        It changes only when the calendar is loaded anew (a restart, an upgrade)."""
        return (tuple(sorted(self._years.items())), _chinese_calendar_range())

    def provisional_years_used(self) -> list[int]:
        """The years this calendar has judged on a provisional arrangement so far."""
        return sorted(self._provisional)

    @contextmanager
    def recording(self) -> Iterator[set[int]]:
        """Collect the provisional years the calendar is asked about inside the block (in this
        task only: the set is held in a context variable)."""
        used: set[int] = set()
        token = _RECORDING.set(used)
        try:
            yield used
        finally:
            _RECORDING.reset(token)

    def is_working_day(self, day: date) -> bool:
        """Tell whether a Shanghai calendar day is a working day."""
        known = self._known.get(day)
        if known is None:
            known = self._known[day] = self._look_up(day)
        if self._provisional and day.year in self._provisional:
            used = _RECORDING.get()
            if used is not None:
                used.add(day.year)
        return known

    def _look_up(self, day: date) -> bool:
        arrangement = self._years.get(day.year)
        if arrangement is not None:
            return arrangement.is_working_day(day)
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            pass
        return self._provisional_arrangement(day.year).is_working_day(day)

    def _provisional_arrangement(self, year: int) -> YearArrangement:
        arrangement = self._provisional.get(year)
        if arrangement is None:
            if year not in PROVISIONAL_YEARS:
                raise CalendarYearUnsupported(year, self._folder)
            arrangement = self._provisional[year] = provisional_year(year)
            where = f"{self._folder}/{year}.toml" if self._folder else f"data/calendar/{year}.toml"
            log.warning(
                "no official holiday arrangement for %d is installed: judging on a provisional "
                "calendar (statutory holidays, no 调休); add %s once the State Council publishes "
                "it and restart",
                year,
                where,
                extra={"calendar_year": year},
            )
        return arrangement

    def add_working_days(self, start: date, count: int) -> date:
        """Return the day `count` working days after `start` (start itself not counted)."""
        if count < 0:
            raise ValueError("count must not be negative")
        key = (start, count)
        found = self._added.get(key)
        if found is None:
            day = start
            remaining = count
            while remaining:
                day += timedelta(days=1)
                if self.is_working_day(day):
                    remaining -= 1
            found = self._added[key] = (day, _years_after(start, day))
            _bound(self._added)
        else:
            self._record_years(found[1])
        return found[0]

    def working_days_between(self, start: date, end: date) -> int:
        """Count working days after `start` up to and including `end` (0 if end <= start)."""
        key = (start, end)
        found = self._between.get(key)
        if found is None:
            days = 0
            day = start
            while day < end:
                day += timedelta(days=1)
                if self.is_working_day(day):
                    days += 1
            found = self._between[key] = (days, _years_after(start, end))
            _bound(self._between)
        else:
            self._record_years(found[1])
        return found[0]

    def _record_years(self, years: range) -> None:
        """A remembered answer counted these years' days: record the provisional ones, as
        is_working_day would have (see recording())."""
        if self._provisional:
            used = _RECORDING.get()
            if used is not None:
                used.update(y for y in years if y in self._provisional)


REMEMBERED = 20_000
"""Answers a calendar remembers per kind; past that it starts afresh (dates move on: old ones
would otherwise pile up in a long-running process)."""


def _bound(answers: dict[Any, Any]) -> None:
    if len(answers) > REMEMBERED:
        answers.clear()


def _years_after(start: date, end: date) -> range:
    """The years of the days after `start` up to and including `end` (none if end <= start)."""
    if end <= start:
        return range(0)
    return range((start + timedelta(days=1)).year, end.year + 1)


OFFICIAL = WorkingCalendar()
"""chinese-calendar (and provisional years after it), for callers given no calendar folder."""


def _chinese_calendar_range() -> tuple[int, int]:
    known = chinese_calendar.holidays
    return min(known).year, max(known).year


def _chinese_calendar_knows(year: int) -> bool:
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


def local_day(moment: datetime) -> date:
    """Return the Asia/Shanghai calendar day of an aware moment."""
    return moment.astimezone(SHANGHAI).date()


def start_of_local_day(day: date) -> datetime:
    """Return midnight Asia/Shanghai of a day as an aware datetime."""
    return datetime(day.year, day.month, day.day, tzinfo=SHANGHAI)

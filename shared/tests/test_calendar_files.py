"""Years beyond chinese-calendar come from operators' files, checked strictly; a year known to
neither is refused with an instruction naming the file to add."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from duban_shared.workdays import (
    CalendarDataMissing,
    CalendarFileError,
    WorkingCalendar,
    load_year,
)

# A made-up arrangement for a year no library knows: Thu 1 and Mon 5 Jan off, Sat 10 Jan worked.
YEAR_2099 = """
year = 2099
holidays = [2099-01-01, 2099-01-05]
workdays = ["2099-01-10"]
"""


def _folder(tmp_path: Path, **files: str) -> Path:
    for name, text in files.items():
        (tmp_path / f"{name}.toml").write_text(text, encoding="utf-8")
    return tmp_path


def test_a_year_file_defines_holidays_and_worked_weekend_days(tmp_path: Path) -> None:
    calendar = WorkingCalendar.from_folder(_folder(tmp_path, **{"2099": YEAR_2099}))
    assert calendar.years_from_files() == [2099]
    assert calendar.is_working_day(date(2099, 1, 1)) is False  # Thursday, holiday
    assert calendar.is_working_day(date(2099, 1, 2)) is True  # Friday
    assert calendar.is_working_day(date(2099, 1, 5)) is False  # Monday, holiday
    assert calendar.is_working_day(date(2099, 1, 10)) is True  # Saturday, worked
    assert calendar.is_working_day(date(2099, 1, 11)) is False  # Sunday
    # 2 Jan, 6-9 Jan, Sat 10 Jan and Mon 12 Jan.
    assert calendar.working_days_between(date(2099, 1, 1), date(2099, 1, 12)) == 7
    assert calendar.add_working_days(date(2099, 1, 1), 3) == date(2099, 1, 7)


def test_a_year_known_to_nobody_and_beyond_provisional_names_the_file_to_add(
    tmp_path: Path,
) -> None:
    calendar = WorkingCalendar.from_folder(tmp_path)
    with pytest.raises(CalendarDataMissing) as missing:
        calendar.is_working_day(date(2150, 3, 3))
    assert missing.value.code == "calendar_year_unsupported"
    assert f"{tmp_path}/2150.toml" in str(missing.value)


def test_a_file_overrides_chinese_calendar_for_its_year(tmp_path: Path) -> None:
    official = WorkingCalendar()
    assert official.is_working_day(date(2024, 10, 8)) is True
    corrected = "year = 2024\nholidays = [2024-10-08]\n"
    calendar = WorkingCalendar.from_folder(_folder(tmp_path, **{"2024": corrected}))
    assert calendar.is_working_day(date(2024, 10, 8)) is False


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("2099", "year = 2098\n", "matching its file name"),
        ("2099", "year = 2099\nholidays = [2100-01-01]\n", "not in 2099"),
        ("2099", "year = 2099\nworkdays = [2099-01-05]\n", "is a weekday"),
        ("2099", "year = 2099\nholidays = [2099-01-10]\nworkdays = [2099-01-10]\n", "and as a"),
        ("2099", 'year = 2099\nholidays = ["soon"]\n', "not a date"),
        ("2099", "year = 2099\nholidays = 3\n", "must be a list"),
        ("2099", "year = [", "cannot be read as TOML"),
    ],
)
def test_a_broken_year_file_is_refused_naming_the_file_and_the_problem(
    tmp_path: Path, name: str, text: str, problem: str
) -> None:
    path = _folder(tmp_path, **{name: text}) / f"{name}.toml"
    with pytest.raises(CalendarFileError, match=problem) as refused:
        load_year(path)
    assert str(path) in str(refused.value)
    with pytest.raises(CalendarFileError):
        WorkingCalendar.from_folder(tmp_path)


def test_no_folder_means_chinese_calendar_alone(tmp_path: Path) -> None:
    for folder in (None, tmp_path / "absent"):
        calendar = WorkingCalendar.from_folder(folder)
        assert calendar.years_from_files() == []
        assert calendar.is_working_day(date(2024, 9, 29)) is True  # 调休 Sunday

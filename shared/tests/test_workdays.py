"""Working days on the official calendar (statutory holidays and 调休 make-up days)."""

from __future__ import annotations

from datetime import date

import pytest
from duban_shared.workdays import (
    OFFICIAL,
    CalendarDataMissing,
    CalendarYearUnsupported,
)

is_working_day = OFFICIAL.is_working_day
add_working_days = OFFICIAL.add_working_days
working_days_between = OFFICIAL.working_days_between


@pytest.mark.parametrize(
    "day",
    [date(2024, 10, d) for d in range(1, 8)],
    ids=lambda d: d.isoformat(),
)
def test_national_day_week_2024_is_a_holiday(day: date) -> None:
    assert not is_working_day(day)


@pytest.mark.parametrize(
    "day",
    [date(2024, 9, 29), date(2024, 10, 12)],
    ids=["sun-29-sep", "sat-12-oct"],
)
def test_national_day_make_up_weekend_days_are_working_days(day: date) -> None:
    assert day.weekday() >= 5  # a weekend day on the plain calendar...
    assert is_working_day(day)  # ...worked as 调休


def test_ordinary_weekend_next_to_national_day_is_off() -> None:
    assert not is_working_day(date(2024, 9, 28))  # Saturday
    assert not is_working_day(date(2024, 10, 13))  # Sunday
    assert is_working_day(date(2024, 10, 8))  # first working day after the week


def test_mid_autumn_2024_saturday_is_worked_and_15_to_17_september_are_off() -> None:
    assert is_working_day(date(2024, 9, 14))
    assert [is_working_day(date(2024, 9, d)) for d in (15, 16, 17)] == [False, False, False]
    assert is_working_day(date(2024, 9, 18))


def test_add_working_days_counts_make_up_days_and_skips_the_holiday_week() -> None:
    # Fri 27 Sep: Sun 29, Mon 30, then Tue 8 Oct is the third working day.
    assert add_working_days(date(2024, 9, 27), 1) == date(2024, 9, 29)
    assert add_working_days(date(2024, 9, 27), 2) == date(2024, 9, 30)
    assert add_working_days(date(2024, 9, 27), 3) == date(2024, 10, 8)
    # 29, 30 Sep, 8, 9, 10, 11, 12 (Sat), 14, 15, 16, 17, 18, 21 Oct.
    assert add_working_days(date(2024, 9, 27), 13) == date(2024, 10, 21)


def test_add_working_days_across_mid_autumn() -> None:
    # Fri 13 Sep -> Sat 14 Sep (worked) -> Wed 18 Sep (15-17 off).
    assert add_working_days(date(2024, 9, 13), 1) == date(2024, 9, 14)
    assert add_working_days(date(2024, 9, 13), 2) == date(2024, 9, 18)


def test_adding_zero_working_days_returns_the_start_even_on_a_holiday() -> None:
    assert add_working_days(date(2024, 10, 3), 0) == date(2024, 10, 3)


def test_adding_negative_working_days_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        add_working_days(date(2024, 9, 2), -1)


def test_working_days_between_excludes_start_and_includes_end() -> None:
    assert working_days_between(date(2024, 9, 27), date(2024, 9, 29)) == 1
    assert working_days_between(date(2024, 9, 30), date(2024, 10, 7)) == 0
    assert working_days_between(date(2024, 9, 27), date(2024, 10, 21)) == 13
    assert working_days_between(date(2024, 9, 27), date(2024, 10, 22)) == 14


def test_working_days_between_is_zero_when_end_is_not_after_start() -> None:
    assert working_days_between(date(2024, 10, 9), date(2024, 10, 9)) == 0
    assert working_days_between(date(2024, 10, 9), date(2024, 10, 8)) == 0


def test_working_days_between_inverts_add_working_days() -> None:
    start = date(2024, 9, 10)
    for count in range(0, 30):
        assert working_days_between(start, add_working_days(start, count)) == count


def test_a_year_outside_the_provisional_range_is_refused_naming_the_file_to_add() -> None:
    with pytest.raises(CalendarYearUnsupported) as caught:
        is_working_day(date(2101, 3, 2))
    error = caught.value
    assert isinstance(error, CalendarDataMissing)  # handled wherever a missing year is
    assert error.year == 2101
    assert error.code == "calendar_year_unsupported"
    message = str(error)
    assert "2025-2100" in message
    assert "data/calendar/2101.toml" in message  # tells the operator what to add


def test_counting_into_an_unsupported_year_raises_instead_of_guessing() -> None:
    with pytest.raises(CalendarYearUnsupported):
        add_working_days(date(2100, 12, 30), 5)
    with pytest.raises(CalendarYearUnsupported):
        working_days_between(date(2003, 12, 20), date(2004, 1, 10))  # before chinese-calendar

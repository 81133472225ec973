"""Working hours on the official calendar: weekends, the National Day week and Mid-Autumn 2024
(with their 调休 make-up days), adding and measuring open time, and working days.

2024 facts used here: 15-17 September (Mid-Autumn) and 1-7 October (National Day) are off;
Saturday 14 September, Sunday 29 September and Saturday 12 October are worked; Saturday
28 September and Sunday 13 October are ordinary days off.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from duban_shared.workdays import SHANGHAI, CalendarDataMissing, WorkingCalendar, YearArrangement
from hypothesis import given, settings
from hypothesis import strategies as st
from notifier.domain.workhours import (
    WorkingHours,
    add_working_days,
    add_working_hours,
    add_working_time,
    is_open,
    next_open,
    whole_working_days_between,
    working_hours_between,
    working_time_between,
)

CAL = WorkingCalendar()  # chinese-calendar alone
WH = WorkingHours()  # 09:00-18:00


def sh(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2024) -> datetime:
    """A moment on Shanghai's clock."""
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


# --- WorkingHours ---------------------------------------------------------------------------


def test_default_working_hours_are_nine_to_six() -> None:
    assert (WH.start, WH.end, WH.length) == (time(9), time(18), timedelta(hours=9))


@pytest.mark.parametrize(("start", "end"), [(time(18), time(9)), (time(9), time(9))])
def test_working_hours_must_start_before_they_end(start: time, end: time) -> None:
    with pytest.raises(ValueError, match="must start before they end"):
        WorkingHours(start, end)


def test_working_hours_are_wall_clock_times_without_a_zone() -> None:
    with pytest.raises(ValueError, match="without a time zone"):
        WorkingHours(time(9, tzinfo=UTC), time(18))


# --- is_open ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (sh(9, 27, 9), True),  # Friday, opening
        (sh(9, 27, 8, 59), False),  # before opening
        (sh(9, 27, 17, 59), True),
        (sh(9, 27, 18), False),  # closing time is closed
        (sh(9, 28, 10), False),  # Saturday off
        (sh(9, 29, 10), True),  # Sunday 29 September worked (调休)
        (sh(9, 30, 10), True),
        *[(sh(10, d, 10), False) for d in range(1, 8)],  # National Day week
        (sh(10, 8, 10), True),
        (sh(10, 12, 10), True),  # Saturday 12 October worked (调休)
        (sh(10, 13, 10), False),  # Sunday 13 October off
        (sh(9, 14, 10), True),  # Saturday 14 September worked (Mid-Autumn 调休)
        (sh(9, 15, 10), False),
        (sh(9, 16, 10), False),
        (sh(9, 17, 10), False),
        (sh(9, 18, 10), True),
    ],
    ids=lambda v: v.strftime("%a-%m-%d-%H%M") if isinstance(v, datetime) else str(v),
)
def test_is_open(moment: datetime, expected: bool) -> None:
    assert is_open(moment, WH, CAL) is expected


def test_is_open_reads_utc_moments_on_shanghai_clocks() -> None:
    assert is_open(datetime(2024, 9, 27, 1, 0, tzinfo=UTC), WH, CAL)  # 09:00 Shanghai
    assert not is_open(datetime(2024, 9, 27, 10, 0, tzinfo=UTC), WH, CAL)  # 18:00 Shanghai
    assert not is_open(datetime(2024, 9, 30, 16, 30, tzinfo=UTC), WH, CAL)  # 1 Oct 00:30


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        is_open(datetime(2024, 9, 27, 10), WH, CAL)


def test_other_hours_are_honoured() -> None:
    early = WorkingHours(time(8, 30), time(17, 30))
    assert is_open(sh(9, 27, 8, 30), early, CAL)
    assert not is_open(sh(9, 27, 17, 30), early, CAL)


# --- next_open -------------------------------------------------------------------------------


def test_next_open_is_the_moment_itself_when_open() -> None:
    assert next_open(sh(9, 27, 10, 15), WH, CAL) == sh(9, 27, 10, 15)


def test_next_open_before_opening_is_that_mornings_opening() -> None:
    assert next_open(sh(9, 27, 7), WH, CAL) == sh(9, 27, 9)


def test_next_open_after_friday_closing_is_the_make_up_sunday() -> None:
    assert next_open(sh(9, 27, 18), WH, CAL) == sh(9, 29, 9)  # Saturday 28 is off


def test_next_open_over_the_national_day_week() -> None:
    assert next_open(sh(9, 30, 18, 30), WH, CAL) == sh(10, 8, 9)
    assert next_open(sh(10, 3, 12), WH, CAL) == sh(10, 8, 9)


def test_next_open_over_an_ordinary_weekend() -> None:
    assert next_open(sh(9, 20, 19), WH, CAL) == sh(9, 23, 9)  # Friday -> Monday


def test_results_are_shanghai_aware_and_equal_to_the_utc_instant() -> None:
    result = next_open(datetime(2024, 9, 27, 10, 0, tzinfo=UTC), WH, CAL)
    assert result.tzinfo is SHANGHAI
    assert result == datetime(2024, 9, 29, 1, 0, tzinfo=UTC)


# --- add_working_hours -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        (sh(9, 27, 10), 2, sh(9, 27, 12)),
        (sh(9, 27, 9), 9, sh(9, 27, 18)),  # a full day ends at closing, not next morning
        (sh(9, 27, 9), 9.5, sh(9, 29, 9, 30)),
        (sh(9, 20, 17), 2, sh(9, 23, 10)),  # over an ordinary weekend
        (sh(9, 28, 10), 1, sh(9, 29, 10)),  # from a Saturday off to the make-up Sunday
        (sh(9, 30, 17), 2, sh(10, 8, 10)),  # over the National Day week
        (sh(9, 13, 17), 1, sh(9, 13, 18)),
        (sh(9, 13, 17), 10, sh(9, 14, 18)),  # Mid-Autumn: Saturday 14 is worked
        (sh(9, 13, 17), 11, sh(9, 18, 10)),  # 15-17 September are off
        (sh(9, 27, 10), 0.25, sh(9, 27, 10, 15)),
    ],
)
def test_add_working_hours(start: datetime, hours: float, expected: datetime) -> None:
    assert add_working_hours(start, hours, WH, CAL) == expected


def test_zero_hours_from_a_closed_moment_is_the_next_opening() -> None:
    assert add_working_hours(sh(10, 1, 12), 0, WH, CAL) == sh(10, 8, 9)
    assert add_working_hours(sh(9, 27, 10), 0, WH, CAL) == sh(9, 27, 10)


@pytest.mark.parametrize("hours", [-1.0, float("nan"), float("inf")])
def test_add_working_hours_refuses_negative_or_non_finite_amounts(hours: float) -> None:
    with pytest.raises(ValueError, match="finite number >= 0"):
        add_working_hours(sh(9, 27, 10), hours, WH, CAL)


def test_add_working_time_refuses_a_negative_amount() -> None:
    with pytest.raises(ValueError, match="negative"):
        add_working_time(sh(9, 27, 10), timedelta(minutes=-1), WH, CAL)


def test_months_of_working_hours() -> None:
    start = sh(1, 2, 9)
    end = add_working_hours(start, 1000, WH, CAL)
    assert is_open(end, WH, CAL) or end.time() == WH.end
    assert working_hours_between(start, end, WH, CAL) == pytest.approx(1000)
    # 1000 hours are 111 working days and one hour: 2024's 112th working day, 10:00.
    assert CAL.working_days_between(date(2024, 1, 1), end.date()) == 112
    assert end.time() == time(10)


# --- working_hours_between -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "hours"),
    [
        (sh(9, 20, 17), sh(9, 23, 10), 2.0),  # ordinary weekend
        (sh(9, 30, 17), sh(10, 8, 10), 2.0),  # National Day week
        (sh(9, 29, 9), sh(10, 12, 18), 63.0),  # 7 working days: 29, 30 Sep, 8-12 Oct
        (sh(9, 13, 9), sh(9, 18, 18), 27.0),  # Mid-Autumn: 13, 14 and 18 September
        (sh(9, 28, 10), sh(9, 28, 12), 0.0),  # all closed
        (sh(9, 27, 10), sh(9, 27, 10), 0.0),
        (sh(9, 27, 7), sh(9, 27, 20), 9.0),
    ],
)
def test_working_hours_between(a: datetime, b: datetime, hours: float) -> None:
    assert working_hours_between(a, b, WH, CAL) == pytest.approx(hours)


def test_working_hours_between_is_antisymmetric() -> None:
    assert working_hours_between(sh(10, 12, 18), sh(9, 29, 9), WH, CAL) == pytest.approx(-63)


def test_working_hours_between_mixes_zones() -> None:
    utc_b = datetime(2024, 10, 8, 2, 0, tzinfo=UTC)  # 10:00 Shanghai
    assert working_hours_between(sh(9, 30, 17), utc_b, WH, CAL) == pytest.approx(2)


# --- add_working_days ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        (sh(9, 27, 15, 30), 0, sh(9, 27, 15, 30)),
        (sh(9, 27, 15, 30), 1, sh(9, 29, 15, 30)),  # make-up Sunday
        (sh(9, 27, 15, 30), 2, sh(9, 30, 15, 30)),
        (sh(9, 27, 15, 30), 3, sh(10, 8, 15, 30)),  # over the National Day week
        (sh(10, 11, 10), 1, sh(10, 12, 10)),  # make-up Saturday
        (sh(10, 11, 10), 2, sh(10, 14, 10)),  # Sunday 13 October off
        (sh(9, 28, 10), 1, sh(9, 29, 10)),  # from a day off
        (sh(9, 13, 20), 1, sh(9, 14, 20)),  # keeps the time of day, even outside hours
        (sh(9, 13, 20), 2, sh(9, 18, 20)),  # Mid-Autumn
        (sh(9, 20, 10), 1, sh(9, 23, 10)),  # ordinary weekend
    ],
)
def test_add_working_days(start: datetime, days: int, expected: datetime) -> None:
    assert add_working_days(start, days, CAL) == expected


def test_add_working_days_counts_on_shanghai_days() -> None:
    start = datetime(2024, 9, 30, 16, 0, tzinfo=UTC)  # 1 October 00:00 Shanghai
    assert add_working_days(start, 1, CAL) == sh(10, 8, 0)


def test_add_working_days_refuses_a_negative_count() -> None:
    with pytest.raises(ValueError, match="negative"):
        add_working_days(sh(9, 27, 10), -1, CAL)


def test_whole_working_days_between() -> None:
    start = sh(9, 27, 15, 30)
    assert whole_working_days_between(start, sh(9, 29, 15, 29), CAL) == 0
    assert whole_working_days_between(start, sh(9, 29, 15, 30), CAL) == 1
    assert whole_working_days_between(start, sh(10, 7, 23), CAL) == 2
    assert whole_working_days_between(start, sh(10, 8, 15, 30), CAL) == 3
    assert whole_working_days_between(start, sh(9, 1), CAL) == 0


# --- the calendar ----------------------------------------------------------------------------


def test_an_unsupported_year_raises_calendar_data_missing() -> None:
    with pytest.raises(CalendarDataMissing):
        next_open(sh(1, 4, 10, year=2101), WH, CAL)
    with pytest.raises(CalendarDataMissing):
        add_working_hours(sh(12, 31, 17, year=2100), 2, WH, CAL)  # runs into 2101


def test_a_year_without_an_arrangement_runs_on_the_provisional_calendar() -> None:
    # 2027 is not in chinese-calendar: Thu 31 Dec 2026 17:00 + 2 h is Mon 4 Jan 2027 10:00
    # (Fri 1 Jan is 元旦, then the weekend; no 调休 on the provisional calendar).
    assert add_working_hours(sh(12, 31, 17, year=2026), 2, WH, CAL) == sh(1, 4, 10, year=2027)


def test_a_year_from_an_operators_file_is_used() -> None:
    # 2100-01-04 is a Monday; say it is a holiday and Saturday 2 January is worked.
    arrangement = YearArrangement(
        2100, frozenset({date(2100, 1, 4)}), frozenset({date(2100, 1, 2)})
    )
    calendar = WorkingCalendar([arrangement])
    assert next_open(sh(1, 1, 19, year=2100), WH, calendar) == sh(1, 2, 9, year=2100)
    assert add_working_hours(sh(1, 2, 17, year=2100), 2, WH, calendar) == sh(1, 5, 10, year=2100)


# --- properties ------------------------------------------------------------------------------

moments = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2024, 11, 30), timezones=st.just(SHANGHAI)
)
amounts = st.integers(min_value=0, max_value=200 * 3600 * 10**6).map(
    lambda us: timedelta(microseconds=us)
)


@settings(max_examples=150, deadline=None, database=None)
@given(start=moments, amount=amounts)
def test_adding_then_measuring_open_time_round_trips_exactly(
    start: datetime, amount: timedelta
) -> None:
    end = add_working_time(start, amount, WH, CAL)
    assert working_time_between(start, end, WH, CAL) == amount
    assert is_open(end, WH, CAL) or end.timetz().replace(tzinfo=None) == WH.end
    assert end >= start


@settings(max_examples=150, deadline=None, database=None)
@given(start=moments, hours=st.floats(min_value=0, max_value=200))
def test_adding_then_measuring_hours_round_trips(start: datetime, hours: float) -> None:
    end = add_working_hours(start, hours, WH, CAL)
    assert working_hours_between(start, end, WH, CAL) == pytest.approx(hours, abs=1e-6)


@settings(max_examples=150, deadline=None, database=None)
@given(a=moments, b=moments)
def test_measuring_then_adding_lands_no_later_than_the_end(a: datetime, b: datetime) -> None:
    a, b = min(a, b), max(a, b)
    between = working_time_between(a, b, WH, CAL)
    assert working_time_between(b, a, WH, CAL) == -between
    back = add_working_time(a, between, WH, CAL)
    if between:
        # The earliest moment with that much open time: b, or where b's closed stretch began.
        assert back <= b
        assert working_time_between(back, b, WH, CAL) == timedelta(0)
    else:  # no open time at all: adding nothing waits for the next opening
        assert back == next_open(a, WH, CAL)


@settings(max_examples=150, deadline=None, database=None)
@given(start=moments, days=st.integers(min_value=0, max_value=40))
def test_adding_then_counting_working_days_round_trips(start: datetime, days: int) -> None:
    end = add_working_days(start, days, CAL)
    assert whole_working_days_between(start, end, CAL) == days
    assert whole_working_days_between(start, end - timedelta(microseconds=1), CAL) == max(
        days - 1, 0
    )
    assert end.timetz().replace(tzinfo=None) == start.timetz().replace(tzinfo=None)

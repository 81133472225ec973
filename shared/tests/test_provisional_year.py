"""A year without an official arrangement runs on a provisional calendar (statutory holidays of
the 2024 amendment, no 调休), says which judgements used it, and is refused outside its range."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from pathlib import Path

import pytest
from duban_shared.failures import error_code, is_transient
from duban_shared.workdays import (
    PROVISIONAL_YEARS,
    CalendarDataMissing,
    CalendarYearUnsupported,
    WorkingCalendar,
    provisional_year,
)

# The days off of 2027 under 全国年节及纪念日放假办法 (2024): 春节 is Saturday 6 February 2027
# (除夕 Friday 5 February), 清明 Monday 5 April, 端午 Wednesday 9 June, 中秋 Wednesday 15 September.
HOLIDAYS_2027 = {
    date(2027, 1, 1): "元旦",
    date(2027, 2, 5): "除夕",
    date(2027, 2, 6): "春节 初一",
    date(2027, 2, 7): "春节 初二",
    date(2027, 2, 8): "春节 初三",
    date(2027, 4, 5): "清明",
    date(2027, 5, 1): "劳动节",
    date(2027, 5, 2): "劳动节",
    date(2027, 6, 9): "端午",
    date(2027, 9, 15): "中秋",
    date(2027, 10, 1): "国庆",
    date(2027, 10, 2): "国庆",
    date(2027, 10, 3): "国庆",
}


def test_every_statutory_holiday_of_2027_and_nothing_else() -> None:
    arrangement = provisional_year(2027)
    assert arrangement.holidays == frozenset(HOLIDAYS_2027)
    assert arrangement.workdays == frozenset()  # no 调休 make-up days


def test_2027_working_days_are_weekdays_less_the_holidays() -> None:
    calendar = WorkingCalendar()
    day, off_weekdays = date(2027, 1, 1), []
    while day.year == 2027:
        weekday = day.weekday() < 5
        if weekday and day in HOLIDAYS_2027:
            off_weekdays.append(day)
        assert calendar.is_working_day(day) is (weekday and day not in HOLIDAYS_2027), day
        day += timedelta(days=1)
    # 元旦 Fri, 除夕 Fri, 初三 Mon, 清明 Mon, 端午 Wed, 中秋 Wed, 国庆 Fri: 7 weekdays off
    assert len(off_weekdays) == 7
    assert calendar.working_days_between(date(2026, 12, 31), date(2027, 12, 31)) == 261 - 7


@pytest.mark.parametrize(
    ("year", "spring_festival", "qingming", "duanwu", "mid_autumn"),
    [
        # Checked against the official arrangements chinese-calendar holds for 2025 and 2026.
        (2025, date(2025, 1, 29), date(2025, 4, 4), date(2025, 5, 31), date(2025, 10, 6)),
        (2026, date(2026, 2, 17), date(2026, 4, 5), date(2026, 6, 19), date(2026, 9, 25)),
        # Later years, from published conversion tables.
        (2028, date(2028, 1, 26), date(2028, 4, 4), date(2028, 5, 28), date(2028, 10, 3)),
        (2030, date(2030, 2, 3), date(2030, 4, 5), date(2030, 6, 5), date(2030, 9, 12)),
    ],
)
def test_lunar_holidays_and_qingming_fall_on_their_known_days(
    year: int, spring_festival: date, qingming: date, duanwu: date, mid_autumn: date
) -> None:
    holidays = provisional_year(year).holidays
    eve = spring_festival - timedelta(days=1)
    for day in (eve, spring_festival, qingming, duanwu, mid_autumn):
        assert day in holidays, day
    assert spring_festival + timedelta(days=3) not in holidays  # 初四 works
    assert eve - timedelta(days=1) not in holidays


def test_the_provisional_holidays_are_the_statutory_days_of_the_official_2025_and_2026() -> None:
    import chinese_calendar

    for year in (2025, 2026):
        for day in provisional_year(year).holidays:
            assert chinese_calendar.is_holiday(day), day  # every day we assume off was off


def test_years_outside_the_range_are_refused_not_computed() -> None:
    assert (PROVISIONAL_YEARS.start, PROVISIONAL_YEARS.stop - 1) == (2025, 2100)
    for year in (2024, 2101, 9999):
        with pytest.raises(CalendarYearUnsupported) as refused:
            provisional_year(year)
        assert refused.value.year == year
    calendar = WorkingCalendar()
    with pytest.raises(CalendarYearUnsupported) as refused:
        calendar.add_working_days(date(2100, 12, 24), 10)
    error = refused.value
    assert isinstance(error, CalendarDataMissing)
    assert error_code(error) == "calendar_year_unsupported"
    assert not is_transient(error)  # a record needing it is parked, not retried forever
    assert calendar.provisional_years_used() == [2100]


def test_a_judgement_records_the_provisional_years_it_used() -> None:
    calendar = WorkingCalendar()
    with calendar.recording() as used:
        calendar.working_days_between(date(2026, 11, 2), date(2026, 12, 31))
    assert used == set()  # 2026 is official
    with calendar.recording() as used:
        calendar.working_days_between(date(2026, 12, 1), date(2028, 1, 10))
    assert used == {2027, 2028}
    # Cached days count too: asking again about the same days records them again.
    with calendar.recording() as again:
        assert calendar.is_working_day(date(2027, 1, 4)) is True
    assert again == {2027}
    assert calendar.is_official(2026) and not calendar.is_official(2027)


def test_a_remembered_answer_records_its_provisional_years_again() -> None:
    calendar = WorkingCalendar()
    with calendar.recording() as first:
        counted = calendar.working_days_between(date(2026, 12, 1), date(2027, 1, 10))
        added = calendar.add_working_days(date(2026, 12, 28), 5)
    assert first == {2027}
    with calendar.recording() as again:  # answered from memory: the same days were counted
        assert calendar.working_days_between(date(2026, 12, 1), date(2027, 1, 10)) == counted
        assert calendar.add_working_days(date(2026, 12, 28), 5) == added
    assert again == {2027}
    with calendar.recording() as official_only:  # 31 December 2026 counts no day of 2027
        calendar.working_days_between(date(2026, 11, 30), date(2026, 12, 31))
        calendar.working_days_between(date(2026, 11, 30), date(2026, 12, 31))
        calendar.add_working_days(date(2026, 12, 31), 0)
    assert official_only == set()


def test_an_official_file_replaces_the_provisional_year(tmp_path: Path) -> None:
    # Say the State Council gives 4 January 2027 off and makes Saturday 9 January a workday.
    (tmp_path / "2027.toml").write_text(
        "year = 2027\nholidays = [2027-01-01, 2027-01-04]\nworkdays = [2027-01-09]\n",
        encoding="utf-8",
    )
    calendar = WorkingCalendar.from_folder(tmp_path)
    assert calendar.is_official(2027)
    with calendar.recording() as used:
        assert calendar.is_working_day(date(2027, 1, 4)) is False
        assert calendar.is_working_day(date(2027, 1, 9)) is True
    assert used == set()


def test_the_operator_is_warned_once_per_provisional_year(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calendar = WorkingCalendar()
    with caplog.at_level(logging.WARNING, logger="duban_shared.workdays"):
        calendar.working_days_between(date(2027, 1, 1), date(2027, 12, 31))
        calendar.working_days_between(date(2027, 1, 1), date(2028, 2, 1))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.__dict__["calendar_year"] for r in warnings] == [2027, 2028]
    assert "data/calendar/2027.toml" in warnings[0].getMessage()

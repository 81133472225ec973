"""The stall model of progress.domain.stall, checked by hand against the official calendar.

Last report Fri 27 Sep 2024; with report_every 10 + grace 3 the lead may stay silent for 13
working days: Sun 29 Sep (调休), Mon 30 Sep, [1-7 Oct National Day], Tue 8, Wed 9, Thu 10,
Fri 11, Sat 12 (调休), Mon 14, Tue 15, Wed 16, Thu 17, Fri 18, Mon 21 Oct. The 14th working day,
Tue 22 Oct 2024, starts the silence: at 00:00 Asia/Shanghai (16:00 UTC on 21 Oct).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from duban_shared.events import Level, StallReason, StallTransitionKind
from progress.domain.stall import (
    Facts,
    Policy,
    Target,
    Verdict,
    judge,
    silence_deadline,
    transition_needed,
    warn_from,
)

POLICY = Policy(report_every=10, grace=3)
LAST_REPORT = datetime.fromisoformat("2024-09-27T17:45:00+08:00")  # Friday before National Day
DEADLINE = datetime.fromisoformat("2024-10-22T00:00:00+08:00")


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_allowed_silence_is_report_period_plus_grace() -> None:
    assert POLICY.allowed_silence == 13
    assert Policy(report_every=5, grace=0).allowed_silence == 5


def test_silence_deadline_spans_the_national_day_week_with_make_up_days() -> None:
    assert silence_deadline(LAST_REPORT, POLICY) == DEADLINE
    assert silence_deadline(LAST_REPORT, POLICY) == _at("2024-10-21T16:00:00+00:00")


def test_silence_deadline_uses_the_shanghai_day_of_the_last_report() -> None:
    # 23:30 UTC on Thu 26 Sep is already Fri 27 Sep in Zhaoqing.
    assert silence_deadline(_at("2024-09-26T23:30:00+00:00"), POLICY) == DEADLINE
    # 15:30 UTC on Thu 26 Sep is still Thu 26 Sep there: one working day earlier.
    assert silence_deadline(_at("2024-09-26T15:30:00+00:00"), POLICY) == _at(
        "2024-10-21T00:00:00+08:00"
    )


def test_silence_deadline_across_mid_autumn() -> None:
    # Mon 2 Sep + 13 working days: 3-6, 9-13, Sat 14 (调休), [15-17 off], 18, 19, 20 Sep.
    # Silent from the start of Mon 23 Sep.
    assert silence_deadline(_at("2024-09-02T09:00:00+08:00"), POLICY) == _at(
        "2024-09-23T00:00:00+08:00"
    )


def _silence(now: str, *, blocked: bool = False, last: datetime = LAST_REPORT) -> Verdict:
    return judge(now=_at(now), facts=Facts(last_heard=last, any_blocked=blocked), policy=POLICY)


def test_lead_is_not_silent_until_the_last_minute_of_the_13th_working_day() -> None:
    verdict = _silence("2024-10-21T23:59:59+08:00")
    assert verdict == Verdict(reasons=(), silent_working_days=13, next_check_at=DEADLINE)
    assert verdict.level == Level.GREEN


def test_lead_is_silent_from_the_start_of_the_14th_working_day() -> None:
    verdict = _silence("2024-10-22T00:00:00+08:00")
    assert (verdict.reasons, verdict.level) == ((StallReason.SILENT,), Level.RED)
    assert verdict.silent_working_days == 14
    assert verdict.next_check_at is None  # no due day: only a report can change it now


def test_holiday_week_does_not_count_as_silence() -> None:
    verdict = _silence("2024-10-07T20:00:00+08:00")
    assert verdict.reason is None
    assert verdict.silent_working_days == 2  # only Sun 29 and Mon 30 Sep


def test_blocked_outranks_silent() -> None:
    verdict = _silence("2024-11-01T10:00:00+08:00", blocked=True)
    assert verdict.reasons == (StallReason.BLOCKED, StallReason.SILENT)
    assert (verdict.reason, verdict.level) == (StallReason.BLOCKED, Level.RED)


def test_blocked_when_not_silent_still_schedules_the_silence_check() -> None:
    verdict = _silence("2024-09-30T10:00:00+08:00", blocked=True)
    assert verdict.reasons == (StallReason.BLOCKED,)
    assert verdict.next_check_at == DEADLINE


# Due days, around the National Day week 2024 (1-7 Oct off; Sun 29 Sep, Sat 12 Oct worked).


def test_the_warning_window_counts_the_make_up_saturday_as_a_working_day() -> None:
    # Due Tue 15 Oct, 5 working days' warning: 15, 14, Sat 12 (调休), 11, 10 -> from Thu 10 Oct.
    assert warn_from(date(2024, 10, 15), 5) == date(2024, 10, 10)


def test_the_warning_window_skips_the_holiday_week() -> None:
    # Due Tue 8 Oct, 3 working days: 8, Mon 30 Sep, Sun 29 Sep (调休) -> from Sat 28 Sep.
    assert warn_from(date(2024, 10, 8), 3) == date(2024, 9, 28)


def _due(now: str, due_on: date, **facts: Any) -> Verdict:
    policy = Policy(report_every=10, grace=3, warn_before_due=3, due_on=due_on)
    heard = Facts(last_heard=_at("2024-09-27T10:00:00+08:00"))  # not silent before 22 Oct
    return judge(now=_at(now), facts=replace(heard, **facts), policy=policy)


def test_due_soon_is_blue_and_the_check_before_it_is_scheduled_at_its_start() -> None:
    before = _due("2024-09-27T18:00:00+08:00", date(2024, 10, 8))
    assert (before.reasons, before.level) == ((), Level.GREEN)
    assert before.next_check_at == _at("2024-09-28T00:00:00+08:00")
    during = _due("2024-10-03T12:00:00+08:00", date(2024, 10, 8))  # a holiday, still due soon
    assert (during.reasons, during.level) == ((StallReason.DUE_SOON,), Level.BLUE)
    assert during.next_check_at == _at("2024-10-09T00:00:00+08:00")  # overdue from then


def test_overdue_is_red_from_the_day_after_the_due_day() -> None:
    last_minute = _due("2024-10-08T23:59:59+08:00", date(2024, 10, 8))
    assert last_minute.reasons == (StallReason.DUE_SOON,)
    overdue = _due("2024-10-09T00:00:00+08:00", date(2024, 10, 8))
    assert (overdue.reasons, overdue.level) == ((StallReason.OVERDUE,), Level.RED)


def test_a_settled_work_point_has_no_reasons_and_needs_no_checks() -> None:
    verdict = _due("2024-12-01T10:00:00+08:00", date(2024, 10, 8), settled=True, any_blocked=True)
    assert verdict == Verdict(reasons=(), silent_working_days=0, next_check_at=None)


# Pace: the straight line from 1 Jan (0%) to 31 Dec 2024 (100%), 365 days, tolerance 10 points.
# On 1 Jul 182 days have passed: 49.86% expected, so anything under 39.86% is behind.

YEAR = Policy(report_every=10, grace=3, starts_on=date(2024, 1, 1), due_on=date(2024, 12, 31))
JULY_1 = _at("2024-07-01T10:00:00+08:00")
TREES = Target(metric="林分优化提升", value=13.0, comparator=">=")


def _pace(**facts: Any) -> Verdict:
    return judge(now=JULY_1, facts=replace(Facts(last_heard=JULY_1), **facts), policy=YEAR)


def test_a_percent_below_the_line_by_more_than_the_tolerance_is_behind_pace() -> None:
    verdict = _pace(percent=39)
    assert verdict.expected_percent == pytest.approx(49.86, abs=0.01)
    assert (verdict.reasons, verdict.level, verdict.lagging) == (
        (StallReason.BEHIND_PACE,),
        Level.YELLOW,
        ("percent",),
    )


def test_a_percent_within_the_tolerance_is_checked_again_the_day_it_falls_behind() -> None:
    verdict = _pace(percent=40)
    assert verdict.reasons == ()
    # 40 + 10 = 50% of 365 days is 182.5 days: behind from day 183, 2 Jul.
    assert verdict.next_check_at == _at("2024-07-02T00:00:00+08:00")
    assert judge(
        now=_at("2024-07-02T00:00:00+08:00"),
        facts=Facts(last_heard=JULY_1, percent=40),
        policy=YEAR,
    ).reasons == (StallReason.BEHIND_PACE,)


def test_a_kpi_is_judged_as_a_share_of_its_target() -> None:
    behind = _pace(percent=60, kpis={"林分优化提升": 5.0}, targets=(TREES,))  # 38.5% of 13
    assert behind.lagging == ("林分优化提升",)
    on_line = _pace(percent=60, kpis={"林分优化提升": 6.5}, targets=(TREES,))  # 50%
    assert on_line.reasons == ()


def test_an_increase_target_is_judged_on_the_increase_achieved() -> None:
    faster = Target(metric="诉求转派速度", value=10.0, comparator="increase_pct")
    assert _pace(kpis={"诉求转派速度": 2.0}, targets=(faster,)).lagging == ("诉求转派速度",)
    assert _pace(kpis={"诉求转派速度": 5.0}, targets=(faster,)).reasons == ()


def test_a_capped_kpi_is_behind_once_it_exceeds_its_cap() -> None:
    cap = Target(metric="平均办理时长", value=3.0, comparator="<=")
    assert _pace(kpis={"平均办理时长": 3.5}, targets=(cap,)).lagging == ("平均办理时长",)
    assert _pace(kpis={"平均办理时长": 2.0}, targets=(cap,)).reasons == ()


def test_without_a_start_or_a_due_day_there_is_no_pace_line() -> None:
    verdict = judge(now=JULY_1, facts=Facts(last_heard=JULY_1, percent=1), policy=Policy(10, 3))
    assert (verdict.reasons, verdict.expected_percent) == ((), None)


@pytest.mark.parametrize(
    ("recent", "flat"),
    [
        ((60, 60, 60), True),
        ((10, 60, 60, 60), True),
        ((60, 60), False),  # fewer reports than the policy's 3
        ((50, 60, 60), False),
        ((100, 100, 100), False),  # complete, waiting for `done`
        ((None, None, None), False),  # no percent given
    ],
)
def test_flatline_is_the_same_percent_in_the_last_reports(
    recent: tuple[int | None, ...], flat: bool
) -> None:
    verdict = _pace(percent=recent[-1], recent_percents=recent)
    assert (StallReason.FLATLINE in verdict.reasons) is flat
    if flat:
        assert verdict.level == Level.YELLOW


def test_the_colour_is_the_highest_level_and_the_headline_the_most_severe_reason() -> None:
    verdict = judge(
        now=_at("2024-12-20T10:00:00+08:00"),
        facts=Facts(last_heard=_at("2024-12-19T10:00:00+08:00"), percent=50, any_blocked=True),
        policy=YEAR,
    )
    assert verdict.reasons == (
        StallReason.BLOCKED,
        StallReason.BEHIND_PACE,
        StallReason.DUE_SOON,
    )
    assert (verdict.level, verdict.reason) == (Level.RED, StallReason.BLOCKED)


def _verdict(*reasons: StallReason) -> Verdict:
    return Verdict(reasons=reasons, silent_working_days=0, next_check_at=None)


@pytest.mark.parametrize(
    ("open_level", "verdict", "kind"),
    [
        (None, _verdict(), None),
        (None, _verdict(StallReason.DUE_SOON), StallTransitionKind.OPENED),
        (None, _verdict(StallReason.SILENT), StallTransitionKind.OPENED),
        (Level.BLUE, _verdict(StallReason.OVERDUE), StallTransitionKind.LEVEL_CHANGED),
        (Level.RED, _verdict(StallReason.FLATLINE), StallTransitionKind.LEVEL_CHANGED),
        (Level.RED, _verdict(StallReason.BLOCKED), None),  # silent -> blocked: same level
        (Level.YELLOW, _verdict(StallReason.BEHIND_PACE), None),
        (Level.YELLOW, _verdict(), StallTransitionKind.RECOVERED),
    ],
)
def test_episode_transitions_follow_the_level(
    open_level: Level | None, verdict: Verdict, kind: StallTransitionKind | None
) -> None:
    assert transition_needed(open_level, verdict) == kind


def test_silence_is_counted_on_the_calendar_it_is_given(tmp_path: Path) -> None:
    from duban_shared.workdays import WorkingCalendar

    (tmp_path / "2099.toml").write_text(
        "year = 2099\nholidays = [2099-03-02, 2099-03-03, 2099-03-04]\n", encoding="utf-8"
    )
    calendar = WorkingCalendar.from_folder(tmp_path)
    last = datetime.fromisoformat("2099-02-27T10:00:00+08:00")  # a Friday
    policy = Policy(report_every=2, grace=0)
    # Mon 2 to Wed 4 March are holidays in the file: the two working days are Thu 5 and Fri 6,
    # so silence starts on Mon 9 March.
    assert silence_deadline(last, policy, calendar) == datetime.fromisoformat(
        "2099-03-09T00:00:00+08:00"
    )
    verdict = judge(
        now=datetime.fromisoformat("2099-03-06T18:00:00+08:00"),
        facts=Facts(last_heard=last),
        policy=policy,
        calendar=calendar,
    )
    assert (verdict.reason, verdict.silent_working_days) == (None, 2)

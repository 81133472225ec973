"""Pure stall rules of progress.domain, checked by hand against the official calendar.

Last report Fri 27 Sep 2024; with report_every 10 + grace 3 the lead may stay silent for 13
working days: Sun 29 Sep (调休), Mon 30 Sep, [1-7 Oct National Day], Tue 8, Wed 9, Thu 10,
Fri 11, Sat 12 (调休), Mon 14, Tue 15, Wed 16, Thu 17, Fri 18, Mon 21 Oct. The 14th working day,
Tue 22 Oct 2024, starts the silence: at 00:00 Asia/Shanghai (16:00 UTC on 21 Oct).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from duban_shared.events import StallReason
from progress.domain import Policy, Verdict, judge, silence_deadline, transition_needed

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


def test_lead_is_not_silent_until_the_last_minute_of_the_13th_working_day() -> None:
    verdict = judge(
        now=_at("2024-10-21T23:59:59+08:00"),
        last_heard=LAST_REPORT,
        any_blocked=False,
        policy=POLICY,
    )
    assert verdict == Verdict(reason=None, silent_working_days=13, next_check_at=DEADLINE)


def test_lead_is_silent_from_the_start_of_the_14th_working_day() -> None:
    verdict = judge(now=DEADLINE, last_heard=LAST_REPORT, any_blocked=False, policy=POLICY)
    assert verdict.reason == StallReason.SILENT
    assert verdict.silent_working_days == 14
    assert verdict.next_check_at is None  # only a report can change it now


def test_holiday_week_does_not_count_as_silence() -> None:
    verdict = judge(
        now=_at("2024-10-07T20:00:00+08:00"),
        last_heard=LAST_REPORT,
        any_blocked=False,
        policy=POLICY,
    )
    assert verdict.reason is None
    assert verdict.silent_working_days == 2  # only Sun 29 and Mon 30 Sep


def test_blocked_outranks_silent() -> None:
    verdict = judge(
        now=_at("2024-11-01T10:00:00+08:00"),
        last_heard=LAST_REPORT,
        any_blocked=True,
        policy=POLICY,
    )
    assert verdict.reason == StallReason.BLOCKED
    assert verdict.silent_working_days > POLICY.allowed_silence


def test_blocked_when_not_silent_still_schedules_the_silence_check() -> None:
    verdict = judge(
        now=_at("2024-09-30T10:00:00+08:00"),
        last_heard=LAST_REPORT,
        any_blocked=True,
        policy=POLICY,
    )
    assert verdict.reason == StallReason.BLOCKED
    assert verdict.next_check_at == DEADLINE


def test_neither_blocked_nor_silent_is_no_stall() -> None:
    verdict = judge(
        now=_at("2024-10-10T10:00:00+08:00"),
        last_heard=LAST_REPORT,
        any_blocked=False,
        policy=POLICY,
    )
    assert verdict.reason is None


def _verdict(reason: StallReason | None) -> Verdict:
    return Verdict(reason=reason, silent_working_days=0, next_check_at=None)


def test_a_stall_without_an_open_episode_opens_one() -> None:
    assert transition_needed(None, _verdict(StallReason.BLOCKED)) == "opened"
    assert transition_needed(None, _verdict(StallReason.SILENT)) == "opened"


@pytest.mark.parametrize("open_reason", ["blocked", "silent"])
def test_an_open_episode_recovers_when_neither_blocked_nor_silent(open_reason: str) -> None:
    assert transition_needed(open_reason, _verdict(None)) == "recovered"


@pytest.mark.parametrize(
    ("open_reason", "reason"),
    [
        (None, None),
        ("blocked", StallReason.BLOCKED),
        ("silent", StallReason.SILENT),
        ("silent", StallReason.BLOCKED),  # same episode: one alert per episode
        ("blocked", StallReason.SILENT),
    ],
)
def test_no_transition_while_the_stall_state_is_unchanged(
    open_reason: str | None, reason: StallReason | None
) -> None:
    assert transition_needed(open_reason, _verdict(reason)) is None


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
        last_heard=last,
        any_blocked=False,
        policy=policy,
        calendar=calendar,
    )
    assert (verdict.reason, verdict.silent_working_days) == (None, 2)

"""Escalation policies at work: urgency and holding, and the planner for every kind of step,
with explicit datetimes (no clock, no sleeping).

The planner scenarios run in the last week of September 2024: an alert fires on Wednesday
25 September at 14:00; Saturday 28 is off, Sunday 29 is a make-up working day (调休), 1-7 October
are the National Day holidays. With 09:00-18:00 working hours, 8 working hours after the firing
is Thursday 13:00, 16 is Friday 12:00 and 24 is Sunday 29 September 11:00.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from duban_shared.events import Level, StallReason
from duban_shared.workdays import SHANGHAI, WorkingCalendar
from hypothesis import given, settings
from hypothesis import strategies as st
from notifier.adapters.policy_files import load_policies
from notifier.domain.planner import AlertClock, due_steps
from notifier.domain.policy import Channel, EscalationPolicy, While

CAL = WorkingCalendar()
REPO_POLICIES = Path(__file__).resolve().parents[4] / "data" / "escalation"


def sh(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A moment of 2024 on Shanghai's clock."""
    return datetime(2024, month, day, hour, minute, tzinfo=SHANGHAI)


# --- urgency and holding ---------------------------------------------------------------------


@pytest.fixture
def policy() -> EscalationPolicy:
    return load_policies(REPO_POLICIES).default


@pytest.mark.parametrize(
    ("level", "reasons", "urgent"),
    [
        (Level.RED, (StallReason.BLOCKED,), True),
        (Level.RED, (StallReason.SILENT, StallReason.OVERDUE), True),
        (Level.RED, (StallReason.SILENT,), False),
        (Level.YELLOW, (StallReason.BEHIND_PACE,), False),
        (Level.YELLOW, (StallReason.BLOCKED,), False),  # the level must match as well
        (Level.RED, (), False),
    ],
)
def test_urgent_needs_both_a_level_and_a_reason(
    policy: EscalationPolicy, level: Level, reasons: tuple[StallReason, ...], urgent: bool
) -> None:
    assert policy.is_urgent(level, reasons) is urgent


def test_quiet_channels_hold_unless_urgent_and_email_is_never_held(
    policy: EscalationPolicy,
) -> None:
    silent, blocked = (StallReason.SILENT,), (StallReason.BLOCKED,)
    assert policy.holds(Channel.SMS, Level.RED, silent)
    assert policy.holds("wecom", Level.YELLOW, (StallReason.FLATLINE,))
    assert not policy.holds(Channel.SMS, Level.RED, blocked)
    assert not policy.holds(Channel.EMAIL, Level.RED, silent)
    with pytest.raises(ValueError, match="fax"):
        policy.holds("fax", Level.RED, silent)


def test_release_at_waits_for_the_next_opening_only_when_held(policy: EscalationPolicy) -> None:
    friday_night = sh(9, 27, 22)
    silent, blocked = (StallReason.SILENT,), (StallReason.BLOCKED,)
    assert policy.release_at(Channel.SMS, Level.RED, silent, friday_night, CAL) == sh(9, 29, 9)
    assert policy.release_at(Channel.SMS, Level.RED, blocked, friday_night, CAL) == friday_night
    assert policy.release_at(Channel.EMAIL, Level.RED, silent, friday_night, CAL) == friday_night
    assert policy.release_at(Channel.SMS, Level.RED, silent, sh(9, 27, 10), CAL) == sh(9, 27, 10)


# --- the planner -----------------------------------------------------------------------------

FIRED = sh(9, 25, 14)  # Wednesday


def clock(
    done: Mapping[str, Sequence[datetime]] | None = None,
    acknowledged_at: datetime | None = None,
    fired_at: datetime = FIRED,
) -> AlertClock:
    return AlertClock(
        fired_at=fired_at,
        acknowledged_at=acknowledged_at,
        level=Level.RED,
        reasons=(StallReason.SILENT,),
        done=done or {},
    )


def plan(
    policy: EscalationPolicy, alert: AlertClock, now: datetime
) -> tuple[list[tuple[str, datetime]], datetime | None]:
    due, next_at = due_steps(policy, alert, now, CAL)
    return [(d.step.id, d.due_at) for d in due], next_at


def steps_policy(*steps: dict[str, Any]) -> EscalationPolicy:
    return EscalationPolicy.model_validate({"steps": list(steps)})


AT_ONCE = {"lead": [FIRED], "co": [FIRED]}


def test_at_once_steps_are_due_when_the_alert_fires(policy: EscalationPolicy) -> None:
    assert plan(policy, clock(), FIRED) == (
        [("lead", FIRED), ("co", FIRED)],
        sh(9, 26, 13),  # the first reminder, 8 working hours later
    )


def test_executed_steps_are_not_due_again(policy: EscalationPolicy) -> None:
    assert plan(policy, clock(AT_ONCE), FIRED) == ([], sh(9, 26, 13))
    assert plan(policy, clock(AT_ONCE), sh(9, 26, 12, 59)) == ([], sh(9, 26, 13))


def test_a_zero_wait_is_at_once_even_when_closed(policy: EscalationPolicy) -> None:
    saturday = sh(9, 28, 22)
    due, next_at = plan(policy, clock(fired_at=saturday), saturday)
    assert due == [("lead", saturday), ("co", saturday)]
    assert next_at == sh(9, 29, 17)  # 8 working hours on the make-up Sunday


def test_the_reminder_repeats_every_8_working_hours_while_unacknowledged(
    policy: EscalationPolicy,
) -> None:
    assert plan(policy, clock(AT_ONCE), sh(9, 26, 13)) == (
        [("lead-again", sh(9, 26, 13))],
        sh(9, 27, 12),
    )
    done = {**AT_ONCE, "lead-again": [sh(9, 26, 13)]}
    assert plan(policy, clock(done), sh(9, 26, 15)) == ([], sh(9, 27, 12))
    # 16 working hours: the second reminder and the office, in the policy's order
    assert plan(policy, clock(done), sh(9, 27, 12)) == (
        [("lead-again", sh(9, 27, 12)), ("office", sh(9, 27, 12))],
        sh(9, 29, 11),  # 24 working hours: Friday 12:00 + 6 h + 2 h on the make-up Sunday
    )


def test_reminders_and_the_office_stop_once_acknowledged(policy: EscalationPolicy) -> None:
    done = {**AT_ONCE, "lead-again": [sh(9, 26, 13)]}
    acknowledged = sh(9, 27, 11)  # an hour before the second reminder and the office
    due, next_at = plan(policy, clock(done, acknowledged), sh(9, 27, 12))
    assert due == []
    # Only `office-stuck` is left: 5 working days after the acknowledgement, over the
    # National Day week (29, 30 September, 8, 9, 10 October).
    assert next_at == sh(10, 10, 11)


def test_escalation_when_still_stalled_working_days_after_acknowledgement(
    policy: EscalationPolicy,
) -> None:
    acknowledged = sh(9, 27, 11)
    done: dict[str, list[datetime]] = {**AT_ONCE, "lead-again": [sh(9, 26, 13)]}
    assert plan(policy, clock(done, acknowledged), sh(10, 10, 10, 59)) == ([], sh(10, 10, 11))
    assert plan(policy, clock(done, acknowledged), sh(10, 10, 11)) == (
        [("office-stuck", sh(10, 10, 11))],
        None,
    )
    done["office-stuck"] = [sh(10, 10, 11)]
    assert plan(policy, clock(done, acknowledged), sh(11, 20)) == ([], None)


def test_after_an_outage_a_repeat_is_due_once_not_once_per_missed_period(
    policy: EscalationPolicy,
) -> None:
    done = {**AT_ONCE, "lead-again": [sh(9, 26, 13)]}
    # 48 working hours after the firing is 8 October 17:00: the 6th reminder is the latest.
    assert plan(policy, clock(done), sh(10, 8, 17, 30)) == (
        [("lead-again", sh(10, 8, 17)), ("office", sh(9, 27, 12))],
        sh(10, 9, 16),
    )
    done = {**done, "lead-again": [sh(9, 26, 13), sh(10, 8, 17, 30)], "office": [sh(10, 8, 17)]}
    assert plan(policy, clock(done), sh(10, 8, 17, 30)) == ([], sh(10, 9, 16))


def test_a_repeat_executed_late_still_counts_for_its_period(policy: EscalationPolicy) -> None:
    done = {**AT_ONCE, "lead-again": [sh(9, 26, 16)]}  # due at 13:00, executed at 16:00
    assert plan(policy, clock(done), sh(9, 26, 17)) == ([], sh(9, 27, 12))


def test_hours_count_over_mid_autumn(policy: EscalationPolicy) -> None:
    fired = sh(9, 13, 17)  # Friday; Saturday 14 is worked, 15-17 September are off
    done = {"lead": [fired], "co": [fired]}
    assert plan(policy, clock(done, fired_at=fired), fired) == ([], sh(9, 14, 16))
    done["lead-again"] = [sh(9, 14, 16)]
    assert plan(policy, clock(done, fired_at=fired), sh(9, 14, 16)) == ([], sh(9, 18, 15))


def test_utc_and_shanghai_moments_plan_alike(policy: EscalationPolicy) -> None:
    fired_utc = FIRED.astimezone(UTC)
    due, next_at = plan(policy, clock(fired_at=fired_utc), fired_utc)
    assert due == [("lead", FIRED), ("co", FIRED)]
    assert next_at == sh(9, 26, 13)
    assert next_at is not None and next_at.tzinfo is SHANGHAI


def test_due_times_are_on_shanghai_clocks_whatever_zone_they_came_in() -> None:
    policy = steps_policy({"id": "check", "notify": "coordinating_office", "while": "acknowledged"})
    acknowledged = sh(9, 26, 10).astimezone(UTC)
    due, _ = due_steps(policy, clock(acknowledged_at=acknowledged), acknowledged, CAL)
    assert [d.due_at for d in due] == [sh(9, 26, 10)]
    assert due[0].due_at.tzinfo is SHANGHAI


def test_naive_datetimes_are_refused(policy: EscalationPolicy) -> None:
    with pytest.raises(ValueError, match=r"now .* must be an aware datetime"):
        due_steps(policy, clock(), datetime(2024, 9, 25, 14), CAL)
    with pytest.raises(ValueError, match=r"done\[.lead.\]"):
        due_steps(policy, clock({"lead": [datetime(2024, 9, 25, 14)]}), FIRED, CAL)


def test_before_the_firing_nothing_is_due(policy: EscalationPolicy) -> None:
    assert plan(policy, clock(), sh(9, 25, 13)) == ([], FIRED)


def test_all_one_off_steps_done_and_no_repeat_applies_means_never() -> None:
    policy = steps_policy(
        {"id": "lead", "notify": "lead"},
        {"id": "office", "notify": "coordinating_office", "after": {"working_hours": 4}},
    )
    assert plan(policy, clock({"lead": [FIRED]}), FIRED) == ([], sh(9, 25, 18))
    done = {"lead": [FIRED], "office": [sh(9, 25, 18)]}
    assert plan(policy, clock(done), sh(12, 1)) == ([], None)


def test_an_unacknowledged_step_whose_time_comes_after_the_acknowledgement_never_runs() -> None:
    policy = steps_policy(
        {
            "id": "office",
            "notify": "coordinating_office",
            "after": {"working_hours": 16},
            "while": "unacknowledged",
        }
    )
    assert plan(policy, clock(), FIRED) == ([], sh(9, 27, 12))
    assert plan(policy, clock(acknowledged_at=sh(9, 26, 10)), FIRED) == ([], None)
    assert plan(policy, clock(acknowledged_at=sh(9, 26, 10)), sh(9, 30)) == ([], None)


def test_an_acknowledged_step_waits_for_the_acknowledgement() -> None:
    policy = steps_policy(
        {
            "id": "check",
            "notify": "coordinating_office",
            "after": {"working_hours": 16},
            "while": "acknowledged",
        }
    )
    assert plan(policy, clock(), sh(9, 30, 10)) == ([], None)  # re-planned when acknowledged
    # acknowledged before its time: due at its time
    assert plan(policy, clock(acknowledged_at=sh(9, 26, 10)), sh(9, 26, 10)) == (
        [],
        sh(9, 27, 12),
    )
    # acknowledged after its time: due at the acknowledgement
    assert plan(policy, clock(acknowledged_at=sh(9, 30, 10)), sh(9, 30, 10)) == (
        [("check", sh(9, 30, 10))],
        None,
    )


def test_a_step_since_any_runs_even_after_acknowledgement() -> None:
    policy = steps_policy(
        {"id": "office", "notify": "coordinating_office", "after": {"working_days": 1}}
    )
    assert plan(policy, clock(acknowledged_at=sh(9, 25, 15)), sh(9, 26, 14)) == (
        [("office", sh(9, 26, 14))],
        None,
    )


def test_a_repeat_after_acknowledgement_in_working_days() -> None:
    policy = steps_policy(
        {
            "id": "nudge-office",
            "notify": "coordinating_office",
            "every": {"working_days": 2},
            "since": "acknowledged",
            "while": "acknowledged",
        }
    )
    acknowledged = sh(9, 26, 10)  # Thursday
    alert = clock(acknowledged_at=acknowledged)
    # first one period after the acknowledgement: Friday 27, Sunday 29 (调休)
    assert plan(policy, alert, sh(9, 26, 11)) == ([], sh(9, 29, 10))
    assert plan(policy, alert, sh(9, 29, 10)) == ([("nudge-office", sh(9, 29, 10))], sh(10, 8, 10))
    executed = clock({"nudge-office": [sh(9, 29, 10)]}, acknowledged)
    assert plan(policy, executed, sh(10, 3, 10)) == ([], sh(10, 8, 10))
    assert plan(policy, executed, sh(10, 8, 10)) == (
        [("nudge-office", sh(10, 8, 10))],
        sh(10, 10, 10),
    )


def test_a_repeat_in_working_days_skips_missed_days() -> None:
    policy = steps_policy(
        {
            "id": "daily",
            "notify": "lead",
            "every": {"working_days": 1},
            "while": "unacknowledged",
        }
    )
    fired = sh(9, 27, 10)  # Friday: then 29, 30 September, 8 October ...
    alert = clock({"daily": [sh(9, 29, 10)]}, fired_at=fired)
    assert plan(policy, alert, sh(10, 8, 10)) == ([("daily", sh(10, 8, 10))], sh(10, 9, 10))


def test_an_explicit_after_starts_a_repeat_at_once() -> None:
    policy = steps_policy(
        {
            "id": "sms",
            "notify": "lead",
            "after": {"working_hours": 0},
            "every": {"working_hours": 4},
            "while": "unacknowledged",
        }
    )
    assert plan(policy, clock(), FIRED) == ([("sms", FIRED)], sh(9, 25, 18))
    assert plan(policy, clock({"sms": [FIRED]}), sh(9, 25, 18)) == (
        [("sms", sh(9, 25, 18))],
        sh(9, 26, 13),
    )


def test_walking_from_one_answer_to_the_next_executes_the_expected_schedule(
    policy: EscalationPolicy,
) -> None:
    """The service's loop: execute what is due, sleep until the answered moment, repeat."""
    acknowledged = sh(9, 30, 12)
    done: dict[str, list[datetime]] = {}
    now: datetime | None = FIRED
    while now is not None:
        ack = acknowledged if now >= acknowledged else None
        due, next_at = due_steps(policy, clock(done, ack), now, CAL)
        for item in due:
            done.setdefault(item.step.id, []).append(now)
        if ack is None and (next_at is None or next_at > acknowledged):
            next_at = acknowledged  # the acknowledgement re-plans the alert
        assert next_at is None or next_at > now
        now = next_at
    assert done == {
        "lead": [FIRED],
        "co": [FIRED],
        # 8, 16, 24, 32 working hours; 40 would be 30 September 18:00, after acknowledgement
        "lead-again": [sh(9, 26, 13), sh(9, 27, 12), sh(9, 29, 11), sh(9, 30, 10)],
        "office": [sh(9, 27, 12)],
        # 5 working days after 30 September 12:00: 8-11 October and the make-up Saturday 12
        "office-stuck": [sh(10, 12, 12)],
    }


@settings(max_examples=60, deadline=None, database=None)
@given(
    polls=st.lists(st.integers(min_value=0, max_value=20 * 24 * 60), min_size=1, max_size=40),
    acknowledge_after=st.one_of(st.none(), st.integers(min_value=0, max_value=20 * 24 * 60)),
)
def test_polling_at_any_moments_never_executes_twice_per_occurrence(
    polls: list[int], acknowledge_after: int | None
) -> None:
    """However often and whenever the planner is asked, a one-off step runs at most once, a
    repeat at most once per period, nothing runs before it is due, and `unacknowledged` steps
    never run after the acknowledgement."""
    policy = load_policies(REPO_POLICIES).default
    acknowledged = (
        None if acknowledge_after is None else FIRED + timedelta(minutes=acknowledge_after)
    )
    done: dict[str, list[datetime]] = {}
    due_times: dict[str, list[datetime]] = {}
    for minutes in sorted(polls):
        now = FIRED + timedelta(minutes=minutes)
        ack = acknowledged if acknowledged is not None and acknowledged <= now else None
        due, next_at = due_steps(policy, clock(done, ack), now, CAL)
        assert next_at is None or next_at > now
        for item in due:
            assert item.due_at <= now
            if item.step.while_ is While.UNACKNOWLEDGED:
                assert ack is None
            done.setdefault(item.step.id, []).append(now)
            due_times.setdefault(item.step.id, []).append(item.due_at)
    for step in policy.steps:
        times = due_times.get(step.id, [])
        if step.every is None:
            assert len(times) <= 1
        else:
            assert len(times) == len(set(times))  # one execution per occurrence

"""The pure planner of escalation steps: which steps of a policy are due, and when to look again.

`due_steps` takes the alert's clock (when it fired, when it was acknowledged, which steps were
already executed) and `now`, and answers which steps are due and when to look again. It reads
no clock and no database, so every timing rule is tested with explicit datetimes, and the
service around it only has to store executions and wake up at the answered time.

Timing rules (the README in data/escalation says the same for operators):
- A step's wait (`after`) counts from when the alert fired or, with `since: acknowledged`, from
  its acknowledgement. Working hours count only open time; working days keep the time of day.
  A zero wait means at once, even at night: holding messages for the morning is a property of
  the channel (`quiet_channels`, decided by `holds` when sending), not of the schedule, so an
  urgent alert and email are never delayed by it.
- `while` says when the step applies: until the alert is acknowledged, from the acknowledgement
  on, or always (until the alert resolves, which ends planning altogether). An occurrence
  scheduled before its condition started holding falls due when it starts holding; one whose
  condition ended before it fell due never does.
- A repeating step (`every`) falls due first after `after` (which defaults to one period), then
  once per period. Only the latest occurrence is ever due: an execution at or after it covers
  it, so after an outage the step is executed once, not once per missed period.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from duban_shared.events import Level, StallReason
from duban_shared.workdays import SHANGHAI, WorkingCalendar

from notifier.domain.policy import Duration, EscalationPolicy, Since, Step, While, aware
from notifier.domain.workhours import (
    WorkingHours,
    add_working_days,
    add_working_time,
    whole_working_days_between,
    working_time_between,
)


@dataclass(frozen=True)
class AlertClock:
    """What the planner needs to know about one alert.

    `level` and `reasons` travel with it for the caller's `holds` decision on each due step: they
    change when a message may go, never when a step falls due.
    """

    fired_at: datetime
    acknowledged_at: datetime | None
    level: Level
    reasons: tuple[StallReason, ...]
    done: Mapping[str, Sequence[datetime]]  # step id -> when it was executed (each occurrence)


@dataclass(frozen=True)
class StepDue:
    """A step to execute now, and when this occurrence fell due."""

    step: Step
    due_at: datetime


def due_steps(
    policy: EscalationPolicy, alert: AlertClock, now: datetime, calendar: WorkingCalendar
) -> tuple[list[StepDue], datetime | None]:
    """The steps due at `now` and not yet executed, in the policy's order, and when the next
    step falls due (None when none will unless the alert changes, e.g. is acknowledged).

    The next moment assumes the steps returned are executed now. Times are Asia/Shanghai-aware.
    Call again after executing, at the next moment, and whenever the alert changes.
    """
    aware(now, "now")
    aware(alert.fired_at, "fired_at")
    if alert.acknowledged_at is not None:
        aware(alert.acknowledged_at, "acknowledged_at")
    for step_id, times in alert.done.items():
        for moment in times:
            aware(moment, f"done[{step_id!r}]")
    due: list[StepDue] = []
    upcoming: list[datetime] = []
    for step in policy.steps:
        due_at, next_at = _plan_step(step, alert, now, policy.hours, calendar)
        if due_at is not None:
            due.append(StepDue(step=step, due_at=due_at))
        if next_at is not None:
            upcoming.append(next_at)
    return due, min(upcoming, default=None)


def _plan_step(
    step: Step, alert: AlertClock, now: datetime, hours: WorkingHours, calendar: WorkingCalendar
) -> tuple[datetime | None, datetime | None]:
    """(when the step fell due if it is due now, when it next falls due)."""
    fired = alert.fired_at.astimezone(SHANGHAI)
    acknowledged = alert.acknowledged_at and alert.acknowledged_at.astimezone(SHANGHAI)
    # The step's condition holds from `opens` until `closes` (None: until the alert resolves).
    closes: datetime | None = None
    if step.while_ is While.ACKNOWLEDGED:
        if acknowledged is None:
            return None, None  # cannot be scheduled before the acknowledgement: re-plan then
        opens = acknowledged
    else:
        opens = fired
        if step.while_ is While.UNACKNOWLEDGED:
            closes = acknowledged
    if closes is not None and closes <= now:
        return None, None  # acknowledged: an `unacknowledged` step is over for good
    anchor = acknowledged if step.since is Since.ACKNOWLEDGED else fired
    if anchor is None:
        return None, None
    first = _wait(anchor, step.first_wait, hours, calendar)
    executed = alert.done.get(step.id, ())

    def applies(moment: datetime) -> bool:
        return closes is None or moment < closes

    if step.every is None:
        if executed:
            return None, None
        due_at = max(first, opens)
        if due_at > now:
            return None, (due_at if applies(due_at) else None)
        return due_at, None

    # The latest occurrence scheduled by now (index `latest`), or the first one if none is.
    latest = _occurrences_by(first, step.every, now, hours, calendar) - 1
    if latest < 0:
        following = max(first, opens)
        return None, (following if applies(following) else None)
    due_at = max(_occurrence(first, step.every, latest, hours, calendar), opens)
    if due_at > now:  # the condition starts holding later (acknowledged after `now`)
        return None, (due_at if applies(due_at) else None)
    covered = any(moment >= due_at for moment in executed)
    following = max(_occurrence(first, step.every, latest + 1, hours, calendar), opens)
    return (None if covered else due_at), (following if applies(following) else None)


def _wait(
    anchor: datetime, wait: Duration, hours: WorkingHours, calendar: WorkingCalendar
) -> datetime:
    """The end of a wait from `anchor`; no wait is `anchor` itself, open or not."""
    if wait.is_zero:
        return anchor.astimezone(SHANGHAI)
    if wait.working_hours is not None:
        return add_working_time(anchor, timedelta(hours=wait.working_hours), hours, calendar)
    return add_working_days(anchor, wait.working_days or 0, calendar)


def _occurrence(
    first: datetime, every: Duration, index: int, hours: WorkingHours, calendar: WorkingCalendar
) -> datetime:
    """When occurrence `index` (0 = the first) of a repeating step is scheduled."""
    if index == 0:
        return first
    if every.working_hours is not None:
        return add_working_time(
            first, index * timedelta(hours=every.working_hours), hours, calendar
        )
    return add_working_days(first, index * (every.working_days or 0), calendar)


def _occurrences_by(
    first: datetime, every: Duration, now: datetime, hours: WorkingHours, calendar: WorkingCalendar
) -> int:
    """How many occurrences are scheduled at or before `now` (computed, not counted one by one).

    Exact because `working_time_between` inverts `add_working_time` in whole microseconds and
    `whole_working_days_between` inverts `add_working_days`.
    """
    if now < first:
        return 0
    if every.working_hours is not None:
        period = timedelta(hours=every.working_hours)
        return 1 + working_time_between(first, now, hours, calendar) // period
    return 1 + whole_working_days_between(first, now, calendar) // (every.working_days or 1)

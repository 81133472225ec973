"""The stall model, free of I/O: a work point's reasons, its colour, and when to look again.

Reasons (the enum order is their severity; the first present is the headline):
- blocked (red): any responsible agency's latest report says `blocked`;
- overdue (red): past the due day and not done;
- silent (red): the lead agencies have not reported for more than report_every + grace working
  days;
- behind_pace (yellow): the percent, or a KPI as a share of its target, is below the straight line
  from the plan's start (0) to the due day (100%) by more than the tolerance (未达序时进度); a
  capped KPI (`<=`) is behind once it exceeds its cap;
- flatline (yellow): the lead's last N reports carry the same percent;
- due_soon (blue): at most warn_before_due working days left, up to and including the due day.

Working days come from the official calendar (Asia/Shanghai days); the pace line counts calendar
days. A work point in closure review or closed has no reasons and needs no checks.

`next_check_at` is the first moment the verdict could change with time alone (a report always
re-judges at once), so a sweeper only ever looks at rows whose verdict may have changed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from operator import attrgetter

from duban_shared.events import REASON_LEVEL, Level, StallReason, StallTransitionKind
from duban_shared.workdays import OFFICIAL, WorkingCalendar, local_day, start_of_local_day

PERCENT = "percent"
"""The name `lagging` uses for the work point's own percent line."""

PACED_COMPARATORS = frozenset({">=", "=", "increase_pct"})
"""Targets to reach by the due day: judged against the pace line. `<=` is a cap instead."""


@dataclass(frozen=True)
class Policy:
    """A work point's stall policy (plan defaults with its own overrides)."""

    report_every: int
    grace: int
    warn_before_due: int = 10
    pace_tolerance_pct: float = 10.0
    flatline_reports: int = 3
    starts_on: date | None = None
    due_on: date | None = None

    @property
    def allowed_silence(self) -> int:
        """Working days a lead may stay silent before the work point stalls."""
        return self.report_every + self.grace


@dataclass(frozen=True)
class Target:
    """A quantitative target: `metric` should reach `value` (or stay at most it, for `<=`)."""

    metric: str
    value: float
    comparator: str


@dataclass(frozen=True)
class Facts:
    """What progress knows of a work point, as far as judging it goes."""

    last_heard: datetime
    any_blocked: bool = False
    percent: int | None = None
    recent_percents: tuple[int | None, ...] = ()
    """The lead agencies' latest reports' percents, oldest first."""
    kpis: Mapping[str, float] = field(default_factory=dict)
    targets: tuple[Target, ...] = ()
    settled: bool = False
    """In closure review or closed: the lead has said it is done."""


@dataclass(frozen=True)
class Verdict:
    """The judgement of one work point at one moment."""

    reasons: tuple[StallReason, ...]
    silent_working_days: int
    next_check_at: datetime | None
    expected_percent: float | None = None
    lagging: tuple[str, ...] = ()
    """What is behind pace: `percent` and/or KPI metric names."""

    @property
    def level(self) -> Level:
        """The colour: the highest level among the reasons, green without any."""
        return max(
            (REASON_LEVEL[r] for r in self.reasons), key=attrgetter("rank"), default=Level.GREEN
        )

    @property
    def reason(self) -> StallReason | None:
        """The headline reason: the most severe one."""
        return self.reasons[0] if self.reasons else None


def silence_deadline(
    last_heard: datetime, policy: Policy, calendar: WorkingCalendar = OFFICIAL
) -> datetime:
    """Return the moment the lead becomes silent: the start of the first working day past
    report_every + grace working days after the day it was last heard from."""
    return start_of_local_day(_silent_from(local_day(last_heard), policy, calendar))


def _silent_from(last_heard: date, policy: Policy, calendar: WorkingCalendar) -> date:
    last_ok_day = calendar.add_working_days(last_heard, policy.allowed_silence)
    return calendar.add_working_days(last_ok_day, 1)


def warn_from(due_on: date, warn_before_due: int, calendar: WorkingCalendar = OFFICIAL) -> date:
    """The first day with at most `warn_before_due` working days left, the due day included.

    Counting back from the due day, it is the day after the (warn_before_due + 1)-th working day.
    """
    day, counted = due_on, 0
    while True:
        if calendar.is_working_day(day):
            counted += 1
            if counted > warn_before_due:
                return day + timedelta(days=1)
        day -= timedelta(days=1)


def judge(
    *, now: datetime, facts: Facts, policy: Policy, calendar: WorkingCalendar = OFFICIAL
) -> Verdict:
    """Judge a work point at `now` (see the module docstring for the reasons)."""
    if facts.settled:
        return Verdict(reasons=(), silent_working_days=0, next_check_at=None)
    today = local_day(now)
    found: set[StallReason] = set()
    changes: list[date] = []  # days from which time alone may change the verdict

    if facts.any_blocked:
        found.add(StallReason.BLOCKED)
    silent_days = calendar.working_days_between(local_day(facts.last_heard), today)
    if silent_days > policy.allowed_silence:
        found.add(StallReason.SILENT)
    else:
        changes.append(_silent_from(local_day(facts.last_heard), policy, calendar))

    due = policy.due_on
    if due is not None:
        if today > due:
            found.add(StallReason.OVERDUE)
        else:
            changes.append(due + timedelta(days=1))
            if policy.warn_before_due > 0:
                warn_day = warn_from(due, policy.warn_before_due, calendar)
                if today >= warn_day:
                    found.add(StallReason.DUE_SOON)
                else:
                    changes.append(warn_day)

    pace = _pace(today, facts, policy)
    if pace.lagging:
        found.add(StallReason.BEHIND_PACE)
    if pace.falls_behind_on is not None:
        changes.append(pace.falls_behind_on)

    if _flat(facts.recent_percents, policy.flatline_reports):
        found.add(StallReason.FLATLINE)

    return Verdict(
        reasons=tuple(r for r in StallReason if r in found),
        silent_working_days=silent_days,
        next_check_at=start_of_local_day(min(changes)) if changes else None,
        expected_percent=pace.expected,
        lagging=pace.lagging,
    )


@dataclass(frozen=True)
class _Pace:
    expected: float | None = None
    lagging: tuple[str, ...] = ()
    falls_behind_on: date | None = None
    """The first day a line not behind today will be, if it stays as it is."""


def _pace(today: date, facts: Facts, policy: Policy) -> _Pace:
    """Compare the percent and each KPI (as a share of its target) with the straight line."""
    start, due = policy.starts_on, policy.due_on
    if start is None or due is None or due <= start:
        return _Pace()
    total = (due - start).days
    tolerance = policy.pace_tolerance_pct

    def expected_on(day: date) -> float:
        return 100.0 * min(max((day - start).days, 0), total) / total

    def behind(achieved: float, day: date) -> bool:
        return achieved < expected_on(day) - tolerance

    achieved: dict[str, float] = {}
    if facts.percent is not None:
        achieved[PERCENT] = float(facts.percent)
    lagging: list[str] = []
    for target in facts.targets:
        actual = facts.kpis.get(target.metric)
        if actual is None:
            continue
        if target.comparator in PACED_COMPARATORS and target.value > 0:
            achieved[target.metric] = 100.0 * actual / target.value
        elif target.comparator == "<=" and actual > target.value:
            lagging.append(target.metric)

    first_day: date | None = None
    for name, value in achieved.items():
        if behind(value, today):
            lagging.append(name)
            continue
        # behind() turns true once (day - start).days exceeds (value + tolerance)% of the span.
        days = math.floor((value + tolerance) / 100.0 * total) + 1
        if days > total:
            continue  # still within tolerance on the due day
        day = start + timedelta(days=days)
        while day <= due and not behind(value, day):  # guard against float rounding
            day += timedelta(days=1)
        if day <= due and (first_day is None or day < first_day):
            first_day = day
    return _Pace(expected=expected_on(today), lagging=tuple(lagging), falls_behind_on=first_day)


def _flat(recent: tuple[int | None, ...], reports: int) -> bool:
    """The last `reports` reports carry one and the same percent, short of 100."""
    last = recent[-reports:]
    return (
        len(last) == reports
        and last[0] is not None
        and last[0] < 100
        and all(p == last[0] for p in last)
    )


def transition_needed(open_level: Level | None, verdict: Verdict) -> StallTransitionKind | None:
    """What happens to the episode, given its level (None when no episode is open)."""
    if open_level is None:
        return StallTransitionKind.OPENED if verdict.level != Level.GREEN else None
    if verdict.level == Level.GREEN:
        return StallTransitionKind.RECOVERED
    if verdict.level != open_level:
        return StallTransitionKind.LEVEL_CHANGED
    return None

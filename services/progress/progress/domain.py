"""Stall rules of the walking skeleton, free of I/O: blocked reports and silent lead agencies.

A work point is stalled when any responsible agency's latest report is `blocked`, or when its
lead agencies have been silent for more than report_every + grace working days (counted on the
official calendar, Asia/Shanghai days). Blocked outranks silent. One episode at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from duban_shared.events import StallReason
from duban_shared.workdays import OFFICIAL, WorkingCalendar, local_day, start_of_local_day


@dataclass(frozen=True)
class Policy:
    """How often the lead agency must report, and the grace after that, in working days."""

    report_every: int
    grace: int

    @property
    def allowed_silence(self) -> int:
        """Working days a lead may stay silent before the work point stalls."""
        return self.report_every + self.grace


@dataclass(frozen=True)
class Verdict:
    """The judgement of one work point at one moment."""

    reason: StallReason | None
    silent_working_days: int
    next_check_at: datetime | None


def silence_deadline(
    last_heard: datetime, policy: Policy, calendar: WorkingCalendar = OFFICIAL
) -> datetime:
    """Return the moment the lead becomes silent: the start of the first working day past
    report_every + grace working days after the day it was last heard from."""
    last_ok_day = calendar.add_working_days(local_day(last_heard), policy.allowed_silence)
    return start_of_local_day(calendar.add_working_days(last_ok_day, 1))


def judge(
    *,
    now: datetime,
    last_heard: datetime,
    any_blocked: bool,
    policy: Policy,
    calendar: WorkingCalendar = OFFICIAL,
) -> Verdict:
    """Judge a work point.

    1. Count working days since the lead was last heard from (a report, or tracking start).
    2. Silent if that count exceeds report_every + grace.
    3. Blocked if any agency's latest report says so; blocked outranks silent.
    4. The next check is the silence deadline, unless already silent (then only a report can
       change the verdict, and it re-judges the work point at once).
    """
    silent_days = calendar.working_days_between(local_day(last_heard), local_day(now))
    silent = silent_days > policy.allowed_silence
    reason = StallReason.BLOCKED if any_blocked else StallReason.SILENT if silent else None
    next_check = None if silent else silence_deadline(last_heard, policy, calendar)
    return Verdict(reason=reason, silent_working_days=silent_days, next_check_at=next_check)


def transition_needed(open_reason: str | None, verdict: Verdict) -> str | None:
    """Return 'opened', 'recovered' or None, given the open episode's reason (if any)."""
    if open_reason is None and verdict.reason is not None:
        return "opened"
    if open_reason is not None and verdict.reason is None:
        return "recovered"
    return None

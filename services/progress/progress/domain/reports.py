"""What a status report changes, as rules: its lateness and delay, the closure review it starts
or withdraws, and the work point's KPI actuals it feeds."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from duban_shared.events import ReportStatus
from duban_shared.workdays import OFFICIAL, WorkingCalendar, local_day

IN_REVIEW = "in_review"
"""Closure state: every lead reported `done`; the coordinating office decides (办结销号)."""
CLOSED = "closed"
"""Closure state: approved; the work point is judged no more."""
RECENT_PERCENTS_KEPT = 20
"""How many of the leads' latest percents a work point keeps (for the flatline reason)."""

DEFAULT_LATE_AFTER = timedelta(days=7)
"""A report arriving this long after the moment it describes is marked late."""


def is_late(occurred_at: datetime, arrived_at: datetime, late_after: timedelta) -> bool:
    """A report is late when it arrived more than `late_after` after the moment it describes."""
    return arrived_at - occurred_at > late_after


def delay_working_days(
    previous: datetime,
    occurred_at: datetime,
    report_every: int,
    calendar: WorkingCalendar = OFFICIAL,
) -> int:
    """Working days an agency's report came past its report period since its previous report
    (or since tracking started): 0 when on time."""
    waited = calendar.working_days_between(local_day(previous), local_day(occurred_at))
    return max(0, waited - report_every)


def closure_after_lead_report(
    closure: str | None, reported: ReportStatus, lead_statuses: Iterable[str | None]
) -> str | None:
    """The closure state after a lead's report on a work point not closed.

    `done` from every lead (`lead_statuses`: each lead's latest status, None if it never
    reported) puts the work point in review; anything else from a lead withdraws a pending
    review.
    """
    if reported != ReportStatus.DONE:
        return None
    every_lead_done = all(s == ReportStatus.DONE.value for s in lead_statuses)
    if every_lead_done and closure is None:
        return IN_REVIEW
    return closure


class AgencyLatest(Protocol):
    """An agency's latest report on a work point, as far as KPIs go."""

    @property
    def agency_id(self) -> uuid.UUID: ...

    @property
    def kpis(self) -> Mapping[str, float]: ...

    @property
    def last_report_at(self) -> datetime: ...


def work_point_kpis(
    targets: Sequence[Mapping[str, Any]],
    leads: Iterable[object],
    latest: Iterable[AgencyLatest],
) -> dict[str, float]:
    """A work point's KPI actuals: for a target split into shares, the sum of the share-holders'
    latest values; otherwise the latest value a lead agency reported."""
    rows = list(latest)
    lead_ids = {str(a) for a in leads}
    kpis: dict[str, float] = {}
    for target in targets:
        metric = target["metric"]
        holders = {s["agency_id"] for s in target.get("shares", [])}
        if holders:
            values = [
                r.kpis[metric] for r in rows if str(r.agency_id) in holders and metric in r.kpis
            ]
            if values:
                kpis[metric] = sum(values)
            continue
        from_leads = [r for r in rows if str(r.agency_id) in lead_ids and metric in r.kpis]
        if from_leads:
            kpis[metric] = max(from_leads, key=lambda r: r.last_report_at).kpis[metric]
    return kpis

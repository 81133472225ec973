"""Checks a record must pass before it is applied: the same for the HTTP API (a 4xx answer) and
for records produced to Kafka directly (the dead-letter topic, with the same code).

Dates are bounded at the edge: a report about a moment long before its plan, or a work point due
years after its plan, would ask the working-day calendar for years nobody has published, and
would fail every time it is applied.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Protocol, TypeVar

from duban_shared.workdays import local_day

DEFAULT_EARLIEST_BEFORE_PLAN = timedelta(days=90)
"""How long before its plan's start a report may describe (DUBAN_PROGRESS_EARLIEST_REPORT_...)."""
DEFAULT_LATEST_DUE_YEARS_AFTER_PLAN = 1
"""How many years after its plan's year a work point may be due (…_LATEST_DUE_YEARS_AFTER_PLAN)."""


class Tracked(Protocol):
    """A tracked work point, as far as checking a report on it goes (the store's read model)."""

    @property
    def deleted(self) -> bool: ...

    @property
    def code(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def starts_on(self) -> date | None: ...

    @property
    def targets(self) -> Sequence[Mapping[str, Any]]: ...

    def role_of(self, agency_id: uuid.UUID) -> str | None:
        """Return 'lead', 'co' or None for an agency."""


T = TypeVar("T", bound=Tracked)


class ReportProblem(Exception):
    """Why a record can never be applied, with a stable code and the HTTP status to answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def check_report(
    view: T | None,
    work_point_id: str,
    agency_id: uuid.UUID,
    kpis: Mapping[str, float],
    occurred_at: datetime,
    earliest_before_plan: timedelta = DEFAULT_EARLIEST_BEFORE_PLAN,
) -> T:
    """Return the work point a report is about, or raise why it cannot be applied."""
    if view is None or view.deleted:
        raise ReportProblem(
            404,
            "unknown_work_point",
            f"No work point '{work_point_id}' is tracked; ids look like '<plan>/<code>', "
            "e.g. 'zhaoqing-digital-2024/35' or 'some-plan-2025/3.2'.",
        )
    if view.role_of(agency_id) is None:
        raise ReportProblem(
            403,
            "agency_not_responsible",
            f"Agency {agency_id} is neither lead nor co-responsible for work point {view.code} "
            f"({view.title}); report only on work points assigned to it.",
        )
    check_after_plan_start(view, occurred_at, earliest_before_plan)
    known = [t["metric"] for t in view.targets]
    unknown = sorted(set(kpis) - set(known))
    if unknown:
        allowed = ", ".join(f"'{m}'" for m in known) if known else "none (it has no targets)"
        raise ReportProblem(
            422,
            "unknown_metric",
            f"Work point {view.code} has no target {', '.join(repr(m) for m in unknown)}; "
            f"its KPI metrics are: {allowed}.",
        )
    return view


def check_after_plan_start(
    view: Tracked, occurred_at: datetime, earliest_before_plan: timedelta
) -> None:
    """Refuse a report about a day more than `earliest_before_plan` before the plan starts.

    The plan's start is the snapshot's `starts_on` (1 January of the plan's year); progress does
    not hold the date the plan was issued, which is never earlier in practice. A view without a
    start (none yet published) is not judged here; the years of `ReportTime` still bound it.
    """
    if view.starts_on is None:
        return
    earliest = view.starts_on - earliest_before_plan
    day = local_day(occurred_at)
    if day < earliest:
        raise ReportProblem(
            422,
            "occurred_at_before_plan",
            f"occurred_at {occurred_at.isoformat()} (day {day}) is before what work point "
            f"{view.code}'s plan covers: reports may describe days from {earliest} on (the plan "
            f"starts on {view.starts_on}). Check the date, with its year and UTC offset.",
        )


def check_due_on(
    work_point_id: str,
    starts_on: date | None,
    due_on: date | None,
    years_after: int = DEFAULT_LATEST_DUE_YEARS_AFTER_PLAN,
) -> None:
    """Refuse a due date before its plan's year or after 31 December `years_after` years later
    (the registry refuses the same; this catches a snapshot produced around it)."""
    if starts_on is None or due_on is None:
        return
    first = date(starts_on.year, 1, 1)
    last = date(min(starts_on.year + years_after, date.max.year), 12, 31)
    if not first <= due_on <= last:
        raise ReportProblem(
            422,
            "due_on_out_of_range",
            f"Work point {work_point_id} is due on {due_on}, outside its plan's window "
            f"{first} to {last} (the plan's year and {years_after} year(s) after).",
        )

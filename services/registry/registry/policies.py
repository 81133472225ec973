"""Stall policies: plan defaults, per-work-point overrides, validated with clear errors."""

from __future__ import annotations

from datetime import date
from typing import Any

from duban_shared.api import ApiError, ErrorBody
from duban_shared.inputs import IsoDate, Number, StrictInt
from pydantic import BaseModel, ConfigDict, Field

from registry.models import Plan, WorkPoint

POLICY_FIELDS = (
    "report_every_working_days",
    "grace_working_days",
    "warn_before_due_working_days",
    "pace_tolerance_pct",
    "flatline_reports",
)


class StallPolicy(BaseModel):
    """A plan's default stall policy, in working days (tolerance in percentage points)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "report_every_working_days": 10,
                    "grace_working_days": 3,
                    "warn_before_due_working_days": 10,
                    "pace_tolerance_pct": 10.0,
                    "flatline_reports": 3,
                }
            ]
        },
    )

    report_every_working_days: StrictInt = Field(
        ge=1, le=120, description="The lead agency reports at least this often."
    )
    grace_working_days: StrictInt = Field(
        ge=0, le=60, description="Slack before silence is a stall."
    )
    warn_before_due_working_days: StrictInt = Field(
        ge=0, le=120, description="A work point not done this close to its due date is 预警."
    )
    pace_tolerance_pct: Number = Field(
        ge=0, le=100, description="How far below the straight line to the target is tolerated."
    )
    flatline_reports: StrictInt = Field(
        ge=2, le=20, description="This many reports without progress is a flatline."
    )


class StallPolicyOverride(BaseModel):
    """A work point's own policy; a missing or null field falls back to the plan's default."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"report_every_working_days": 5, "due_on": "2024-10-31"}]},
    )

    report_every_working_days: StrictInt | None = Field(default=None, ge=1, le=120)
    grace_working_days: StrictInt | None = Field(default=None, ge=0, le=60)
    warn_before_due_working_days: StrictInt | None = Field(default=None, ge=0, le=120)
    pace_tolerance_pct: Number | None = Field(default=None, ge=0, le=100)
    flatline_reports: StrictInt | None = Field(default=None, ge=2, le=20)
    due_on: IsoDate | None = None


DUE_ON_REFUSALS: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ErrorBody,
        "description": "`invalid_request` (see `details`); `due_on_out_of_range`: a due date "
        "before 1 January of the plan's year or after 31 December "
        "DUBAN_REGISTRY_LATEST_DUE_YEARS_AFTER_PLAN (1) years later, with `details.earliest` "
        "and `details.latest`; `due_before_issue`: before the plan was issued.",
    },
}
"""The 422 answers of the endpoints that set a due date, for their OpenAPI documents."""


def plan_policy(plan: Plan) -> StallPolicy:
    """The plan's defaults."""
    return StallPolicy.model_validate({f: getattr(plan, f) for f in POLICY_FIELDS})


def effective_policy(plan: Plan, wp: WorkPoint) -> dict[str, Any]:
    """The policy in force for a work point: its overrides over the plan's defaults."""
    policy: dict[str, Any] = {}
    for name in POLICY_FIELDS:
        own = getattr(wp, name)
        policy[name] = getattr(plan, name) if own is None else own
    policy["due_on"] = wp.due_on or plan.due_on
    return policy


def year_end(year: int) -> date:
    """A whole-year plan is due on 31 December of its year."""
    return date(year, 12, 31)


def due_window(plan: Plan, years_after: int) -> tuple[date, date]:
    """The days a work point of `plan` may be due: its year and `years_after` years more."""
    return date(plan.year, 1, 1), date(min(plan.year + years_after, date.max.year), 12, 31)


def check_due_on(plan: Plan, due_on: date, years_after: int) -> None:
    """Raise the 422 for a due date a work point of `plan` may not have.

    Outside the window (`due_window`): `due_on_out_of_range`, since progress counts working
    days up to the due date and no calendar covers years far away; within it but before the
    plan was issued: `due_before_issue`.
    """
    first, last = due_window(plan, years_after)
    if not first <= due_on <= last:
        raise ApiError(
            422,
            "due_on_out_of_range",
            f"due_on {due_on} is outside what plan '{plan.slug}' ({plan.year}) may set: from "
            f"{first} to {last}. Check the year; a later date needs "
            "DUBAN_REGISTRY_LATEST_DUE_YEARS_AFTER_PLAN raised (and progress's alike).",
            {"earliest": first.isoformat(), "latest": last.isoformat()},
        )
    if due_on < plan.issued_on:
        raise ApiError(
            422,
            "due_before_issue",
            f"due_on {due_on} is before the plan was issued ({plan.issued_on}).",
        )

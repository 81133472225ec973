"""Stall policies: plan defaults, per-work-point overrides, validated with clear errors."""

from __future__ import annotations

from datetime import date
from typing import Any

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

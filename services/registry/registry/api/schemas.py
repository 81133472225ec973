"""The registry API's request and response models, and how stored rows are shaped into
them."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from duban_shared.inputs import IsoDate, Line, Number, StrictBool, StrictInt, Text
from pydantic import BaseModel, ConfigDict, Field, model_validator

from registry.domain.agency_names import AgencyKind
from registry.domain.policies import POLICY_FIELDS, effective_policy
from registry.store.models import Agency, Plan, Responsibility, Target, TargetShare, WorkPoint

SHARE_TOLERANCE = 1e-6

# ---------------------------------------------------------------- stall policies


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


# ---------------------------------------------------------------- plans, work points, agencies


class AgencyPublic(BaseModel):
    """An agency."""

    id: uuid.UUID
    name: str
    kind: str
    aliases: list[str] = []
    merged_into_id: uuid.UUID | None = None


class ResponsibilityPublic(BaseModel):
    """An agency's role on a work point."""

    agency_id: uuid.UUID
    agency_name: str
    role: str


class ShareOut(BaseModel):
    """An agency's share of a target."""

    agency_id: uuid.UUID
    share: float


class TargetPublic(BaseModel):
    """A quantitative target."""

    position: int
    metric: str
    value: float
    unit: str
    comparator: str
    source: str
    shares: list[ShareOut]


class WorkPointPublic(BaseModel):
    """A work point with its agencies, targets and the policy in force."""

    id: str
    number: int
    section: int
    title: str
    text: str
    lead_inferred: bool
    with_other_units: bool
    responsibilities: list[ResponsibilityPublic]
    targets: list[TargetPublic]
    policy: dict[str, object]
    revision: int
    updated_at: datetime


class PlanPublic(BaseModel):
    """A plan, its current version, coordinating office and default stall policy."""

    slug: str
    title: str
    issuer: str
    issued_on: date
    year: int
    city: str
    version: int
    due_on: date
    coordinating_agency_id: uuid.UUID | None
    policy: StallPolicy


def plan_policy(plan: Plan) -> StallPolicy:
    """The plan's defaults."""
    return StallPolicy.model_validate({f: getattr(plan, f) for f in POLICY_FIELDS})


def plan_out(plan: Plan) -> PlanPublic:
    """Shape a plan for the API."""
    return PlanPublic(
        slug=plan.slug,
        title=plan.title,
        issuer=plan.issuer,
        issued_on=plan.issued_on,
        year=plan.year,
        city=plan.city,
        version=plan.version,
        due_on=plan.due_on,
        coordinating_agency_id=plan.coordinating_agency_id,
        policy=plan_policy(plan),
    )


def work_point_out(
    plan: Plan,
    wp: WorkPoint,
    roles: list[tuple[Responsibility, Agency]],
    targets: list[tuple[Target, list[TargetShare]]],
) -> WorkPointPublic:
    """Shape a work point for the API."""
    policy = effective_policy(plan, wp)
    policy["due_on"] = policy["due_on"].isoformat()
    return WorkPointPublic(
        id=wp.id,
        number=wp.number,
        section=wp.section_number,
        title=wp.title,
        text=wp.text,
        lead_inferred=wp.lead_inferred,
        with_other_units=wp.with_other_units,
        responsibilities=[
            ResponsibilityPublic(agency_id=a.id, agency_name=a.name, role=r.role) for r, a in roles
        ],
        targets=[
            TargetPublic(
                position=t.position,
                metric=t.metric,
                value=t.value,
                unit=t.unit,
                comparator=t.comparator,
                source=t.source,
                shares=[ShareOut(agency_id=s.agency_id, share=s.share) for s in shares],
            )
            for t, shares in targets
        ],
        policy=policy,
        revision=wp.revision,
        updated_at=wp.updated_at,
    )


def agency_out(agency: Agency, aliases: list[str]) -> AgencyPublic:
    """Shape an agency for the API."""
    return AgencyPublic(
        id=agency.id,
        name=agency.name,
        kind=agency.kind,
        aliases=aliases,
        merged_into_id=agency.merged_into_id,
    )


# ---------------------------------------------------------------- agency requests


class AgencyIn(BaseModel):
    """A new agency."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "市数据局", "kind": "city_bureau"}]},
    )

    name: Line = Field(min_length=2, max_length=120)
    kind: AgencyKind


class AgencyChange(BaseModel):
    """A new kind for an agency."""

    model_config = ConfigDict(extra="forbid")

    kind: AgencyKind


class NameIn(BaseModel):
    """A name: a new canonical name, or an alias."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "市政数局"}]}
    )

    name: Line = Field(min_length=2, max_length=120)


class MergeIn(BaseModel):
    """The agency that absorbs this one."""

    model_config = ConfigDict(extra="forbid")

    into: uuid.UUID


class HistoryOut(BaseModel):
    """One change in an agency's life."""

    action: str
    old_name: str | None
    new_name: str | None
    other_agency_id: uuid.UUID | None
    at: datetime


class AgencyDetail(AgencyPublic):
    """An agency with its history."""

    history: list[HistoryOut]


# ---------------------------------------------------------------- plan requests


class PlanChange(BaseModel):
    """Fields of a plan the coordinating office may change."""

    model_config = ConfigDict(extra="forbid")

    title: Line | None = Field(default=None, min_length=1, max_length=200)
    due_on: IsoDate | None = None
    coordinating_agency_id: uuid.UUID | None = None


class VersionIn(BaseModel):
    """A plan text to import; without confirm the answer is only the diff."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"text": "…数字肇庆建设2024年工作要点…", "confirm": False}]
        },
    )

    text: Text = Field(min_length=1, max_length=1_000_000)
    confirm: StrictBool = False


class VersionOut(BaseModel):
    """A version of a plan and what it changed."""

    version: int
    source_sha256: str
    applied_at: datetime
    diff: dict[str, Any]


class ImportOut(BaseModel):
    """The result of an import: applied or not, and the diff."""

    applied: bool
    plan_created: bool
    version: int
    diff: dict[str, Any]


class SectionOut(BaseModel):
    """A section of a plan."""

    number: int
    title: str


class SectionChange(BaseModel):
    """A section's new title."""

    model_config = ConfigDict(extra="forbid")

    title: Line = Field(min_length=1, max_length=200)


# ---------------------------------------------------------------- work point requests


class WorkPointChange(BaseModel):
    """New wording of a work point."""

    model_config = ConfigDict(extra="forbid")

    title: Line | None = Field(default=None, min_length=1, max_length=200)
    text: Text | None = Field(default=None, min_length=1, max_length=20_000)


class ResponsibilitiesIn(BaseModel):
    """Who leads a work point and who shares it, by agency id, in order."""

    model_config = ConfigDict(extra="forbid")

    lead: list[uuid.UUID] = Field(min_length=1)
    co: list[uuid.UUID] = []

    @model_validator(mode="after")
    def _distinct(self) -> ResponsibilitiesIn:
        ids = self.lead + self.co
        if len(set(ids)) != len(ids):
            raise ValueError("an agency may appear once, as lead or as co-agency")
        return self


class TargetIn(BaseModel):
    """A quantitative target."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"metric": "5G网络基站", "value": 8000, "unit": "座", "comparator": ">="}]
        },
    )

    metric: Line = Field(min_length=1, max_length=120)
    value: Number
    unit: Line = Field(min_length=1, max_length=20)
    comparator: str = Field(pattern=r"^(>=|=|<=|increase_pct)$")
    source: Text = Field(default="", max_length=400)


class ShareIn(BaseModel):
    """An agency's part of a target, as a fraction."""

    agency_id: uuid.UUID
    share: Number = Field(gt=0, le=1)


class SharesIn(BaseModel):
    """How a target is split; the shares add up to 1."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "shares": [
                        {"agency_id": "00000000-0000-0000-0000-000000000001", "share": 0.6},
                        {"agency_id": "00000000-0000-0000-0000-000000000002", "share": 0.4},
                    ]
                }
            ]
        },
    )

    shares: list[ShareIn] = Field(min_length=1)

    @model_validator(mode="after")
    def _sum_to_one(self) -> SharesIn:
        total = sum(s.share for s in self.shares)
        if abs(total - 1) > SHARE_TOLERANCE:
            raise ValueError(f"shares add up to {total:g}; they must add up to 1")
        if len({s.agency_id for s in self.shares}) != len(self.shares):
            raise ValueError("an agency may have one share of a target")
        return self

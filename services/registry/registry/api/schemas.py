"""The registry API's request and response models (the routers shape stored rows into them)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from duban_shared.auth import Role
from duban_shared.events import WorkPointCodeField
from duban_shared.inputs import IsoDate, Line, Number, StrictBool, StrictInt, Text
from pydantic import BaseModel, ConfigDict, Field, model_validator

from registry.domain.agency_names import AgencyKind
from registry.domain.plan_review import Correction, ItemCode

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

    id: str = Field(description="'<plan slug>/<code>', e.g. 'zhaoqing-digital-2024/35'.")
    code: WorkPointCodeField
    number: int = Field(
        description="The work point's ordinal in its plan (1..N in reading order): what lists "
        "are ordered by. Paths and ids use `code`; in a continuously numbered plan the two agree."
    )
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
    corrections: dict[ItemCode, Correction] = Field(
        default_factory=dict,
        max_length=2000,
        description="The office's corrections by item id (as the preview lists them): agencies, "
        "title or text; an unmarked item with a corrected 'lead' becomes a work point.",
    )
    skip_unmarked: StrictBool = Field(
        default=False,
        description="Leave out items that name no responsible agency (else 422 unmarked_items).",
    )


class PreviewIn(BaseModel):
    """A plan text to parse without importing it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"text": "…数字肇庆建设2024年工作要点…"}]},
    )

    text: Text = Field(min_length=1, max_length=1_000_000)


class PreviewOut(BaseModel):
    """The parse report: every work point on its line, every unmarked item, notes, agencies."""

    plan: dict[str, Any]
    numbering: str = Field(description="continuous, per_section or per_group")
    summary: dict[str, int]
    sections: list[dict[str, Any]]
    work_points: list[dict[str, Any]]
    unmarked: list[dict[str, Any]]
    notes: list[dict[str, Any]]
    agencies: list[dict[str, Any]]


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


# ---------------------------------------------------------------- tokens and API clients


class TokenResponse(BaseModel):
    """RFC 6749 access token response."""

    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the RFC 6750 scheme name, not a secret
    expires_in: int


class ClientOut(BaseModel):
    """An API client (its secret is never shown again)."""

    client_id: str
    role: str
    agency_id: uuid.UUID | None
    agency_name: str | None
    label: str
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class ClientWithSecret(ClientOut):
    """A client with its secret: shown only in this answer, store it now."""

    client_secret: str


class ClientIn(BaseModel):
    """A client to create: an agency client names its agency (by id or exact name)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"role": "agency", "agency_name": "市林业局", "label": "林业局系统"}],
            "not": {"required": ["agency_id", "agency_name"]},
        },
    )

    role: Role
    agency_id: uuid.UUID | None = None
    agency_name: Line | None = Field(default=None, max_length=120)
    label: Line = Field(default="", max_length=120)

    @model_validator(mode="after")
    def _one_agency_reference(self) -> ClientIn:
        if {"agency_id", "agency_name"} <= self.model_fields_set:
            raise ValueError("give agency_id or agency_name, not both")
        return self


# ---------------------------------------------------------------- extension requests


class ExtensionIn(BaseModel):
    """A lead agency's request for a later due date (延期申请)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"due_on": "2024-09-30", "reason": "征地手续延后两个月"}]},
    )

    due_on: IsoDate = Field(description="The new due date asked for (later than the current).")
    reason: Text = Field(min_length=1, max_length=2000, description="Why (shown to the office).")


class ExtensionApproval(BaseModel):
    """The office's approval, with an optional note."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"note": "同意"}]})

    note: Text | None = Field(default=None, min_length=1, max_length=2000)


class ExtensionRejection(BaseModel):
    """The office's rejection, with its reason."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "理由不充分，请按原时限完成"}]}
    )

    reason: Text = Field(min_length=1, max_length=2000)


class ExtensionPublic(BaseModel):
    """An extension request and its decision."""

    id: int
    work_point_id: str
    agency_id: uuid.UUID
    state: str = Field(description="requested, approved, rejected or withdrawn.")
    state_label: str = Field(description="The state in Chinese (待审批, 已批准, 已驳回, 已撤回).")
    requested_due_on: date
    previous_due_on: date = Field(description="The due date in force when it was requested.")
    reason: str
    requested_by: str = Field(description="The client that asked.")
    requested_at: datetime
    decided_by: str | None = Field(description="The client that decided or withdrew it.")
    decided_at: datetime | None
    decision_note: str | None = Field(description="The approval's note or the rejection's reason.")


class PlanExtensionPublic(ExtensionPublic):
    """An extension request in a plan's list, with its work point's code and title."""

    code: str = Field(description="The work point's code in the plan ('35' or '3.2').")
    title: str = Field(description="The work point's title.")

"""Registry HTTP API: the router and the shapes it returns.

Reads need any valid token (the plan is a public document); changes need the coordinating
office (role coordinator or operator). Lists are paginated with limit and offset.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from duban_shared.api import ApiError
from fastapi import APIRouter
from pydantic import BaseModel

from registry.agencies import AgencyError
from registry.models import Agency, Plan, Responsibility, Target, TargetShare, WorkPoint
from registry.policies import StallPolicy, effective_policy, plan_policy


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


def from_agency_error(exc: AgencyError) -> ApiError:
    """Turn a refused agency change into an HTTP error."""
    return ApiError(exc.status, exc.code, exc.message)


def unknown_plan(slug: str) -> ApiError:
    """The error for a plan slug nobody imported."""
    return ApiError(404, "unknown_plan", f"No plan '{slug}' is imported; see /v1/plans.")


def unknown_work_point(slug: str, number: int) -> ApiError:
    """The error for a work point number a plan does not have."""
    return ApiError(
        404,
        "unknown_work_point",
        f"Plan '{slug}' has no work point {number}; list them at /v1/plans/{slug}/work-points.",
    )


def unknown_agency(agency_id: uuid.UUID | str) -> ApiError:
    """The error for an agency id the registry does not know."""
    return ApiError(
        404, "unknown_agency", f"No agency {agency_id}; find ids with GET /v1/agencies?name=..."
    )


def _routers() -> APIRouter:
    from registry.api_agencies import router as agencies
    from registry.api_plans import router as plans
    from registry.api_work_points import router as work_points

    combined = APIRouter()
    for part in (plans, work_points, agencies):
        combined.include_router(part)
    return combined


router = _routers()

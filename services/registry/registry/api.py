"""Registry read API: plans, work points and agencies."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from duban_shared.api import ApiError
from duban_shared.app import SessionDep
from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from registry import store
from registry.models import Agency, Responsibility, WorkPoint

router = APIRouter()


class AgencyPublic(BaseModel):
    """An agency."""

    id: uuid.UUID
    name: str
    kind: str


class ResponsibilityPublic(BaseModel):
    """An agency's role on a work point."""

    agency_id: uuid.UUID
    agency_name: str
    role: str


class WorkPointPublic(BaseModel):
    """A work point with its responsible agencies."""

    id: str
    number: int
    section: int
    title: str
    text: str
    lead_inferred: bool
    with_other_units: bool
    targets: list[dict[str, Any]]
    responsibilities: list[ResponsibilityPublic]
    revision: int
    updated_at: datetime


class PlanPublic(BaseModel):
    """A plan."""

    slug: str
    title: str
    issuer: str
    issued_on: date
    year: int


def _work_point(wp: WorkPoint, roles: list[tuple[Responsibility, Agency]]) -> WorkPointPublic:
    return WorkPointPublic(
        id=wp.id,
        number=wp.number,
        section=wp.section_number,
        title=wp.title,
        text=wp.text,
        lead_inferred=wp.lead_inferred,
        with_other_units=wp.with_other_units,
        targets=wp.targets,
        responsibilities=[
            ResponsibilityPublic(agency_id=a.id, agency_name=a.name, role=r.role) for r, a in roles
        ],
        revision=wp.revision,
        updated_at=wp.updated_at,
    )


@router.get("/v1/plans")
async def plans(session: SessionDep) -> list[PlanPublic]:
    """List plans."""
    return [
        PlanPublic.model_validate(p, from_attributes=True) for p in await store.list_plans(session)
    ]


@router.get("/v1/plans/{plan_slug}/work-points")
async def work_points(
    plan_slug: str,
    session: SessionDep,
    agency_id: Annotated[uuid.UUID | None, Query(description="Only this agency's")] = None,
    section: Annotated[int | None, Query(ge=1, le=99)] = None,
) -> list[WorkPointPublic]:
    """List a plan's work points, optionally one agency's or one section's."""
    rows = await store.list_work_points(session, plan_slug, agency_id=agency_id, section=section)
    if not rows and not await _plan_exists(session, plan_slug):
        raise _unknown_plan(plan_slug)
    return [_work_point(wp, roles) for wp, roles in rows]


@router.get("/v1/plans/{plan_slug}/work-points/{number}")
async def work_point(plan_slug: str, number: int, session: SessionDep) -> WorkPointPublic:
    """Show one work point."""
    found = await store.get_work_point(session, plan_slug, number)
    if found is None:
        raise ApiError(
            404,
            "unknown_work_point",
            f"Plan '{plan_slug}' has no work point {number}; list them at "
            f"/v1/plans/{plan_slug}/work-points.",
        )
    return _work_point(*found)


@router.get("/v1/agencies")
async def agencies(
    session: SessionDep,
    name: Annotated[str | None, Query(description="Part of the agency's name")] = None,
) -> list[AgencyPublic]:
    """List agencies, optionally filtered by name."""
    return [
        AgencyPublic(id=a.id, name=a.name, kind=a.kind)
        for a in await store.list_agencies(session, name)
    ]


async def _plan_exists(session: AsyncSession, slug: str) -> bool:
    return any(p.slug == slug for p in await store.list_plans(session))


def _unknown_plan(slug: str) -> ApiError:
    return ApiError(404, "unknown_plan", f"No plan '{slug}' is imported; see /v1/plans.")

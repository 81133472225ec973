"""Work points: list and show; change wording, responsibilities, targets, shares, policy.

A work point is named in paths by its code ('35', '3.2'), the last part of its id; lists are in
plan order (by the ordinal `number`)."""

from __future__ import annotations

import uuid
from typing import Annotated

from duban_shared.api import Limit, Offset, Page
from duban_shared.app import SessionDep
from duban_shared.auth import PrincipalDep, require_office
from duban_shared.inputs import PlanSlug, Position, WorkPointCode
from fastapi import APIRouter, Query
from sqlmodel.ext.asyncio.session import AsyncSession

from registry.api.deps import ActingContextDep
from registry.api.errors import DUE_ON_REFUSALS
from registry.api.schemas import (
    ResponsibilitiesIn,
    ResponsibilityPublic,
    ShareOut,
    SharesIn,
    StallPolicyOverride,
    TargetIn,
    TargetPublic,
    WorkPointChange,
    WorkPointPublic,
)
from registry.domain.policies import effective_policy
from registry.store import queries
from registry.store.models import Agency, Plan, Responsibility, Target, TargetShare, WorkPoint
from registry.use_cases import work_points as use_cases
from registry.use_cases.plans import plan_by_slug

router = APIRouter(prefix="/v1/plans/{slug}/work-points", tags=["work points"])


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
        code=wp.code,
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


async def _out(session: AsyncSession, plan: Plan, wp: WorkPoint) -> WorkPointPublic:
    roles, targets = await queries.details(session, [wp.id])
    return work_point_out(plan, wp, roles.get(wp.id, []), targets.get(wp.id, []))


@router.get("")
async def list_work_points(
    slug: PlanSlug,
    session: SessionDep,
    _p: PrincipalDep,
    agency_id: Annotated[uuid.UUID | None, Query(description="Only this agency's")] = None,
    role: Annotated[str | None, Query(pattern="^(lead|co)$")] = None,
    section: Annotated[int | None, Query(ge=1, le=99)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[WorkPointPublic]:
    """List a plan's work points, optionally one agency's (in one role) or one section's."""
    plan = await plan_by_slug(session, slug)
    assert plan.id is not None
    query = queries.work_points_query(plan.id, agency_id=agency_id, role=role, section=section)
    wps, total = await queries.page(session, query, limit, offset)
    roles, targets = await queries.details(session, [wp.id for wp in wps])
    items = [work_point_out(plan, wp, roles.get(wp.id, []), targets.get(wp.id, [])) for wp in wps]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/{code}")
async def get_work_point(
    slug: PlanSlug, code: WorkPointCode, session: SessionDep, _p: PrincipalDep
) -> WorkPointPublic:
    """Show one work point."""
    plan, wp = await use_cases.work_point(session, slug, code)
    return await _out(session, plan, wp)


@router.patch("/{code}")
async def change_work_point(
    slug: PlanSlug,
    code: WorkPointCode,
    change: WorkPointChange,
    ctx: ActingContextDep,
    principal: PrincipalDep,
) -> WorkPointPublic:
    """Reword a work point."""
    require_office(principal)
    plan, wp = await use_cases.reword(ctx, slug, code, title=change.title, text=change.text)
    return await _out(ctx.session, plan, wp)


@router.put("/{code}/responsibilities")
async def set_responsibilities(
    slug: PlanSlug,
    code: WorkPointCode,
    body: ResponsibilitiesIn,
    ctx: ActingContextDep,
    principal: PrincipalDep,
) -> WorkPointPublic:
    """Replace who leads and who shares a work point; target shares of dropped agencies go."""
    require_office(principal)
    plan, wp = await use_cases.set_responsibilities(ctx, slug, code, body.lead, body.co)
    return await _out(ctx.session, plan, wp)


@router.put("/{code}/policy", responses=DUE_ON_REFUSALS)
async def set_work_point_policy(
    slug: PlanSlug,
    code: WorkPointCode,
    override: StallPolicyOverride,
    ctx: ActingContextDep,
    principal: PrincipalDep,
) -> WorkPointPublic:
    """Set a work point's own policy; null fields fall back to the plan's defaults."""
    require_office(principal)
    plan, wp = await use_cases.set_policy(ctx, slug, code, override.model_dump())
    return await _out(ctx.session, plan, wp)


@router.post("/{code}/targets", status_code=201)
async def add_target(
    slug: PlanSlug,
    code: WorkPointCode,
    body: TargetIn,
    ctx: ActingContextDep,
    principal: PrincipalDep,
) -> WorkPointPublic:
    """Add a target at the end of the work point's list."""
    require_office(principal)
    plan, wp = await use_cases.add_target(ctx, slug, code, body.model_dump())
    return await _out(ctx.session, plan, wp)


@router.delete("/{code}/targets/{position}")
async def delete_target(
    slug: PlanSlug,
    code: WorkPointCode,
    position: Position,
    ctx: ActingContextDep,
    principal: PrincipalDep,
) -> WorkPointPublic:
    """Remove a target and its shares."""
    require_office(principal)
    plan, wp = await use_cases.delete_target(ctx, slug, code, position)
    return await _out(ctx.session, plan, wp)


@router.put("/{code}/targets/{position}/shares")
async def set_shares(
    slug: PlanSlug,
    code: WorkPointCode,
    position: Position,
    body: SharesIn,
    ctx: ActingContextDep,
    principal: PrincipalDep,
) -> WorkPointPublic:
    """Split a target across responsible agencies."""
    require_office(principal)
    shares = {s.agency_id: s.share for s in body.shares}
    plan, wp = await use_cases.set_shares(ctx, slug, code, position, shares)
    return await _out(ctx.session, plan, wp)

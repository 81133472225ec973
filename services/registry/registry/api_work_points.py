"""Work points: list and show; change wording, responsibilities, targets, shares, policy."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from duban_shared.api import ApiError, Limit, Offset, Page
from duban_shared.app import SessionDep
from duban_shared.auth import Principal, PrincipalDep, require_office
from duban_shared.inputs import Line, Number, PathNumber, PlanSlug, Position, Text
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlmodel import func, select

from registry import queries
from registry.api import (
    WorkPointPublic,
    unknown_agency,
    unknown_plan,
    unknown_work_point,
    work_point_out,
)
from registry.models import Agency, Plan, Responsibility, Target, TargetShare, WorkPoint
from registry.policies import DUE_ON_REFUSALS, StallPolicyOverride, check_due_on
from registry.snapshots import publish_work_point
from registry.store import replace_roles

router = APIRouter(prefix="/v1/plans/{slug}/work-points", tags=["work points"])
SHARE_TOLERANCE = 1e-6


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


async def _load(session: SessionDep, slug: str, number: int) -> tuple[Plan, WorkPoint]:
    plan = await queries.plan_by_slug(session, slug)
    if plan is None:
        raise unknown_plan(slug)
    wp = (
        await session.exec(
            select(WorkPoint).where(WorkPoint.plan_id == plan.id, WorkPoint.number == number)
        )
    ).first()
    if wp is None:
        raise unknown_work_point(slug, number)
    return plan, wp


async def _out(session: SessionDep, plan: Plan, wp: WorkPoint) -> WorkPointPublic:
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
    plan = await queries.plan_by_slug(session, slug)
    if plan is None:
        raise unknown_plan(slug)
    assert plan.id is not None
    query = queries.work_points_query(plan.id, agency_id=agency_id, role=role, section=section)
    wps, total = await queries.page(session, query, limit, offset)
    roles, targets = await queries.details(session, [wp.id for wp in wps])
    items = [work_point_out(plan, wp, roles.get(wp.id, []), targets.get(wp.id, [])) for wp in wps]
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/{number}")
async def get_work_point(
    slug: PlanSlug, number: PathNumber, session: SessionDep, _p: PrincipalDep
) -> WorkPointPublic:
    """Show one work point."""
    plan, wp = await _load(session, slug, number)
    return await _out(session, plan, wp)


@asynccontextmanager
async def _editing(
    request: Request, session: SessionDep, principal: Principal, slug: str, number: int
) -> AsyncIterator[tuple[Plan, WorkPoint]]:
    """An office-only change of one work point in one transaction: revision + 1, republished."""
    require_office(principal)
    async with session.begin():
        plan, wp = await _load(session, slug, number)
        yield plan, wp
        now = request.app.state.service.clock.now()
        wp.revision += 1
        wp.updated_at = now
        session.add(wp)
        await session.flush()
        await publish_work_point(session, wp, now)
    request.app.state.service.relay.wake()


@router.patch("/{number}")
async def change_work_point(
    slug: PlanSlug,
    number: PathNumber,
    change: WorkPointChange,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
) -> WorkPointPublic:
    """Reword a work point."""
    async with _editing(request, session, principal, slug, number) as (plan, wp):
        if change.title is not None:
            wp.title = change.title
        if change.text is not None:
            wp.text = change.text
    return await _out(session, plan, wp)


@router.put("/{number}/responsibilities")
async def set_responsibilities(
    slug: PlanSlug,
    number: PathNumber,
    body: ResponsibilitiesIn,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
) -> WorkPointPublic:
    """Replace who leads and who shares a work point; target shares of dropped agencies go."""
    async with _editing(request, session, principal, slug, number) as (plan, wp):
        roles: list[tuple[str, Agency]] = []
        for role, ids in (("lead", body.lead), ("co", body.co)):
            for agency_id in ids:
                agency = await session.get(Agency, agency_id)
                if agency is None or agency.merged_into_id is not None:
                    raise unknown_agency(agency_id)
                roles.append((role, agency))
        await replace_roles(session, wp.id, roles)
        kept = {a.id for _, a in roles}
        _, targets = await queries.details(session, [wp.id])
        for share in (s for _, shares in targets.get(wp.id, []) for s in shares):
            if share.agency_id not in kept:
                await session.delete(share)
    return await _out(session, plan, wp)


@router.put("/{number}/policy", responses=DUE_ON_REFUSALS)
async def set_work_point_policy(
    slug: PlanSlug,
    number: PathNumber,
    override: StallPolicyOverride,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
) -> WorkPointPublic:
    """Set a work point's own policy; null fields fall back to the plan's defaults."""
    async with _editing(request, session, principal, slug, number) as (plan, wp):
        if override.due_on is not None:
            years_after = request.app.state.service.settings.latest_due_years_after_plan
            check_due_on(plan, override.due_on, years_after)
        for name, value in override.model_dump().items():
            setattr(wp, name, value)
    return await _out(session, plan, wp)


@router.post("/{number}/targets", status_code=201)
async def add_target(
    slug: PlanSlug,
    number: PathNumber,
    body: TargetIn,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
) -> WorkPointPublic:
    """Add a target at the end of the work point's list."""
    async with _editing(request, session, principal, slug, number) as (plan, wp):
        last = await session.exec(
            select(func.max(Target.position)).where(Target.work_point_id == wp.id)
        )
        current = last.one()
        position = 0 if current is None else int(current) + 1
        session.add(Target(work_point_id=wp.id, position=position, **body.model_dump()))
    return await _out(session, plan, wp)


async def _target(session: SessionDep, wp: WorkPoint, slug: str, position: int) -> Target:
    target = (
        await session.exec(
            select(Target).where(Target.work_point_id == wp.id, Target.position == position)
        )
    ).first()
    if target is None:
        raise ApiError(
            404,
            "unknown_target",
            f"Work point {wp.number} of '{slug}' has no target at position {position}.",
        )
    return target


@router.delete("/{number}/targets/{position}")
async def delete_target(
    slug: PlanSlug,
    number: PathNumber,
    position: Position,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
) -> WorkPointPublic:
    """Remove a target and its shares."""
    async with _editing(request, session, principal, slug, number) as (plan, wp):
        target = await _target(session, wp, slug, position)
        shares = await session.exec(select(TargetShare).where(TargetShare.target_id == target.id))
        for share in shares.all():
            await session.delete(share)
        await session.delete(target)
    return await _out(session, plan, wp)


@router.put("/{number}/targets/{position}/shares")
async def set_shares(
    slug: PlanSlug,
    number: PathNumber,
    position: Position,
    body: SharesIn,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
) -> WorkPointPublic:
    """Split a target across responsible agencies."""
    async with _editing(request, session, principal, slug, number) as (plan, wp):
        target = await _target(session, wp, slug, position)
        responsible = set(
            (
                await session.exec(
                    select(Responsibility.agency_id).where(Responsibility.work_point_id == wp.id)
                )
            ).all()
        )
        strangers = [str(s.agency_id) for s in body.shares if s.agency_id not in responsible]
        if strangers:
            raise ApiError(
                422,
                "share_to_unresponsible_agency",
                "Only agencies responsible for the work point can hold a share of its target.",
                {"agency_ids": strangers},
            )
        old = await session.exec(select(TargetShare).where(TargetShare.target_id == target.id))
        for share in old.all():
            await session.delete(share)
        await session.flush()
        assert target.id is not None
        for s in body.shares:
            session.add(TargetShare(target_id=target.id, agency_id=s.agency_id, share=s.share))
    return await _out(session, plan, wp)

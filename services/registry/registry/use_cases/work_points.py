"""Work point changes: wording, responsibilities, policy, targets and their shares. Each is
one transaction that raises the work point's revision and republishes it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from duban_shared.audit import changed_fields, jsonable
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from registry.domain.errors import Refusal, unknown_agency, unknown_work_point
from registry.domain.policies import POLICY_FIELDS, check_due_on
from registry.store import plans as store_plans
from registry.store import queries
from registry.store.models import Agency, Plan, Responsibility, Target, TargetShare, WorkPoint
from registry.use_cases.context import Context
from registry.use_cases.plans import plan_by_slug
from registry.use_cases.publishing import publish_work_point


async def work_point(session: AsyncSession, slug: str, code: str) -> tuple[Plan, WorkPoint]:
    """A plan's work point by code ('35', '3.2'); refused (404) when either is unknown."""
    plan = await plan_by_slug(session, slug)
    wp = (
        await session.exec(
            select(WorkPoint).where(WorkPoint.plan_id == plan.id, WorkPoint.code == code)
        )
    ).first()
    if wp is None:
        raise unknown_work_point(slug, code)
    return plan, wp


_AUDITED_FIELDS = ("title", "text", "due_on", *POLICY_FIELDS)


async def audit_state(session: AsyncSession, wp: WorkPoint) -> dict[str, Any]:
    """What the audit trail shows of a work point: wording, due date, policy, who is
    responsible, targets and their shares."""
    roles, targets = await queries.details(session, [wp.id])
    state: dict[str, Any] = {name: getattr(wp, name) for name in _AUDITED_FIELDS}
    state["responsibilities"] = [
        {"agency_id": a.id, "agency": a.name, "role": r.role} for r, a in roles.get(wp.id, [])
    ]
    state["targets"] = [
        {
            "position": t.position,
            "metric": t.metric,
            "value": t.value,
            "unit": t.unit,
            "comparator": t.comparator,
            "source": t.source,
            "shares": {str(s.agency_id): s.share for s in shares},
        }
        for t, shares in targets.get(wp.id, [])
    ]
    return state


@asynccontextmanager
async def editing(
    ctx: Context, slug: str, code: str, action: str
) -> AsyncIterator[tuple[Plan, WorkPoint]]:
    """A change of one work point in one transaction: revision + 1, republished, audited as
    `action` with what it changed."""
    async with ctx.transaction() as now:
        plan, wp = await work_point(ctx.session, slug, code)
        before = await audit_state(ctx.session, wp)
        yield plan, wp
        wp.revision += 1
        wp.updated_at = now
        ctx.session.add(wp)
        await ctx.session.flush()
        after = await audit_state(ctx.session, wp)
        old, new = changed_fields(jsonable(before) or {}, jsonable(after) or {})
        ctx.audit(action, wp.id, now, before=old, after=new)
        await publish_work_point(ctx.session, wp, now)


async def reword(
    ctx: Context, slug: str, code: str, *, title: str | None, text: str | None
) -> tuple[Plan, WorkPoint]:
    """Reword a work point."""
    async with editing(ctx, slug, code, "work_point.reworded") as (plan, wp):
        if title is not None:
            wp.title = title
        if text is not None:
            wp.text = text
    return plan, wp


async def set_responsibilities(
    ctx: Context, slug: str, code: str, lead: list[uuid.UUID], co: list[uuid.UUID]
) -> tuple[Plan, WorkPoint]:
    """Replace who leads and who shares a work point; target shares of dropped agencies go."""
    async with editing(ctx, slug, code, "responsibilities.changed") as (plan, wp):
        session = ctx.session
        roles: list[tuple[str, Agency]] = []
        for role, ids in (("lead", lead), ("co", co)):
            for agency_id in ids:
                agency = await session.get(Agency, agency_id)
                if agency is None or agency.merged_into_id is not None:
                    raise unknown_agency(agency_id)
                roles.append((role, agency))
        await store_plans.replace_roles(session, wp.id, roles)
        kept = {a.id for _, a in roles}
        _, targets = await queries.details(session, [wp.id])
        for share in (s for _, shares in targets.get(wp.id, []) for s in shares):
            if share.agency_id not in kept:
                await session.delete(share)
    return plan, wp


async def set_policy(
    ctx: Context, slug: str, code: str, override: Mapping[str, Any]
) -> tuple[Plan, WorkPoint]:
    """Set a work point's own policy (every field; None falls back to the plan's default)."""
    async with editing(ctx, slug, code, "policy.changed") as (plan, wp):
        if override.get("due_on") is not None:
            check_due_on(plan, override["due_on"], ctx.settings.latest_due_years_after_plan)
        for name, value in override.items():
            setattr(wp, name, value)
    return plan, wp


async def add_target(
    ctx: Context, slug: str, code: str, target: Mapping[str, Any]
) -> tuple[Plan, WorkPoint]:
    """Add a target (metric, value, unit, comparator, source) at the end of the list."""
    async with editing(ctx, slug, code, "target.added") as (plan, wp):
        last = await ctx.session.exec(
            select(func.max(Target.position)).where(Target.work_point_id == wp.id)
        )
        current = last.one()
        position = 0 if current is None else int(current) + 1
        ctx.session.add(Target(work_point_id=wp.id, position=position, **target))
    return plan, wp


async def _target(session: AsyncSession, wp: WorkPoint, slug: str, position: int) -> Target:
    target = (
        await session.exec(
            select(Target).where(Target.work_point_id == wp.id, Target.position == position)
        )
    ).first()
    if target is None:
        raise Refusal(
            404,
            "unknown_target",
            f"Work point {wp.code} of '{slug}' has no target at position {position}.",
        )
    return target


async def delete_target(
    ctx: Context, slug: str, code: str, position: int
) -> tuple[Plan, WorkPoint]:
    """Remove a target and its shares."""
    async with editing(ctx, slug, code, "target.deleted") as (plan, wp):
        target = await _target(ctx.session, wp, slug, position)
        shares = await ctx.session.exec(
            select(TargetShare).where(TargetShare.target_id == target.id)
        )
        for share in shares.all():
            await ctx.session.delete(share)
        await ctx.session.delete(target)
    return plan, wp


async def set_shares(
    ctx: Context, slug: str, code: str, position: int, shares: Mapping[uuid.UUID, float]
) -> tuple[Plan, WorkPoint]:
    """Split a target across responsible agencies (agency id -> share)."""
    async with editing(ctx, slug, code, "shares.changed") as (plan, wp):
        session = ctx.session
        target = await _target(session, wp, slug, position)
        responsible = set(
            (
                await session.exec(
                    select(Responsibility.agency_id).where(Responsibility.work_point_id == wp.id)
                )
            ).all()
        )
        strangers = [str(agency_id) for agency_id in shares if agency_id not in responsible]
        if strangers:
            raise Refusal(
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
        for agency_id, share_value in shares.items():
            session.add(TargetShare(target_id=target.id, agency_id=agency_id, share=share_value))
    return plan, wp

"""Extension requests (延期申请): a lead agency requests or withdraws; the office approves
(the work point's due date changes through the same path as a policy override: revision + 1,
republished, so progress re-judges it) or rejects. Each step is one audited transaction."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import sqlalchemy.exc
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from registry.domain import extensions as rules
from registry.domain.errors import Refusal
from registry.domain.policies import check_due_on, effective_policy
from registry.store.models import ExtensionRequest, Plan, Responsibility, WorkPoint
from registry.use_cases.context import Context
from registry.use_cases.plans import plan_by_slug
from registry.use_cases.work_points import editing, work_point


def _state(ext: ExtensionRequest) -> dict[str, Any]:
    """What the audit trail shows of a request."""
    return {
        "extension_id": ext.id,
        "state": ext.state,
        "requested_due_on": ext.requested_due_on,
        "previous_due_on": ext.previous_due_on,
        "reason": ext.reason,
        "decision_note": ext.decision_note,
    }


async def _check_lead(session: AsyncSession, wp: WorkPoint, agency_id: uuid.UUID) -> None:
    lead = (
        await session.exec(
            select(Responsibility.id).where(
                Responsibility.work_point_id == wp.id,
                Responsibility.agency_id == agency_id,
                Responsibility.role == "lead",
            )
        )
    ).first()
    if lead is None:
        raise rules.not_lead(wp.id)


async def _open_request(session: AsyncSession, wp_id: str) -> ExtensionRequest | None:
    return (
        await session.exec(
            select(ExtensionRequest).where(
                ExtensionRequest.work_point_id == wp_id, ExtensionRequest.state == rules.OPEN
            )
        )
    ).first()


async def _request_of(session: AsyncSession, wp: WorkPoint, extension_id: int) -> ExtensionRequest:
    ext = await session.get(ExtensionRequest, extension_id, with_for_update=True)
    if ext is None or ext.work_point_id != wp.id:
        raise Refusal(
            404,
            "unknown_extension",
            f"工作要点 {wp.id} 没有编号为 {extension_id} 的延期申请；"
            f"请查看该工作要点的 extensions 列表。",
        )
    return ext


def _check_window(ctx: Context, plan: Plan, wp: WorkPoint, due_on: date) -> None:
    check_due_on(plan, due_on, ctx.settings.latest_due_years_after_plan)
    rules.check_later(due_on, effective_policy(plan, wp)["due_on"])


async def request_extension(
    ctx: Context, slug: str, code: str, agency_id: uuid.UUID, due_on: date, reason: str
) -> ExtensionRequest:
    """A lead agency asks for a later due date (one open request per work point)."""
    assert ctx.actor is not None
    try:
        async with ctx.transaction() as now:
            plan, wp = await work_point(ctx.session, slug, code)
            await _check_lead(ctx.session, wp, agency_id)
            _check_window(ctx, plan, wp, due_on)
            existing = await _open_request(ctx.session, wp.id)
            if existing is not None:
                raise rules.already_open(wp.id, existing.id)
            ext = ExtensionRequest(
                work_point_id=wp.id,
                agency_id=agency_id,
                state=rules.OPEN,
                requested_due_on=due_on,
                previous_due_on=effective_policy(plan, wp)["due_on"],
                reason=reason,
                requested_by=ctx.actor.client_id,
                requested_at=now,
            )
            ctx.session.add(ext)
            await ctx.session.flush()
            ctx.audit("extension.requested", wp.id, now, after=_state(ext))
    except sqlalchemy.exc.IntegrityError as exc:
        # Two requests raced past the check: the partial unique index kept one open.
        raise rules.already_open(f"{slug}/{code}", None) from exc
    return ext


async def withdraw_extension(
    ctx: Context, slug: str, code: str, extension_id: int, agency_id: uuid.UUID
) -> ExtensionRequest:
    """The lead agency withdraws its open request."""
    async with ctx.transaction() as now:
        _, wp = await work_point(ctx.session, slug, code)
        await _check_lead(ctx.session, wp, agency_id)
        ext = await _request_of(ctx.session, wp, extension_id)
        before = _state(ext)
        ext.state = rules.next_state(ext.state, "withdraw", extension_id)
        _decided(ctx, ext, now, None)
        ctx.audit("extension.withdrawn", wp.id, now, before=before, after=_state(ext))
    return ext


def _decided(ctx: Context, ext: ExtensionRequest, now: Any, note: str | None) -> None:
    assert ctx.actor is not None
    ext.decided_by = ctx.actor.client_id
    ext.decided_at = now
    ext.decision_note = note
    ctx.session.add(ext)


async def reject_extension(
    ctx: Context, slug: str, code: str, extension_id: int, reason: str
) -> ExtensionRequest:
    """The office rejects an open request, saying why; the due date stays."""
    async with ctx.transaction() as now:
        _, wp = await work_point(ctx.session, slug, code)
        ext = await _request_of(ctx.session, wp, extension_id)
        before = _state(ext)
        ext.state = rules.next_state(ext.state, "reject", extension_id)
        _decided(ctx, ext, now, reason)
        ctx.audit("extension.rejected", wp.id, now, before=before, after=_state(ext))
    return ext


async def approve_extension(
    ctx: Context, slug: str, code: str, extension_id: int, note: str | None
) -> ExtensionRequest:
    """The office approves an open request: the work point's due date becomes the requested
    one (audited as `due_on.extended`, republished so progress re-judges with it)."""
    async with editing(ctx, slug, code, "due_on.extended") as (plan, wp):
        ext = await _request_of(ctx.session, wp, extension_id)
        before = _state(ext)
        ext.state = rules.next_state(ext.state, "approve", extension_id)
        check_due_on(plan, ext.requested_due_on, ctx.settings.latest_due_years_after_plan)
        now = ctx.clock.now()
        _decided(ctx, ext, now, note)
        wp.due_on = ext.requested_due_on
        ctx.audit("extension.approved", wp.id, now, before=before, after=_state(ext))
    return ext


async def extensions_of_plan(
    session: AsyncSession, slug: str, state: str | None, limit: int, offset: int
) -> tuple[list[tuple[ExtensionRequest, WorkPoint]], int]:
    """A page of the plan's requests (in `state` if given) with their work points, oldest
    first, and how many match in all; refused (404 unknown_plan) for a plan never imported."""
    plan = await plan_by_slug(session, slug)
    where = [col(WorkPoint.plan_id) == plan.id]
    if state is not None:
        where.append(col(ExtensionRequest.state) == state)
    joined = select(ExtensionRequest, WorkPoint).join(
        WorkPoint, col(WorkPoint.id) == col(ExtensionRequest.work_point_id)
    )
    rows = await session.exec(
        joined.where(*where).order_by(col(ExtensionRequest.id)).limit(limit).offset(offset)
    )
    counted = (
        select(func.count())
        .select_from(ExtensionRequest)
        .join(WorkPoint, col(WorkPoint.id) == col(ExtensionRequest.work_point_id))
        .where(*where)
    )
    total = (await session.exec(counted)).one()
    return [(ext, wp) for ext, wp in rows.all()], int(total)


async def extensions_of(session: AsyncSession, slug: str, code: str) -> list[ExtensionRequest]:
    """Every request for a work point, oldest first, with its decision."""
    _, wp = await work_point(session, slug, code)
    rows = await session.exec(
        select(ExtensionRequest)
        .where(ExtensionRequest.work_point_id == wp.id)
        .order_by(col(ExtensionRequest.id))
    )
    return list(rows.all())

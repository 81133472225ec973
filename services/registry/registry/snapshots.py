"""Work point snapshots: the registry's full view of a work point, queued on the outbox."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from duban_shared import topics
from duban_shared.events import Responsibility as ResponsibilityRef
from duban_shared.events import TargetRef, TargetShareRef, WorkPointSnapshot
from duban_shared.outbox import outbox_row
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from registry.models import (
    Agency,
    OutboxMessage,
    Plan,
    Responsibility,
    Target,
    TargetShare,
    WorkPoint,
)
from registry.policies import effective_policy


async def roles_of(session: AsyncSession, wp_id: str) -> list[tuple[Responsibility, Agency]]:
    """A work point's responsibilities with their agencies, leads first as stored."""
    rows = await session.exec(
        select(Responsibility, Agency)
        .join(Agency)
        .where(Responsibility.work_point_id == wp_id)
        .order_by(col(Responsibility.position))
    )
    return list(rows.all())


async def targets_of(session: AsyncSession, wp_id: str) -> list[tuple[Target, list[TargetShare]]]:
    """A work point's targets in order, each with its shares."""
    targets = (
        await session.exec(
            select(Target).where(Target.work_point_id == wp_id).order_by(col(Target.position))
        )
    ).all()
    out = []
    for target in targets:
        shares = (
            await session.exec(select(TargetShare).where(TargetShare.target_id == target.id))
        ).all()
        out.append((target, list(shares)))
    return out


async def publish_work_point(session: AsyncSession, wp: WorkPoint, now: datetime) -> None:
    """Queue the full snapshot of a work point (responsibilities, targets, policy)."""
    plan = await session.get(Plan, wp.plan_id)
    assert plan is not None
    policy = effective_policy(plan, wp)
    roles = await roles_of(session, wp.id)
    targets = await targets_of(session, wp.id)
    snapshot = WorkPointSnapshot(
        event_id=uuid.uuid4(),
        occurred_at=now,
        work_point_id=wp.id,
        plan_slug=plan.slug,
        number=wp.number,
        section=wp.section_number,
        title=wp.title,
        lead_inferred=wp.lead_inferred,
        responsibilities=[
            ResponsibilityRef(
                agency_id=a.id, name=a.name, role="lead" if r.role == "lead" else "co"
            )
            for r, a in roles
        ],
        report_every_working_days=policy["report_every_working_days"],
        grace_working_days=policy["grace_working_days"],
        warn_before_due_working_days=policy["warn_before_due_working_days"],
        pace_tolerance_pct=policy["pace_tolerance_pct"],
        flatline_reports=policy["flatline_reports"],
        due_on=policy["due_on"].isoformat(),
        targets=[
            TargetRef(
                metric=t.metric,
                value=t.value,
                unit=t.unit,
                comparator=t.comparator,
                shares=[TargetShareRef(agency_id=s.agency_id, share=s.share) for s in shares],
            )
            for t, shares in targets
        ],
        coordinating_agency_id=plan.coordinating_agency_id,
    )
    queue(session, snapshot, now)


async def publish_work_points(session: AsyncSession, wp_ids: Iterable[str], now: datetime) -> None:
    """Queue snapshots of several work points."""
    for wp_id in sorted(set(wp_ids)):
        wp = await session.get(WorkPoint, wp_id)
        if wp is not None:
            await publish_work_point(session, wp, now)


def publish_tombstone(session: AsyncSession, wp: WorkPoint, plan_slug: str, now: datetime) -> None:
    """Queue the snapshot that says a work point is gone."""
    snapshot = WorkPointSnapshot(
        event_id=uuid.uuid4(),
        occurred_at=now,
        work_point_id=wp.id,
        plan_slug=plan_slug,
        number=wp.number,
        section=wp.section_number,
        title=wp.title,
        responsibilities=[],
        deleted=True,
    )
    queue(session, snapshot, now)


def queue(session: AsyncSession, snapshot: WorkPointSnapshot, now: datetime) -> None:
    """Add a snapshot to the outbox."""
    session.add(
        outbox_row(
            OutboxMessage, topics.WORK_POINTS, snapshot.work_point_id, snapshot.to_bytes(), now
        )
    )

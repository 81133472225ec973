"""What the registry announces, queued on its outbox in the caller's transaction: work point
snapshots (and tombstones), agency snapshots, and revocations of clients and tokens."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from duban_shared import topics
from duban_shared.events import (
    AgencySnapshot,
    Revocation,
    RevocationKind,
    TargetRef,
    TargetShareRef,
    WorkPointSnapshot,
)
from duban_shared.events import Responsibility as ResponsibilityRef
from duban_shared.outbox import outbox_row
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from registry.domain.policies import effective_policy
from registry.settings import MAX_TOKEN_LIFETIME_SECONDS
from registry.store import queries
from registry.store.agencies import aliases_of
from registry.store.models import (
    Agency,
    OutboxMessage,
    Plan,
    Responsibility,
    Section,
    Target,
    TargetShare,
    WorkPoint,
)


async def publish_work_point(session: AsyncSession, wp: WorkPoint, now: datetime) -> None:
    """Queue the full snapshot of a work point (responsibilities, targets, policy)."""
    await publish_work_points(session, [wp.id], now)


async def publish_work_points(session: AsyncSession, wp_ids: Iterable[str], now: datetime) -> None:
    """Queue snapshots of several work points, loading their details in bulk."""
    ids = sorted(set(wp_ids))
    if not ids:
        return
    wps = (await session.exec(select(WorkPoint).where(col(WorkPoint.id).in_(ids)))).all()
    roles, targets = await queries.details(session, ids)
    plan_ids = {wp.plan_id for wp in wps}
    section_titles = {
        (s.plan_id, s.number): s.title
        for s in (await session.exec(select(Section).where(col(Section.plan_id).in_(plan_ids))))
    }
    for wp in sorted(wps, key=lambda w: w.number):
        plan = await session.get(Plan, wp.plan_id)  # from the identity map after the first
        assert plan is not None
        section_title = section_titles.get((wp.plan_id, wp.section_number), "")
        snapshot = _snapshot(
            plan, wp, section_title, roles.get(wp.id, []), targets.get(wp.id, []), now
        )
        queue(session, snapshot, now)


def _snapshot(
    plan: Plan,
    wp: WorkPoint,
    section_title: str,
    roles: list[tuple[Responsibility, Agency]],
    targets: list[tuple[Target, list[TargetShare]]],
    now: datetime,
) -> WorkPointSnapshot:
    policy = effective_policy(plan, wp)
    return WorkPointSnapshot(
        event_id=uuid.uuid4(),
        occurred_at=now,
        work_point_id=wp.id,
        plan_slug=plan.slug,
        number=wp.number,
        code=wp.code,
        section=wp.section_number,
        title=wp.title,
        plan_title=plan.title,
        section_title=section_title,
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
        starts_on=date(plan.year, 1, 1).isoformat(),
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


def publish_tombstone(session: AsyncSession, wp: WorkPoint, plan_slug: str, now: datetime) -> None:
    """Queue the snapshot that says a work point is gone."""
    snapshot = WorkPointSnapshot(
        event_id=uuid.uuid4(),
        occurred_at=now,
        work_point_id=wp.id,
        plan_slug=plan_slug,
        number=wp.number,
        code=wp.code,
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


async def publish_agency(session: AsyncSession, agency: Agency, now: datetime) -> None:
    """Queue the agency's snapshot for the agencies topic."""
    snapshot = AgencySnapshot(
        event_id=uuid.uuid4(),
        occurred_at=now,
        agency_id=agency.id,
        name=agency.name,
        kind=agency.kind,
        aliases=await aliases_of(session, agency.id),
        merged_into=agency.merged_into_id,
    )
    session.add(
        outbox_row(OutboxMessage, topics.AGENCIES, str(agency.id), snapshot.to_bytes(), now)
    )


def _queue_revocation(session: AsyncSession, revocation: Revocation, now: datetime) -> Revocation:
    session.add(
        outbox_row(OutboxMessage, topics.REVOCATIONS, revocation.key, revocation.to_bytes(), now)
    )
    return revocation


def revoke_client_tokens(
    session: AsyncSession,
    client_id: str,
    reason: Literal["revoked", "rotated"],
    now: datetime,
    *,
    lifetime: timedelta = timedelta(seconds=MAX_TOKEN_LIFETIME_SECONDS),
) -> Revocation:
    """Refuse the tokens a client (or a person's account, `person:<username>`) holds now:
    every one (revoked) or its old secret's (rotated). They all expire within `lifetime`, the
    longest a token of theirs lives."""
    revocation = Revocation(
        event_id=uuid.uuid4(),
        occurred_at=now,
        kind=RevocationKind.CLIENT,
        reason=reason,
        client_id=client_id,
        expires_at=now + lifetime,
    )
    return _queue_revocation(session, revocation, now)


def revoke_token(
    session: AsyncSession, client_id: str, jti: str, exp: float, now: datetime
) -> Revocation:
    """Refuse one token until it expires (a logout)."""
    revocation = Revocation(
        event_id=uuid.uuid4(),
        occurred_at=now,
        kind=RevocationKind.TOKEN,
        reason="logout",
        client_id=client_id,
        jti=jti,
        expires_at=datetime.fromtimestamp(exp, UTC),
    )
    return _queue_revocation(session, revocation, now)

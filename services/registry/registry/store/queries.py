"""Registry reads for the API: filtered, paginated, with related rows loaded in bulk."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from registry.store.models import (
    Agency,
    AgencyAlias,
    AgencyHistory,
    Plan,
    Responsibility,
    Section,
    Target,
    TargetShare,
    WorkPoint,
)


async def page(
    session: AsyncSession, query: SelectOfScalar[Any], limit: int, offset: int
) -> tuple[list[Any], int]:
    """Run a query for one page; return the rows and the total count."""
    total = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
    rows = (await session.exec(query.limit(limit).offset(offset))).all()
    return list(rows), int(total)


async def plan_by_slug(session: AsyncSession, slug: str) -> Plan | None:
    """Find a plan by its slug."""
    return (await session.exec(select(Plan).where(Plan.slug == slug))).first()


def plans_query(year: int | None = None, city: str | None = None) -> SelectOfScalar[Plan]:
    """Plans, optionally of one year or city, by slug."""
    query = select(Plan)
    if year is not None:
        query = query.where(Plan.year == year)
    if city:
        query = query.where(Plan.city == city)
    return query.order_by(col(Plan.slug))


async def sections_of(session: AsyncSession, plan_id: int) -> list[Section]:
    """A plan's sections in order."""
    rows = await session.exec(
        select(Section).where(Section.plan_id == plan_id).order_by(col(Section.number))
    )
    return list(rows.all())


def work_points_query(
    plan_id: int,
    *,
    agency_id: uuid.UUID | None = None,
    role: str | None = None,
    section: int | None = None,
) -> SelectOfScalar[WorkPoint]:
    """A plan's work points by number, optionally one agency's (in a role) or one section's."""
    query = select(WorkPoint).where(WorkPoint.plan_id == plan_id)
    if section is not None:
        query = query.where(WorkPoint.section_number == section)
    if agency_id is not None:
        mine = select(Responsibility.work_point_id).where(Responsibility.agency_id == agency_id)
        if role:
            mine = mine.where(Responsibility.role == role)
        query = query.where(col(WorkPoint.id).in_(mine))
    return query.order_by(col(WorkPoint.number))


async def details(
    session: AsyncSession, wp_ids: Sequence[str]
) -> tuple[
    dict[str, list[tuple[Responsibility, Agency]]],
    dict[str, list[tuple[Target, list[TargetShare]]]],
]:
    """Responsibilities and targets (with shares) of several work points, in two queries each."""
    roles: dict[str, list[tuple[Responsibility, Agency]]] = {}
    rows = await session.exec(
        select(Responsibility, Agency)
        .join(Agency)
        .where(col(Responsibility.work_point_id).in_(wp_ids))
        .order_by(col(Responsibility.work_point_id), col(Responsibility.position))
    )
    for resp, agency in rows.all():
        roles.setdefault(resp.work_point_id, []).append((resp, agency))
    targets: dict[str, list[tuple[Target, list[TargetShare]]]] = {}
    found = (
        await session.exec(
            select(Target)
            .where(col(Target.work_point_id).in_(wp_ids))
            .order_by(col(Target.work_point_id), col(Target.position))
        )
    ).all()
    shares: dict[int, list[TargetShare]] = {}
    if found:
        share_rows = await session.exec(
            select(TargetShare).where(col(TargetShare.target_id).in_([t.id for t in found]))
        )
        for share in share_rows.all():
            shares.setdefault(share.target_id, []).append(share)
    for target in found:
        assert target.id is not None
        targets.setdefault(target.work_point_id, []).append((target, shares.get(target.id, [])))
    return roles, targets


def agencies_query(name: str | None = None, kind: str | None = None) -> SelectOfScalar[Agency]:
    """Current (not merged) agencies by name, optionally matching part of a name or a kind."""
    query = select(Agency).where(col(Agency.merged_into_id).is_(None))
    if name:
        query = query.where(col(Agency.name).contains(name))
    if kind:
        query = query.where(Agency.kind == kind)
    return query.order_by(col(Agency.name))


async def aliases_by_agency(
    session: AsyncSession, agency_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    """Aliases of several agencies."""
    out: dict[uuid.UUID, list[str]] = {}
    rows = await session.exec(
        select(AgencyAlias)
        .where(col(AgencyAlias.agency_id).in_(agency_ids))
        .order_by(col(AgencyAlias.alias))
    )
    for alias in rows.all():
        out.setdefault(alias.agency_id, []).append(alias.alias)
    return out


async def history_of(session: AsyncSession, agency_id: uuid.UUID) -> list[AgencyHistory]:
    """An agency's history, oldest first."""
    rows = await session.exec(
        select(AgencyHistory)
        .where(AgencyHistory.agency_id == agency_id)
        .order_by(col(AgencyHistory.id))
    )
    return list(rows.all())

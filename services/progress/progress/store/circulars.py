"""Stored circulars: the latest of a plan, the next version and number, the list."""

from __future__ import annotations

import uuid

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.store.models import Circular


async def latest(session: AsyncSession, plan_slug: str) -> Circular | None:
    """The plan's latest circular (the one a new circular compares with)."""
    rows = await session.exec(
        select(Circular)
        .where(Circular.plan_slug == plan_slug)
        .order_by(
            col(Circular.created_at).desc(), col(Circular.year).desc(), col(Circular.seq).desc()
        )
        .limit(1)
    )
    return rows.first()


async def next_version(session: AsyncSession, plan_slug: str, period: str) -> int:
    """1 + the latest version of the plan's circulars of a period (1 for the first)."""
    top = await session.exec(
        select(func.max(Circular.version)).where(
            Circular.plan_slug == plan_slug, Circular.period == period
        )
    )
    return int(top.one() or 0) + 1


async def next_seq(session: AsyncSession, year: int) -> int:
    """1 + the year's last circular's place (the n of 〔year〕n号)."""
    top = await session.exec(select(func.max(Circular.seq)).where(Circular.year == year))
    return int(top.one() or 0) + 1


async def scheduled_exists(session: AsyncSession, key: str) -> bool:
    """Whether the scheduled circular with this key (plan:kind:period) was made."""
    rows = await session.exec(select(Circular.id).where(Circular.scheduled_key == key))
    return rows.first() is not None


async def of_plan(
    session: AsyncSession, plan_slug: str, limit: int, offset: int
) -> tuple[list[Circular], int]:
    """A plan's circulars, newest first, without loading their files."""
    total = await session.exec(
        select(func.count()).select_from(Circular).where(Circular.plan_slug == plan_slug)
    )
    rows = await session.exec(
        select(Circular)
        .where(Circular.plan_slug == plan_slug)
        .order_by(col(Circular.created_at).desc(), col(Circular.seq).desc())
        .offset(offset)
        .limit(limit)
    )
    return list(rows.all()), int(total.one())


async def get(session: AsyncSession, circular_id: uuid.UUID) -> Circular | None:
    """One circular with its files."""
    return await session.get(Circular, circular_id)

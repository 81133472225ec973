"""The `duban.stalls.open` gauge (open stall episodes by colour and headline reason) and the
`duban.calendar.provisional_judgements` gauge (work points judged on a provisional calendar
year, by year)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence

from duban_shared import attributes as attr
from duban_shared.metrics import CALENDAR_PROVISIONAL, STALLS_OPEN, CachedGauge, ServiceMetrics
from sqlalchemy import String, cast, func
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.store.models import WorkPointState


async def open_stalls(session: AsyncSession) -> Counter[tuple[str, str]]:
    """Open episodes counted by (level, headline reason); one query over the open ones."""
    rows = await session.exec(
        select(WorkPointState.level, WorkPointState.reasons).where(
            col(WorkPointState.stall_episode_id).is_not(None)
        )
    )
    return Counter((level, reasons[0] if reasons else "none") for level, reasons in rows.all())


def _register(
    metrics: ServiceMetrics,
    sessions: async_sessionmaker[AsyncSession],
    name: str,
    count: Callable[[AsyncSession], Awaitable[Sequence[tuple[float, Mapping[str, str]]]]],
    *,
    max_age_seconds: float,
    unit: str,
    description: str,
) -> CachedGauge:
    """A gauge on progress's metrics whose values one query gives, run at most every max age."""

    async def load() -> Sequence[tuple[float, Mapping[str, str]]]:
        async with sessions() as session:
            return await count(session)

    return metrics.cached_gauge(
        name, load, max_age_seconds=max_age_seconds, unit=unit, description=description
    )


def register_open_stalls(
    metrics: ServiceMetrics,
    sessions: async_sessionmaker[AsyncSession],
    *,
    max_age_seconds: float,
) -> CachedGauge:
    """Register `duban.stalls.open`; the query runs at most every max age."""

    async def count(session: AsyncSession) -> Sequence[tuple[float, Mapping[str, str]]]:
        counts = await open_stalls(session)
        return [
            (float(n), {attr.STALL_LEVEL: level, attr.STALL_REASON: reason})
            for (level, reason), n in counts.items()
        ]

    return _register(
        metrics,
        sessions,
        STALLS_OPEN,
        count,
        max_age_seconds=max_age_seconds,
        unit="{episode}",
        description="Open stall episodes by colour (duban.stall.level) and headline reason "
        "(duban.stall.reason).",
    )


async def provisional_judgements(session: AsyncSession) -> Counter[int]:
    """Work points whose current judgement counted on a provisional year, by year: one query
    grouping by the stored list (a handful of distinct lists, whatever the row count)."""
    years = cast(col(WorkPointState.provisional_years), String)
    rows = await session.exec(
        select(years, func.count())
        .where(col(WorkPointState.provisional_years).is_not(None))
        .group_by(years)
    )
    counts: Counter[int] = Counter()
    for text, n in rows.all():
        for year in json.loads(text):
            counts[int(year)] += n
    return counts


def register_provisional_judgements(
    metrics: ServiceMetrics,
    sessions: async_sessionmaker[AsyncSession],
    *,
    max_age_seconds: float,
) -> CachedGauge:
    """Register `duban.calendar.provisional_judgements`; the query runs at most every max age."""

    async def count(session: AsyncSession) -> Sequence[tuple[float, Mapping[str, str]]]:
        counts = await provisional_judgements(session)
        return [(float(n), {attr.CALENDAR_YEAR: str(year)}) for year, n in sorted(counts.items())]

    return _register(
        metrics,
        sessions,
        CALENDAR_PROVISIONAL,
        count,
        max_age_seconds=max_age_seconds,
        unit="{work_point}",
        description="Work points whose current judgement counted working days on a provisional "
        "calendar year (duban.calendar.year): its official holiday arrangement is not installed.",
    )

"""The `duban.stalls.open` gauge (open stall episodes by colour and headline reason) and the
`duban.calendar.provisional_judgements` gauge (work points judged on a provisional calendar
year, by year)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence

from duban_shared import attributes as attr
from duban_shared.metrics import CALENDAR_PROVISIONAL, STALLS_OPEN, CachedGauge, ServiceMetrics
from sqlalchemy import String, cast, func
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.models import WorkPointState


async def open_stalls(session: AsyncSession) -> Counter[tuple[str, str]]:
    """Open episodes counted by (level, headline reason); one query over the open ones."""
    rows = await session.exec(
        select(WorkPointState.level, WorkPointState.reasons).where(
            col(WorkPointState.stall_episode_id).is_not(None)
        )
    )
    return Counter((level, reasons[0] if reasons else "none") for level, reasons in rows.all())


def register_open_stalls(
    metrics: ServiceMetrics,
    sessions: async_sessionmaker[AsyncSession],
    *,
    max_age_seconds: float,
) -> CachedGauge:
    """Register the gauge on progress's metrics; the query runs at most every max age."""

    async def load() -> Sequence[tuple[float, Mapping[str, str]]]:
        async with sessions() as session:
            counts = await open_stalls(session)
        return [
            (float(n), {attr.STALL_LEVEL: level, attr.STALL_REASON: reason})
            for (level, reason), n in counts.items()
        ]

    return metrics.cached_gauge(
        STALLS_OPEN,
        load,
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
    """Register the gauge on progress's metrics; the query runs at most every max age."""

    async def load() -> Sequence[tuple[float, Mapping[str, str]]]:
        async with sessions() as session:
            counts = await provisional_judgements(session)
        return [(float(n), {attr.CALENDAR_YEAR: str(year)}) for year, n in sorted(counts.items())]

    return metrics.cached_gauge(
        CALENDAR_PROVISIONAL,
        load,
        max_age_seconds=max_age_seconds,
        unit="{work_point}",
        description="Work points whose current judgement counted working days on a provisional "
        "calendar year (duban.calendar.year): its official holiday arrangement is not installed.",
    )

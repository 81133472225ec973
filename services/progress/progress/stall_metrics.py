"""The `duban.stalls.open` gauge: open stall episodes by colour and headline reason."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from duban_shared import attributes as attr
from duban_shared.metrics import STALLS_OPEN, CachedGauge, ServiceMetrics
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

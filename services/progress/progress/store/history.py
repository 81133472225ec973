"""Reading the report history to verify its hash chains (progress.domain.chain)."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.domain.chain import Verification, check_chains
from progress.store.models import StatusReport


async def verify(session: AsyncSession, work_point_id: str | None = None) -> Verification:
    """Check one work point's chain, or all of them, in order; name the first broken row."""
    query = select(StatusReport).order_by(
        col(StatusReport.work_point_id), col(StatusReport.chain_seq)
    )
    if work_point_id is not None:
        query = query.where(StatusReport.work_point_id == work_point_id)
    return check_chains((await session.exec(query)).all())

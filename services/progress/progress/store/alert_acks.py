"""The notifier's alerts as progress keeps them (`AlertAck`), in the database."""

from __future__ import annotations

import uuid

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.domain.acks import AlertFacts
from progress.store.models import AlertAck


async def get(session: AsyncSession, alert_id: uuid.UUID) -> AlertAck | None:
    """One alert's row, locked for the transaction."""
    return await session.get(AlertAck, alert_id, with_for_update=True)


async def facts_of_plan(session: AsyncSession, plan_slug: str) -> list[AlertFacts]:
    """What the circular needs of each of the plan's alerts."""
    rows = await session.exec(select(AlertAck).where(AlertAck.plan_slug == plan_slug))
    return [
        AlertFacts(
            alert_id=row.alert_id,
            lead_agency_ids=frozenset(uuid.UUID(a) for a in row.lead_agency_ids),
            fired_at=row.fired_at,
            acknowledged_at=row.acknowledged_at,
            resolved_at=row.resolved_at,
        )
        for row in rows.all()
    ]

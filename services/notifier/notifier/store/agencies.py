"""The read model of the registry's agencies, in the database."""

from __future__ import annotations

from duban_shared.events import AgencySnapshot
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.store.models import AgencyView


async def apply_snapshot(session: AsyncSession, snap: AgencySnapshot) -> None:
    """Upsert an agency; an older snapshot redelivered after a newer one changes nothing."""
    view = await session.get(AgencyView, snap.agency_id)
    if view is not None and view.snapshot_at > snap.occurred_at:
        return
    if view is None:
        view = AgencyView(
            id=snap.agency_id, name=snap.name, kind=snap.kind, snapshot_at=snap.occurred_at
        )
    view.name, view.kind, view.merged_into_id = snap.name, snap.kind, snap.merged_into
    view.snapshot_at = snap.occurred_at
    session.add(view)

"""The notifier's read model of agencies, kept from the registry's agencies topic."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from duban_shared.events import AgencySnapshot
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.store.agencies import apply_snapshot


@dataclass
class Agencies:
    """Applies agency snapshots."""

    sessions: async_sessionmaker[AsyncSession]

    async def apply(self, snapshots: Sequence[AgencySnapshot]) -> None:
        """Upsert every snapshot in one transaction."""
        async with self.sessions() as session, session.begin():
            for snap in snapshots:
                await apply_snapshot(session, snap)

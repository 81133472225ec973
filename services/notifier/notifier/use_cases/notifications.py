"""The notification log for operators: why an agency got (or did not get) a message."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.store import notifications as log_store
from notifier.store.models import NotificationLog


@dataclass
class Notifications:
    """Reads the notification log."""

    sessions: async_sessionmaker[AsyncSession]

    async def newest(
        self, *, work_point_id: str | None, alert_id: uuid.UUID | None, limit: int, offset: int
    ) -> list[NotificationLog]:
        """The newest entries, optionally of one work point or alert."""
        async with self.sessions() as session:
            return await log_store.entries(
                session, work_point_id=work_point_id, alert_id=alert_id, limit=limit, offset=offset
            )

"""Inbox: the ids of events already applied, so a redelivered message changes nothing."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from duban_shared.db import utc_column


class InboxFields(SQLModel):
    """Columns of an inbox table; a service's table model inherits them."""

    event_id: uuid.UUID = Field(primary_key=True)
    topic: str = Field(max_length=200)
    processed_at: datetime = utc_column(index=True)  # retention prunes by it


async def first_delivery(
    session: AsyncSession, model: type[Any], event_id: uuid.UUID, topic: str, now: datetime
) -> bool:
    """Record the event in the inbox; return False when it was applied before.

    Messages with one key arrive in order on one partition, so check-then-insert is safe;
    the primary key still refuses a concurrent duplicate, which rolls the transaction back.
    """
    if await session.get(model, event_id) is not None:
        return False
    session.add(model(event_id=event_id, topic=topic, processed_at=now))
    return True

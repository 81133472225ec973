"""The notification log in the database: planned deliveries, claimed and recorded."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.domain.delivery import DUE_STATUSES, PENDING, RESOLVING_EVENTS, UNSENT_STATUSES
from notifier.store.models import NotificationLog


async def planned(session: AsyncSession, cause: uuid.UUID, channel: str, recipient: str) -> bool:
    """Whether the delivery of this cause to this address is planned already."""
    found = await session.exec(
        select(NotificationLog.id).where(
            NotificationLog.transition_event_id == cause,
            NotificationLog.channel == channel,
            NotificationLog.recipient == recipient,
        )
    )
    return found.first() is not None


async def pending_due_at(
    session: AsyncSession, contact_id: int | None, now: datetime
) -> datetime | None:
    """When a pending row of the contact that still waits falls due (a new row may join it)."""
    found = await session.exec(
        select(NotificationLog.next_attempt_at).where(
            NotificationLog.contact_id == contact_id,
            NotificationLog.status == PENDING,
            col(NotificationLog.next_attempt_at) > now,
        )
    )
    return found.first()


async def unsent(
    session: AsyncSession, alert_id: uuid.UUID, work_point_id: str | None = None
) -> list[NotificationLog]:
    """Rows about the alert (or about every alert of `work_point_id`) not yet sent, except
    recovery and closure messages."""
    scope = (
        NotificationLog.work_point_id == work_point_id
        if work_point_id is not None
        else NotificationLog.alert_id == alert_id
    )
    rows = await session.exec(
        select(NotificationLog).where(
            scope,
            col(NotificationLog.status).in_(UNSENT_STATUSES),
            col(NotificationLog.event).not_in(RESOLVING_EVENTS),
        )
    )
    return list(rows.all())


async def due(
    session: AsyncSession, now: datetime, limit: int, *, skip_locked: bool
) -> list[NotificationLog]:
    """Rows due at `now`, oldest first, claimed (SKIP LOCKED) when the database can."""
    query = (
        select(NotificationLog)
        .where(
            col(NotificationLog.status).in_(DUE_STATUSES),
            col(NotificationLog.next_attempt_at) <= now,
        )
        .order_by(col(NotificationLog.next_attempt_at))
        .limit(limit)
    )
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    return list((await session.exec(query)).all())


async def row(session: AsyncSession, row_id: int | None) -> NotificationLog | None:
    """One row, as stored now."""
    return await session.get(NotificationLog, row_id)


async def tried_contacts(session: AsyncSession, cause: uuid.UUID) -> list[int]:
    """The contacts a cause was already planned on."""
    rows = await session.exec(
        select(NotificationLog.contact_id).where(NotificationLog.transition_event_id == cause)
    )
    return [c for c in rows.all() if c is not None]


async def told(session: AsyncSession, alert_id: uuid.UUID) -> list[tuple[uuid.UUID, str]]:
    """Every (agency, role) a message about the alert went to, or is planned to."""
    rows = await session.exec(
        select(NotificationLog.agency_id, NotificationLog.role)
        .where(NotificationLog.alert_id == alert_id)
        .distinct()
    )
    return list(rows.all())


async def entries(
    session: AsyncSession,
    *,
    work_point_id: str | None,
    alert_id: uuid.UUID | None,
    limit: int,
    offset: int,
) -> list[NotificationLog]:
    """The newest entries, optionally of one work point or alert."""
    query = (
        select(NotificationLog).order_by(col(NotificationLog.id).desc()).limit(limit).offset(offset)
    )
    if work_point_id:
        query = query.where(NotificationLog.work_point_id == work_point_id)
    if alert_id:
        query = query.where(NotificationLog.alert_id == alert_id)
    return list((await session.exec(query)).all())

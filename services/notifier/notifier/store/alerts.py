"""Alerts and their acknowledgement codes, in the database."""

from __future__ import annotations

import uuid
from datetime import datetime

from duban_shared.events import StallTransition
from duban_shared.kafka import trace_id_of
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.domain.alerts import RESOLVED, STALL
from notifier.store.models import AckCode, Alert, NotificationLog


async def alert_of_episode(session: AsyncSession, episode_id: uuid.UUID) -> Alert | None:
    """The alert of a stall episode, if one fired."""
    return (await session.exec(select(Alert).where(Alert.episode_id == episode_id))).first()


def new_alert(transition: StallTransition, episode_id: uuid.UUID, now: datetime) -> Alert:
    """A firing alert for the transition's episode (not yet added to the session). Its id is
    derived from the episode's, so the alert made again for the same episode (its transition
    re-read after a database restore) has the same id, and so have its messages' references."""
    return Alert(
        id=uuid.uuid5(episode_id, "alert"),
        episode_id=episode_id,
        work_point_id=transition.work_point_id,
        plan_slug=transition.plan_slug,
        number=transition.work_point_number,
        code=transition.work_point_code,
        title=transition.work_point_title,
        level=transition.level.value,
        lead_agencies=[a.model_dump(mode="json") for a in transition.lead_agencies],
        co_agencies=[a.model_dump(mode="json") for a in transition.co_agencies],
        coordinating_agency_id=transition.coordinating_agency_id,
        fired_at=transition.occurred_at,
        updated_at=now,
    )


async def open_alerts(session: AsyncSession, work_point_id: str) -> list[Alert]:
    """The work point's alerts not resolved yet."""
    rows = await session.exec(
        select(Alert).where(
            Alert.work_point_id == work_point_id,
            col(Alert.state) != RESOLVED,
            col(Alert.kind) == STALL,
        )
    )
    return list(rows.all())


async def alert(
    session: AsyncSession, alert_id: uuid.UUID, *, for_update: bool = False
) -> Alert | None:
    """One alert (locked for the transaction with `for_update`)."""
    return await session.get(Alert, alert_id, with_for_update=for_update or None)


async def alerts(
    session: AsyncSession, state: str | None, work_point_id: str | None
) -> list[Alert]:
    """Alerts newest first; `state` is firing, acknowledged, resolved or open (not resolved)."""
    query = select(Alert).where(col(Alert.kind) == STALL)
    if state == "open":
        query = query.where(col(Alert.state) != RESOLVED)
    elif state is not None:
        query = query.where(Alert.state == state)
    if work_point_id is not None:
        query = query.where(Alert.work_point_id == work_point_id)
    return list((await session.exec(query.order_by(col(Alert.fired_at).desc()))).all())


async def alerts_by_id(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, Alert]:
    """The alerts with these ids."""
    rows = await session.exec(select(Alert).where(col(Alert.id).in_(ids)))
    return {a.id: a for a in rows.all()}


async def due_alerts(
    session: AsyncSession, now: datetime, limit: int, *, skip_locked: bool
) -> list[Alert]:
    """Alerts whose next escalation step has come, claimed (SKIP LOCKED) when the database can."""
    query = (
        select(Alert)
        .where(col(Alert.next_step_at) <= now, col(Alert.state) != RESOLVED)
        .order_by(col(Alert.next_step_at))
        .limit(limit)
    )
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    return list((await session.exec(query)).all())


async def trace_ids(session: AsyncSession, alert_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The trace id of each alert: that of its first planned delivery's traceparent."""
    if not alert_ids:
        return {}
    rows = await session.exec(
        select(NotificationLog.alert_id, NotificationLog.traceparent)
        .where(
            col(NotificationLog.alert_id).in_(alert_ids),
            col(NotificationLog.traceparent).is_not(None),
        )
        .order_by(col(NotificationLog.id))
    )
    found: dict[uuid.UUID, str] = {}
    for alert_id, traceparent in rows.all():
        trace_id = trace_id_of(traceparent)
        if alert_id is not None and alert_id not in found and trace_id is not None:
            found[alert_id] = trace_id
    return found


def add_ack_code(
    session: AsyncSession,
    code: str,
    alert_id: uuid.UUID,
    agency_id: uuid.UUID,
    now: datetime,
    expires_at: datetime,
) -> None:
    """Store a link code handed to one agency about one alert."""
    session.add(
        AckCode(
            code=code,
            alert_id=alert_id,
            agency_id=agency_id,
            created_at=now,
            expires_at=expires_at,
        )
    )


async def ack_code(session: AsyncSession, code: str, *, for_update: bool = False) -> AckCode | None:
    """A stored link code (locked for the transaction with `for_update`)."""
    return await session.get(AckCode, code, with_for_update=for_update or None)

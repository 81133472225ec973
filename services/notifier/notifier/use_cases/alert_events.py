"""Alert transitions for other services (topic duban.alerts.v1), through the outbox.

Each state change of a stall alert (fired, acknowledged, resolved) adds an outbox row in the
transaction that made it, so the event is published if and only if the change was committed.
Progress consumes them to count acknowledgement times in the circulars (通报).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from duban_shared import topics
from duban_shared.events import AgencyRef, AlertTransition, AlertTransitionKind
from duban_shared.outbox import outbox_row
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.domain.alerts import ACKNOWLEDGED, RESOLVED, STALL
from notifier.store.models import Alert, OutboxMessage

Via = Literal["api", "link"]


def alert_transition(
    alert: Alert,
    kind: AlertTransitionKind,
    *,
    via: Via | None = None,
    person: str | None = None,
) -> AlertTransition:
    """The event telling an alert's lifecycle so far; its id is the alert's and the kind's, so
    the same change told twice is one event."""
    return AlertTransition(
        event_id=uuid.uuid5(alert.id, kind.value),
        occurred_at=_occurred(alert, kind),
        alert_id=alert.id,
        kind=kind,
        plan_slug=alert.plan_slug,
        work_point_id=alert.work_point_id,
        work_point_code=alert.code,
        lead_agencies=[AgencyRef.model_validate(a) for a in alert.lead_agencies],
        fired_at=alert.fired_at,
        acknowledged_at=alert.acknowledged_at,
        acknowledged_via=via or _via(alert.acknowledged_by),
        acknowledged_by=alert.acknowledged_by,
        acknowledged_person=person,
        resolved_at=alert.resolved_at,
        resolution="closed"
        if alert.resolution == "closed"
        else "recovered"
        if alert.resolution
        else None,
    )


def _via(acknowledged_by: str | None) -> Via | None:
    """How an alert was acknowledged, from who is recorded (a link records `link:<agency>`)."""
    if acknowledged_by is None:
        return None
    return "link" if acknowledged_by.startswith("link:") else "api"


def _occurred(alert: Alert, kind: AlertTransitionKind) -> datetime:
    if kind is AlertTransitionKind.ACKNOWLEDGED and alert.acknowledged_at is not None:
        return alert.acknowledged_at
    if kind is AlertTransitionKind.RESOLVED and alert.resolved_at is not None:
        return alert.resolved_at
    return alert.fired_at


def publish_transition(
    session: AsyncSession,
    alert: Alert,
    kind: AlertTransitionKind,
    now: datetime,
    *,
    via: Via | None = None,
    person: str | None = None,
) -> None:
    """Add the transition's outbox row to the session (stall alerts only: a notice's alert is
    the notice's, which progress already knows)."""
    if alert.kind != STALL:
        return
    event = alert_transition(alert, kind, via=via, person=person)
    session.add(
        outbox_row(OutboxMessage, topics.ALERTS, alert.work_point_id, event.to_bytes(), now)
    )


def current_kind(alert: Alert) -> AlertTransitionKind:
    """The transition that brought an alert to its present state."""
    if alert.state == RESOLVED:
        return AlertTransitionKind.RESOLVED
    if alert.state == ACKNOWLEDGED:
        return AlertTransitionKind.ACKNOWLEDGED
    return AlertTransitionKind.FIRED


async def republish(sessions: async_sessionmaker[AsyncSession], now: datetime) -> int:
    """Tell every stall alert's present state again (`duban-notifier republish-alerts`), for
    a consumer that came after the alerts (alerts from before the outbox, a rebuilt copy).
    Each event has the id of the transition it repeats, so a consumer that had it skips it.
    Return how many were queued."""
    async with sessions() as session, session.begin():
        query = select(Alert).where(Alert.kind == STALL).order_by(col(Alert.fired_at))
        alerts = (await session.exec(query)).all()
        told = [a for a in alerts if not never_open(a)]
        for alert in told:
            publish_transition(session, alert, current_kind(alert), now)
    return len(told)


def never_open(alert: Alert) -> bool:
    """A closure's own record: resolved the moment it was made, nothing to acknowledge."""
    return alert.state == RESOLVED and alert.resolved_at == alert.fired_at

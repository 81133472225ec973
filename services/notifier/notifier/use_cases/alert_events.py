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
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.domain.alerts import STALL
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
        acknowledged_via=via,
        acknowledged_by=alert.acknowledged_by,
        acknowledged_person=person,
        resolved_at=alert.resolved_at,
        resolution="closed"
        if alert.resolution == "closed"
        else "recovered"
        if alert.resolution
        else None,
    )


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

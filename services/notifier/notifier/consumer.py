"""Turns stall transitions into alerts and planned deliveries; never sends by itself.

Per transition, in one transaction:
1. Skip it if the inbox says it was handled.
2. Move the episode's alert along (notifier.alerts).
3. Plan deliveries: `opened` runs the policy's steps due at once (and schedules the rest);
   `level_changed` tells the lead agencies and re-plans the policy (urgency may change);
   `recovered` and `closed` drop deliveries not yet sent and tell every agency that was told.
4. Record the transition in the inbox.
Then the dispatcher is woken. Sending lives in the dispatcher, so a slow or failing provider
never holds up the stall topic.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from aiokafka import ConsumerRecord
from duban_shared import attributes as attr
from duban_shared.clock import Clock
from duban_shared.events import StallTransition, StallTransitionKind
from duban_shared.failures import RecordRejected
from duban_shared.inbox import first_delivery
from duban_shared.kafka import process_span
from duban_shared.metrics import ServiceMetrics
from duban_shared.workdays import WorkingCalendar
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode, Tracer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.alerts import apply_transition
from notifier.delivery import (
    Recipient,
    count_notifications,
    plan,
    recipients,
    supersede_pending,
)
from notifier.escalation import advance
from notifier.models import Alert, Inbox, NotificationLog
from notifier.policy import PolicySet

log = logging.getLogger(__name__)


@dataclass
class StallConsumer:
    """Handles batches of the stall topic."""

    sessions: async_sessionmaker[AsyncSession]
    policies: PolicySet
    calendar: WorkingCalendar
    tracer: Tracer
    clock: Clock
    wake_dispatcher: Callable[[], None] = lambda: None
    metrics: ServiceMetrics | None = None

    async def handle_batch(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Handle records in order, each in its own transaction (so a failure part-way leaves
        the records before it applied, and the inbox skips them when the batch comes again)."""
        for record in records:
            with process_span(self.tracer, record) as span:
                try:
                    transition = StallTransition.model_validate_json(record.value or b"")
                except ValidationError as exc:
                    span.set_status(Status(StatusCode.ERROR, "invalid_transition"))
                    # The consumer loop parks it as a dead letter; the rest goes on.
                    raise RecordRejected("invalid_transition", str(exc)) from exc
                span.set_attribute(attr.WORK_POINT_ID, transition.work_point_id)
                span.set_attribute(attr.PLAN_SLUG, transition.work_point_id.rpartition("/")[0])
                if transition.reason is not None:
                    span.set_attribute(attr.STALL_REASON, transition.reason.value)
                span.set_attribute(attr.STALL_TRANSITION, transition.kind.value)
                span.set_attribute(attr.STALL_LEVEL, transition.level.value)
                await self.handle(transition, record.topic)

    async def handle(self, transition: StallTransition, topic: str) -> None:
        """Apply one transition (steps 1-4 above)."""
        now = self.clock.now()
        dropped: Counter[str] = Counter()
        async with self.sessions() as session, session.begin():
            if await session.get(Inbox, transition.event_id) is not None:
                return
            alert = await apply_transition(session, transition, now)
            if alert is not None:
                trace.get_current_span().set_attribute(attr.ALERT_ID, str(alert.id))
                dropped = await self._plan(session, alert, transition)
            await first_delivery(session, Inbox, transition.event_id, topic, now)
        for channel, n in dropped.items():
            count_notifications(self.metrics, channel, "dropped", n)
        self.wake_dispatcher()

    async def _plan(
        self, session: AsyncSession, alert: Alert, transition: StallTransition
    ) -> Counter[str]:
        """Plan the transition's deliveries; return the deliveries dropped, per channel."""
        now = self.clock.now()
        dropped: Counter[str] = Counter()
        kind = transition.kind
        if kind == StallTransitionKind.OPENED:
            await advance(session, alert, self.policies, now, self.calendar)
        elif kind == StallTransitionKind.LEVEL_CHANGED:
            await plan(
                session,
                alert,
                await recipients(session, alert, "lead"),
                occurrence=f"level@{transition.event_id}",
                event="level_changed",
                now=now,
                group_wait=self._group_wait(alert),
            )
            await advance(session, alert, self.policies, now, self.calendar)
        else:
            closed = kind == StallTransitionKind.CLOSED
            dropped = await supersede_pending(session, alert, whole_work_point=closed)
            await plan(
                session,
                alert,
                await self._told(session, alert) or await recipients(session, alert, "lead"),
                occurrence=f"{kind.value}@{transition.event_id}",
                event=kind.value,
                now=now,
                group_wait=self._group_wait(alert),
            )
            alert.next_step_at = None
            session.add(alert)
        return dropped

    def _group_wait(self, alert: Alert) -> timedelta:
        return timedelta(minutes=self.policies.for_plan(alert.plan_slug or "").group_window_minutes)

    async def _told(self, session: AsyncSession, alert: Alert) -> list[Recipient]:
        """Every agency a message about this alert went to (or is planned to)."""
        rows = await session.exec(
            select(NotificationLog.agency_id, NotificationLog.role)
            .where(NotificationLog.alert_id == alert.id)
            .distinct()
        )
        names = {
            uuid.UUID(a["agency_id"]): a["name"] for a in [*alert.lead_agencies, *alert.co_agencies]
        }
        seen: dict[uuid.UUID, Recipient] = {}
        for agency_id, role in rows.all():
            seen.setdefault(agency_id, Recipient(agency_id, names.get(agency_id, ""), role))
        return list(seen.values())

"""Stall transitions into alerts and planned deliveries; never sends by itself.

Per transition, in one transaction:
1. Skip it if the inbox says it was handled.
2. Move the episode's alert along (`notifier.domain.alerts`); when it fires or is resolved,
   add its `AlertTransition` to the outbox (`notifier.use_cases.alert_events`).
3. Plan deliveries: `opened` runs the policy's steps due at once (and schedules the rest);
   `level_changed` tells the lead agencies and re-plans the policy (urgency may change);
   `recovered` and `closed` drop deliveries not yet sent and tell every agency that was told.
4. Record the transition in the inbox.
Then the dispatcher is woken. Sending lives in the dispatcher, so a slow or failing provider
never holds up the stall topic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from duban_shared import attributes as attr
from duban_shared.clock import Clock
from duban_shared.events import AlertTransitionKind, StallTransition, StallTransitionKind
from duban_shared.inbox import first_delivery
from duban_shared.metrics import ServiceMetrics
from duban_shared.workdays import WorkingCalendar
from opentelemetry import trace
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.domain.alerts import RESOLVED, close, follow
from notifier.domain.policy import PolicySet
from notifier.store import alerts as alert_store
from notifier.store.models import Alert, Inbox
from notifier.use_cases.alert_events import publish_transition
from notifier.use_cases.escalation import advance
from notifier.use_cases.planning import (
    count_notifications,
    plan,
    recipients,
    supersede_pending,
    told,
)


async def apply_transition(
    session: AsyncSession, transition: StallTransition, now: datetime
) -> Alert:
    """Move the episode's alert along; return it."""
    # A closure without an open episode still tells the leads: it gets an alert record of its
    # own, resolved from the start, keyed by the transition.
    episode = transition.episode_id or transition.event_id
    alert = await alert_store.alert_of_episode(session, episode)
    fired = alert is None
    if alert is None:
        alert = alert_store.new_alert(transition, episode, now)
    if alert.state != RESOLVED:
        follow(alert, transition, now)
        session.add(alert)
        # A closure record resolved from the start was never there to acknowledge: untold.
        if fired and alert.state != RESOLVED:
            publish_transition(session, alert, AlertTransitionKind.FIRED, now)
        elif not fired and alert.state == RESOLVED:
            publish_transition(session, alert, AlertTransitionKind.RESOLVED, now)
    if transition.kind == StallTransitionKind.CLOSED:
        for other in await alert_store.open_alerts(session, transition.work_point_id):
            if other.id != alert.id:
                close(other, now)
                session.add(other)
                publish_transition(session, other, AlertTransitionKind.RESOLVED, now)
    return alert


@dataclass
class Transitions:
    """Applies stall transitions (steps 1-4 above)."""

    sessions: async_sessionmaker[AsyncSession]
    policies: PolicySet
    calendar: WorkingCalendar
    clock: Clock
    wake_dispatcher: Callable[[], None] = lambda: None
    metrics: ServiceMetrics | None = None
    wake_relay: Callable[[], None] = lambda: None  # the outbox: an alert fired or resolved

    async def apply(self, transition: StallTransition, topic: str) -> None:
        """Apply one transition of `topic` in one transaction, once."""
        now = self.clock.now()
        dropped: Counter[str] = Counter()
        async with self.sessions() as session, session.begin():
            if await session.get(Inbox, transition.event_id) is not None:
                return
            alert = await apply_transition(session, transition, now)
            trace.get_current_span().set_attribute(attr.ALERT_ID, str(alert.id))
            dropped = await self._plan(session, alert, transition)
            await first_delivery(session, Inbox, transition.event_id, topic, now)
        for channel, n in dropped.items():
            count_notifications(self.metrics, channel, "dropped", n)
        self.wake_dispatcher()
        self.wake_relay()

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
                await told(session, alert) or await recipients(session, alert, "lead"),
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

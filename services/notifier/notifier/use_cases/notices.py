"""Supervision notice transitions (topic duban.notices.v1) into deliveries; never sends itself.

Per transition, in one transaction, once (the inbox keys on the event id):
- `issued`: the notice gets an alert of its own (kind notice, state issued) and the lead
  agencies are told at once: the notice's number, the work point and the reply deadline.
- `overdue`: the alert fires; the plan's escalation policy runs its `notice_steps` through the
  same planner and escalator as a stall (by default the coordinating office at once, a reminder
  to the lead, then the office again every 2 working days).
- `replied`, `closed`, `withdrawn`: the alert resolves, deliveries not yet sent are dropped and
  no further step falls due.
Then the dispatcher is woken.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from duban_shared import attributes as attr
from duban_shared.clock import Clock
from duban_shared.events import Level, NoticeTransition, NoticeTransitionKind, StallReason
from duban_shared.inbox import first_delivery
from duban_shared.metrics import ServiceMetrics
from duban_shared.workdays import WorkingCalendar
from opentelemetry import trace
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.domain.alerts import FIRING, ISSUED, NOTICE, RESOLVED
from notifier.domain.delivery import NOTICE_ISSUED
from notifier.domain.policy import PolicySet
from notifier.store import alerts as alert_store
from notifier.store.models import Alert, Inbox
from notifier.use_cases.escalation import advance
from notifier.use_cases.planning import count_notifications, plan, recipients, supersede_pending

ENDING = {
    NoticeTransitionKind.REPLIED: "replied",
    NoticeTransitionKind.CLOSED: "closed",
    NoticeTransitionKind.WITHDRAWN: "withdrawn",
}


async def notice_alert(session: AsyncSession, event: NoticeTransition) -> Alert:
    """The notice's alert (made on the first transition seen; not yet added)."""
    found = await alert_store.alert_of_episode(session, event.notice_id)
    if found is not None:
        return found
    return Alert(
        episode_id=event.notice_id,
        kind=NOTICE,
        work_point_id=event.work_point_id,
        plan_slug=event.plan_slug,
        number=0,
        code=event.work_point_code,
        title=event.work_point_title,
        level=Level.RED.value,
        reasons=[StallReason.OVERDUE.value],
        lead_agencies=[a.model_dump(mode="json") for a in event.lead_agencies],
        co_agencies=[],
        coordinating_agency_id=event.coordinating_agency_id,
        state=ISSUED,
        fired_at=event.occurred_at,
        updated_at=event.occurred_at,
        notice_number=event.number,
        reply_due=event.reply_due,
        note=f"{event.reason}(整改要求:{event.required_action})",
    )


@dataclass
class NoticeTransitions:
    """Applies notice transitions (see the module)."""

    sessions: async_sessionmaker[AsyncSession]
    policies: PolicySet
    calendar: WorkingCalendar
    clock: Clock
    wake_dispatcher: Callable[[], None] = lambda: None
    metrics: ServiceMetrics | None = None

    async def apply(self, event: NoticeTransition, topic: str) -> None:
        """Apply one notice transition of `topic` in one transaction, once."""
        now = self.clock.now()
        dropped: Counter[str] = Counter()
        async with self.sessions() as session, session.begin():
            if await session.get(Inbox, event.event_id) is not None:
                return
            alert = await notice_alert(session, event)
            span = trace.get_current_span()
            span.set_attribute(attr.NOTICE_ID, str(event.notice_id))
            span.set_attribute(attr.NOTICE_STATE, event.kind.value)
            alert.updated_at = now
            if alert.state == RESOLVED:
                pass  # a late transition of a finished notice changes nothing
            elif event.kind == NoticeTransitionKind.ISSUED:
                session.add(alert)
                await session.flush()
                policy = self.policies.for_plan(alert.plan_slug or "")
                await plan(
                    session,
                    alert,
                    await recipients(session, alert, "lead"),
                    occurrence=f"issued@{event.event_id}",
                    event=NOTICE_ISSUED,
                    now=now,
                    group_wait=timedelta(minutes=policy.group_window_minutes),
                )
            elif event.kind == NoticeTransitionKind.OVERDUE:
                alert.state, alert.fired_at = FIRING, event.occurred_at
                session.add(alert)
                await session.flush()
                await advance(session, alert, self.policies, now, self.calendar)
            else:
                alert.state, alert.resolution = RESOLVED, ENDING[event.kind]
                alert.resolved_at, alert.next_step_at = event.occurred_at, None
                dropped = await supersede_pending(session, alert)
            session.add(alert)
            await first_delivery(session, Inbox, event.event_id, topic, now)
        for channel, n in dropped.items():
            count_notifications(self.metrics, channel, "dropped", n)
        self.wake_dispatcher()

"""The notifier's alert transitions (duban.alerts.v1) into progress's `alert_ack` table.

Per event, in one transaction: skip it if the inbox has it; merge it into the alert's row
(`progress.domain.acks.merge`: monotone, so an older event never overwrites a newer state);
record it in the inbox. The circulars count acknowledgement times from these rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from duban_shared.clock import Clock
from duban_shared.events import AlertTransition
from duban_shared.inbox import first_delivery
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.domain.acks import Life, merge
from progress.store import alert_acks as store
from progress.store.models import AlertAck, Inbox


@dataclass
class AlertTransitions:
    """Applies alert transitions, each once."""

    sessions: async_sessionmaker[AsyncSession]
    clock: Clock

    async def apply(self, event: AlertTransition, topic: str) -> bool:
        """Apply one event of `topic` in one transaction; False when it was applied before or
        changed nothing."""
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            if not await first_delivery(session, Inbox, event.event_id, topic, now):
                return False
            row = await store.get(session, event.alert_id)
            merged = merge(row, event_life(event))
            if not merged.changed:
                return False
            if row is None:
                row = AlertAck(
                    alert_id=event.alert_id,
                    plan_slug=event.plan_slug or event.work_point_id.rpartition("/")[0],
                    work_point_id=event.work_point_id,
                    work_point_code=event.work_point_code,
                    lead_agency_ids=[str(a.agency_id) for a in event.lead_agencies],
                    state=merged.state,
                    fired_at=merged.fired_at,
                    updated_at=now,
                )
            if row.acknowledged_at is None and merged.acknowledged_at is not None:
                row.acknowledged_via = event.acknowledged_via
                row.acknowledged_by = event.acknowledged_by
                row.acknowledged_person = event.acknowledged_person
            row.state, row.acknowledged_at, row.resolved_at = (
                merged.state,
                merged.acknowledged_at,
                merged.resolved_at,
            )
            row.updated_at = now
            session.add(row)
        return True


def event_life(event: AlertTransition) -> Life:
    """The lifecycle an event tells."""
    return Life(event.kind.value, event.fired_at, event.acknowledged_at, event.resolved_at)

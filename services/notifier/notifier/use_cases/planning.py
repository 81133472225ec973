"""Planning deliveries inside the transaction that changed an alert (never sending).

A recipient is an agency's first active contact; the others are its fallbacks. The rules (cause
ids, when a row falls due) are `notifier.domain.delivery`'s; this module reads and writes rows.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from duban_shared import attributes as attr
from duban_shared.kafka import current_traceparent
from duban_shared.metrics import ServiceMetrics
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.adapters.channels.base import ErrorCode
from notifier.domain.delivery import (
    NO_CONTACT,
    OFFICE_NAME,
    PENDING,
    SUPERSEDED,
    Recipient,
    agency_recipients,
    cause_id,
    first_due,
)
from notifier.store import contacts as contact_store
from notifier.store import notifications as log_store
from notifier.store.models import Alert, NotificationLog

log = logging.getLogger(__name__)


async def recipients(session: AsyncSession, alert: Alert, notify: str) -> list[Recipient]:
    """The agencies a step notifies: the leads, the co-agencies, or the coordinating office."""
    if notify == "lead":
        return agency_recipients(alert.lead_agencies, "lead")
    if notify == "co":
        return agency_recipients(alert.co_agencies, "co")
    if alert.coordinating_agency_id is None:
        return []
    office = await contact_store.agency(session, alert.coordinating_agency_id)
    name = office.name if office is not None else OFFICE_NAME
    return [Recipient(alert.coordinating_agency_id, name, "office")]


async def plan(
    session: AsyncSession,
    alert: Alert,
    people: Iterable[Recipient],
    *,
    occurrence: str,
    event: str,
    now: datetime,
    group_wait: timedelta,
    skip_contacts: Sequence[int] = (),
) -> int:
    """Plan one step occurrence for each recipient on its first usable contact; return rows.

    A row waits `group_wait` so alerts of the same moment go out together, joining an earlier
    pending row of the same recipient when there is one; an urgent alert does not wait.
    """
    cause = cause_id(alert.id, occurrence)
    planned = 0
    for person in people:
        contact = await contact_store.first_active_contact(session, person.agency_id, skip_contacts)
        channel = contact.channel if contact else "none"
        address = contact.address if contact else f"agency:{person.agency_id}"
        if await log_store.planned(session, cause, channel, address):
            continue
        due = None
        if contact is not None:
            joined = await log_store.pending_due_at(session, contact.id, now)
            due = first_due(now, alert.urgent, group_wait, joined)
        session.add(
            NotificationLog(
                transition_event_id=cause,
                episode_id=alert.episode_id,
                alert_id=alert.id,
                work_point_id=alert.work_point_id,
                agency_id=person.agency_id,
                channel=channel,
                recipient=address,
                contact_id=contact.id if contact else None,
                status=PENDING if contact else NO_CONTACT,
                step=occurrence,
                role=person.role,
                event=event,
                urgent=alert.urgent,
                next_attempt_at=due,
                traceparent=current_traceparent(),
                created_at=now,
            )
        )
        if contact is None:
            log.warning("no usable contact for agency %s (%s)", person.agency_id, person.name)
        planned += 1
    await session.flush()
    return planned


async def supersede_pending(
    session: AsyncSession, alert: Alert, *, whole_work_point: bool = False
) -> Counter[str]:
    """Drop deliveries not yet sent about the alert (or every alert of its work point, for a
    closure): after recovery they would only mislead. Return how many per channel."""
    scope = alert.work_point_id if whole_work_point else None
    dropped: Counter[str] = Counter()
    for row in await log_store.unsent(session, alert.id, scope):
        row.status = SUPERSEDED
        session.add(row)
        dropped[row.channel] += 1
    return dropped


async def told(session: AsyncSession, alert: Alert) -> list[Recipient]:
    """Every agency a message about this alert went to (or is planned to)."""
    names = {
        uuid.UUID(a["agency_id"]): a["name"] for a in [*alert.lead_agencies, *alert.co_agencies]
    }
    seen: dict[uuid.UUID, Recipient] = {}
    for agency_id, role in await log_store.told(session, alert.id):
        seen.setdefault(agency_id, Recipient(agency_id, names.get(agency_id, ""), role))
    return list(seen.values())


def count_notifications(
    metrics: ServiceMetrics | None,
    channel: str,
    outcome: str,
    n: int = 1,
    *,
    error: ErrorCode | None = None,
) -> None:
    """Add to `duban.notifications` (outcome: sent, failed, retried, dropped; `error.type` the
    channel's error code for failed and retried)."""
    if metrics is not None and n:
        attributes = {attr.NOTIFICATION_CHANNEL: channel, attr.OUTCOME: outcome}
        if error is not None:
            attributes[attr.ERROR_TYPE] = error.value
        metrics.notifications.add(n, attributes)

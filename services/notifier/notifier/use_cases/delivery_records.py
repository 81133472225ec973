"""Deliveries sent, told on duban.deliveries.v1 and read back at start-up, so a notifier
restored from a backup does not send again what it sent after the backup.

1. When the dispatcher records a message as sent, `tell_sent` adds one `DeliverySent` per
   delivery it carried to the outbox, in the same transaction; the relay publishes them to
   the compacted topic, keyed by the delivery's key (a digest: no address leaves the
   notifier's database).
2. At start-up, before the dispatcher sends anything, the deliveries topic is read from the
   position the database stored to its end (`notifier.consumers.DeliveryReplay`) and each
   delivery found is kept as a `delivery_record` row (`DeliveryRecords.keep`, idempotent).
3. The dispatcher marks a due row whose key is recorded `sent` instead of sending it
   (`notifier.use_cases.dispatching`), whether the restored database planned it already or
   the consumers plan it again from the transitions they re-read. A circular (通报) is mailed
   the same way: each recipient's mail is told (cause: the circular's event), and a circular
   read again after a restore is not mailed again to whom it was mailed
   (`notifier.use_cases.circulars`).

What remains at least once: a crash after the channel took the message and before step 1's
transaction committed (the row's lease runs out and the message goes again, as before), and a
restore of a database whose outbox rows were not relayed before the system stopped (their
records never reached the topic).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from duban_shared import topics
from duban_shared.events import DeliverySent
from duban_shared.outbox import outbox_row
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.domain.delivery import delivery_key
from notifier.store import deliveries as delivery_store
from notifier.store.models import NotificationLog, OutboxMessage


def sent_record(
    cause: uuid.UUID,
    channel: str,
    recipient: str,
    sent_at: datetime,
    *,
    alert_id: uuid.UUID | None = None,
    message_ref: str | None = None,
    provider_id: str | None = None,
) -> DeliverySent:
    """The record of one delivery sent (no address in it: its key is a digest)."""
    key = delivery_key(cause, channel, recipient)
    return DeliverySent(
        event_id=uuid.UUID(hex=key),
        occurred_at=sent_at,
        delivery_key=key,
        cause_id=cause,
        alert_id=alert_id,
        channel=channel,
        message_ref=message_ref,
        provider_id=provider_id,
    )


def tell(session: AsyncSession, records: Sequence[DeliverySent], now: datetime) -> None:
    """Add the outbox rows telling that these deliveries were sent (step 1)."""
    for record in records:
        session.add(
            outbox_row(
                OutboxMessage, topics.DELIVERIES, record.delivery_key, record.to_bytes(), now
            )
        )


def tell_sent(session: AsyncSession, rows: Sequence[NotificationLog], now: datetime) -> None:
    """Tell that these rows of the notification log were sent (as they are being marked)."""
    tell(
        session,
        [
            sent_record(
                r.transition_event_id,
                r.channel,
                r.recipient,
                now,
                alert_id=r.alert_id,
                message_ref=r.message_ref,
                provider_id=r.provider_id,
            )
            for r in rows
        ],
        now,
    )


class DeliveryRecords:
    """Keeps the deliveries read from the topic as sent (step 2)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def keep(self, events: Sequence[DeliverySent]) -> int:
        """Keep these deliveries as sent, in one transaction; return how many were given."""
        if not events:
            return 0
        async with self.sessions() as session, session.begin():
            return await delivery_store.keep(session, events)

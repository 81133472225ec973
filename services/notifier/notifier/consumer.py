"""Turns stall transitions into emails to the lead agencies, each sent at most once.

Per transition:
1. Skip it if the inbox says it was handled.
2. Plan the deliveries: one notification-log row per (transition, channel, recipient), or a
   `no_contact` row for a lead agency without an address (operators see who was not told).
3. Send each row not yet `sent` (a `sending` row means the server's answer was lost: send again),
   recording attempts; a permanent refusal marks the row `failed`; a transient failure raises so
   the batch is retried from Kafka later.
4. Record the transition in the inbox.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiokafka import ConsumerRecord
from duban_shared.clock import Clock
from duban_shared.events import StallTransition
from duban_shared.inbox import first_delivery
from duban_shared.kafka import process_span
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.alerts import RESOLVED, AckLinks, apply_transition
from notifier.mailer import DeliveryError, SmtpMailer
from notifier.messages import stall_email
from notifier.models import Alert, Contact, Inbox, NotificationLog

log = logging.getLogger(__name__)

EMAIL = "email"


@dataclass
class StallConsumer:
    """Handles batches of the stall topic."""

    sessions: async_sessionmaker[AsyncSession]
    mailer: SmtpMailer
    tracer: Tracer
    clock: Clock
    ack_links: AckLinks

    async def handle_batch(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Handle records in order; a transient delivery failure fails the whole batch."""
        for record in records:
            with process_span(self.tracer, record) as span:
                try:
                    transition = StallTransition.model_validate_json(record.value or b"")
                except ValidationError:
                    span.set_status(Status(StatusCode.ERROR, "invalid_transition"))
                    log.exception(
                        "unreadable stall transition %s:%s skipped", record.partition, record.offset
                    )
                    continue
                span.set_attribute("duban.work_point.id", transition.work_point_id)
                if transition.reason is not None:
                    span.set_attribute("duban.stall.reason", transition.reason.value)
                span.set_attribute("duban.stall.transition", transition.kind.value)
                span.set_attribute("duban.stall.level", transition.level.value)
                await self.handle(transition, record.topic)

    async def handle(self, transition: StallTransition, topic: str) -> None:
        """Deliver one transition's emails (steps 1-4 above)."""
        async with self.sessions() as session, session.begin():
            if await session.get(Inbox, transition.event_id) is not None:
                return
            alert = await apply_transition(session, transition, self.clock.now())
            await self._plan(session, transition, alert)
        async with self.sessions() as session:
            rows = (
                await session.exec(
                    select(NotificationLog)
                    .where(
                        NotificationLog.transition_event_id == transition.event_id,
                        col(NotificationLog.status).in_(["pending", "sending"]),
                    )
                    .order_by(col(NotificationLog.id))
                )
            ).all()
            for row in rows:
                await self._deliver(session, row, transition)
        async with self.sessions() as session, session.begin():
            await first_delivery(session, Inbox, transition.event_id, topic, self.clock.now())

    async def _plan(
        self, session: AsyncSession, transition: StallTransition, alert: Alert | None
    ) -> None:
        existing = (
            await session.exec(
                select(NotificationLog).where(
                    NotificationLog.transition_event_id == transition.event_id
                )
            )
        ).first()
        if existing is not None:
            return  # planned before a crash; deliver what is left
        now = self.clock.now()
        for agency in transition.lead_agencies:
            contacts = (
                await session.exec(
                    select(Contact)
                    .where(Contact.agency_id == agency.agency_id, Contact.channel == EMAIL)
                    .order_by(col(Contact.id))
                )
            ).all()
            targets: list[str | None] = [c.address for c in contacts] or [None]
            for address in targets:
                session.add(
                    NotificationLog(
                        transition_event_id=transition.event_id,
                        # A closure without an open episode is its own one-message episode.
                        episode_id=transition.episode_id or transition.event_id,
                        alert_id=alert.id if alert else None,
                        work_point_id=transition.work_point_id,
                        agency_id=agency.agency_id,
                        channel=EMAIL,
                        recipient=address or f"agency:{agency.agency_id}",
                        status="pending" if address else "no_contact",
                        created_at=now,
                    )
                )
                if address is None:
                    log.warning(
                        "no email contact for agency %s (%s)", agency.agency_id, agency.name
                    )

    async def _deliver(
        self, session: AsyncSession, row: NotificationLog, transition: StallTransition
    ) -> None:
        agency_name = next(
            (a.name for a in transition.lead_agencies if a.agency_id == row.agency_id), ""
        )
        alert = await session.get(Alert, row.alert_id) if row.alert_id else None
        ack_url = None
        if alert is not None and alert.state != RESOLVED:
            ack_url = self.ack_links.url(alert.id, row.agency_id, self.clock.now())
        subject, body = stall_email(transition, agency_name, ack_url)
        row.status = "sending"
        row.attempts += 1
        session.add(row)
        await session.commit()
        with self.tracer.start_as_current_span(
            "smtp send",
            kind=SpanKind.CLIENT,
            attributes={
                "duban.agency.id": str(row.agency_id),
                "duban.notification.channel": EMAIL,
                "duban.notification.id": row.id or 0,
            },
        ) as span:
            try:
                await self.mailer.send(row.recipient, subject, body)
            except DeliveryError as exc:
                span.set_status(
                    Status(StatusCode.ERROR, "permanent" if exc.permanent else "transient")
                )
                row.last_error = str(exc)[:1000]
                if exc.permanent:
                    row.status = "failed"
                session.add(row)
                await session.commit()
                if not exc.permanent:
                    raise
                return
        row.status = "sent"
        row.sent_at = self.clock.now()
        session.add(row)
        await session.commit()

"""Mail a published circular (通报) to the configured list, its .docx and .xlsx attached.

1. Skip it if the inbox says it was mailed (a redelivery sends nothing), and skip the
   recipients the deliveries topic says it was mailed to (a database restored from a backup
   taken before it was mailed; `notifier.use_cases.delivery_records`).
2. Send one message per recipient; its Message-ID is made from the circular and the
   recipient, so a message sent again after a crash between the send and step 3 is the same
   message to the recipient's mail system.
3. Record the event in the inbox, and tell the deliveries topic whom it was mailed to
   (through the outbox, in the same transaction).

An SMTP outage (or a refused login) is raised as a ConnectionError: the consumer retries the
record until the server answers. A recipient the server refuses for good is logged and
counted, and the others still get the circular.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from dataclasses import dataclass
from typing import Protocol

from duban_shared import attributes as attr
from duban_shared.clock import Clock
from duban_shared.events import CircularPublished
from duban_shared.inbox import first_delivery
from duban_shared.metrics import ServiceMetrics
from opentelemetry.trace import Tracer
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.adapters.mailer import Attachment, DeliveryError, Verdict
from notifier.domain.contacts import mask
from notifier.domain.delivery import delivery_key
from notifier.store import deliveries as delivery_store
from notifier.store.models import Inbox
from notifier.use_cases.delivery_records import sent_record, tell

log = logging.getLogger(__name__)

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class Mailer(Protocol):
    """Sends one email (notifier.adapters.mailer.SmtpMailer)."""

    async def send(
        self,
        to: str,
        subject: str,
        body: str,
        *,
        reference: str | None = None,
        attachments: tuple[Attachment, ...] = (),
    ) -> str: ...


def body_of(event: CircularPublished) -> str:
    """The message's text."""
    kind = "周" if event.kind == "weekly" else "月"
    return (
        f"各位领导：\n\n{event.title}（{event.number}，通报期{event.period}"
        f"{'' if event.version == 1 else f'，第{event.version}版'}）已印发，"
        f"正文（Word）和明细（Excel）见附件。\n\n这是督办系统按{kind}生成的通报，请勿直接回复。\n"
    )


@dataclass
class CircularMail:
    """Mails circulars to the configured recipients."""

    sessions: async_sessionmaker[AsyncSession]
    mailer: Mailer
    recipients: list[str]
    clock: Clock
    tracer: Tracer
    metrics: ServiceMetrics

    async def apply(self, event: CircularPublished, topic: str) -> int:
        """Mail one circular unless it was mailed before; return the messages sent."""
        keys = {a: delivery_key(event.event_id, "email", a) for a in self.recipients}
        async with self.sessions() as session:
            if await session.get(Inbox, event.event_id) is not None:
                return 0
            recorded = await delivery_store.recorded(session, keys.values())
        told = []
        attachments = (
            Attachment(f"{event.number}.docx", base64.b64decode(event.docx_base64), DOCX),
            Attachment(f"{event.number}.xlsx", base64.b64decode(event.xlsx_base64), XLSX),
        )
        subject = f"【通报】{event.number} {event.title}"
        sent = 0
        with self.tracer.start_as_current_span(
            "mail circular",
            attributes={
                attr.CIRCULAR_ID: str(event.circular_id),
                attr.PLAN_SLUG: event.plan_slug,
                attr.CIRCULAR_KIND: event.kind,
            },
        ) as span:
            for address in self.recipients:
                if keys[address] in recorded:
                    continue  # mailed before a restore: the deliveries topic says so
                reference = (
                    "circular-"
                    + hashlib.sha256(f"{event.circular_id}:{address}".encode()).hexdigest()[:32]
                )
                try:
                    await self.mailer.send(
                        address,
                        subject,
                        body_of(event),
                        reference=reference,
                        attachments=attachments,
                    )
                except DeliveryError as exc:
                    if exc.verdict is Verdict.BAD_RECIPIENT:
                        log.warning(
                            "circular %s not mailed to %s: %s",
                            event.number,
                            mask("email", address),
                            exc.reply,
                        )
                        self._count("failed")
                        continue
                    raise ConnectionError(f"circular mail: {exc}") from exc
                sent += 1
                self._count("sent")
                told.append(
                    sent_record(
                        event.event_id, "email", address, self.clock.now(), message_ref=reference
                    )
                )
            span.set_attribute(attr.NOTIFICATION_ROWS, sent)
        async with self.sessions() as session, session.begin():
            await first_delivery(session, Inbox, event.event_id, topic, self.clock.now())
            tell(session, told, self.clock.now())
        log.info("circular %s mailed to %d recipient(s)", event.number, sent)
        return sent

    def _count(self, outcome: str) -> None:
        self.metrics.circulars.add(1, {attr.NOTIFICATION_CHANNEL: "email", attr.OUTCOME: outcome})

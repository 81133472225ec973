"""Sending planned deliveries: the dispatcher, a timer woken after commits.

It claims due rows with FOR UPDATE SKIP LOCKED, so replicas side by side never take the same
row, and per recipient:
1. holds SMS and WeCom outside working hours unless an alert is urgent (`held` until the
   window opens);
2. waits out the per-recipient rate limit;
3. marks the rows `sending` with a lease and commits, then renders one message for all of them
   (a digest when there are several alerts) and sends it outside any transaction;
4. marks them `sent`, telling the deliveries topic through the outbox in the same
   transaction (`notifier.use_cases.delivery_records`); on a transient error schedules a
   retry with exponential backoff and jitter; on a permanent error (or too many attempts)
   marks them `failed` and plans the same step on the agency's next active contact. Only
   `invalid_recipient` (the provider refused the address itself, e.g. SMTP 550 5.1.1) marks
   the contact `failed`: a provider's own fault or a refused login says nothing about the
   address (see `notifier.adapters.mailer.classify`).
A due row the deliveries topic says was sent (a restored database did not know) is marked
`sent` at the claim and not sent again. A row whose lease ran out while `sending` (the process
died mid-send, or the provider's answer was lost) is due again: that is the one case where a
message may go out twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from duban_shared import attributes as attr
from duban_shared.clock import Clock, domain_span
from duban_shared.events import Level, StallReason
from duban_shared.kafka import link_to
from duban_shared.metrics import ServiceMetrics
from duban_shared.ratelimit import RateLimiter
from duban_shared.runtime import run_periodically
from duban_shared.workdays import WorkingCalendar
from opentelemetry.propagate import extract
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.adapters.channels.base import (
    Channel,
    ChannelError,
    ErrorCode,
    OutgoingMessage,
    Receipt,
)
from notifier.adapters.notice_render import NoticeView, render_notices
from notifier.adapters.render import AlertView, Rendered, render
from notifier.domain.alerts import ACKNOWLEDGED, NOTICE, RESOLVED, STALL
from notifier.domain.contacts import mask
from notifier.domain.delivery import (
    FAILED,
    HELD,
    PENDING,
    SENDING,
    SENT,
    Backoff,
    Recipient,
    delivery_key,
    held_until,
    message_reference,
    note_author,
)
from notifier.domain.policy import EscalationPolicy, PolicySet
from notifier.store import alerts as alert_store
from notifier.store import contacts as contact_store
from notifier.store import deliveries as delivery_store
from notifier.store import notifications as log_store
from notifier.store.models import Alert, NotificationLog
from notifier.use_cases.ack_links import AckLinks
from notifier.use_cases.delivery_records import tell_sent
from notifier.use_cases.planning import count_notifications, plan

log = logging.getLogger(__name__)

ADDRESS_ERRORS = frozenset({ErrorCode.INVALID_RECIPIENT})
"""Refusals that condemn the address itself (the contact is marked failed)."""


@dataclass(frozen=True)
class DispatchOptions:
    """How the dispatcher claims and retries (the settings' numbers)."""

    skip_locked: bool  # FOR UPDATE SKIP LOCKED; SQLite has no row locks
    batch_size: int = 200
    lease: timedelta = timedelta(minutes=5)  # real seconds a send may take before it is due again
    backoff: Backoff = field(default_factory=Backoff)
    max_sms_segments: int = 2


@dataclass
class _Group:
    """Due rows of one recipient (one channel and address)."""

    channel: str
    recipient: str
    rows: list[NotificationLog]


def reference(rows: Sequence[NotificationLog]) -> str:
    """Our id of the message for these rows (see `notifier.domain.delivery.message_reference`)."""
    return message_reference((r.transition_event_id, r.channel, r.recipient) for r in rows)


@dataclass
class Dispatcher:
    """Sends due deliveries, one message per recipient; run dispatch_once() from a timer."""

    sessions: async_sessionmaker[AsyncSession]
    channels: dict[str, Channel]
    policies: PolicySet
    calendar: WorkingCalendar
    clock: Clock
    tracer: Tracer
    ack_links: AckLinks
    options: DispatchOptions
    limiter: RateLimiter | None = None  # per recipient
    metrics: ServiceMetrics | None = None
    rng: random.Random = field(default_factory=random.Random)  # jitter, not secrets
    wake_relay: Callable[[], None] | None = None  # the outbox relay (records of sends)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)

    def wake(self) -> None:
        """Look at the table now instead of at the next tick."""
        self._wake.set()

    async def run(self, stop: asyncio.Event, interval_seconds: float) -> None:
        """Dispatch on every tick or wake-up until stopped; failures are logged and retried."""
        await run_periodically(
            self.dispatch_once, stop, interval_seconds, name="dispatch", wake=self._wake, log=log
        )

    async def dispatch_once(self) -> int:
        """Send every due message (fallbacks planned on the way included); return how many
        messages went out."""
        sent = 0
        while True:
            groups, claimed = await self._claim()
            if not claimed:
                return sent
            for group in groups:
                if await self._send(group):
                    sent += 1

    async def _claim(self) -> tuple[list[_Group], int]:
        """Claim due rows: hold or delay those that must wait, lease the others for sending."""
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            rows = await log_store.due(
                session, now, self.options.batch_size, skip_locked=self.options.skip_locked
            )
            claimed = len(rows)
            rows = await self._drop_recorded(session, rows)
            alerts = await alert_store.alerts_by_id(
                session, {r.alert_id for r in rows if r.alert_id}
            )
            # Messages about supervision notices go apart from stall digests.
            by_recipient: dict[tuple[str, str, str], list[NotificationLog]] = defaultdict(list)
            for row in rows:
                found = alerts.get(row.alert_id) if row.alert_id else None
                kind = found.kind if found is not None else STALL
                by_recipient[(row.channel, row.recipient, kind)].append(row)
            ready = []
            for (channel, recipient, _), group_rows in by_recipient.items():
                mine = [alerts[r.alert_id] for r in group_rows if r.alert_id in alerts]
                wait_until = self._wait(channel, recipient, mine, now)
                for row in group_rows:
                    if wait_until is not None:
                        row.status = HELD if wait_until[1] else PENDING
                        row.next_attempt_at = wait_until[0]
                    else:
                        # The lease is real seconds, stored on the domain clock's scale.
                        lease_until = now + domain_span(self.clock, self.options.lease)
                        row.status, row.lease_until = SENDING, lease_until
                        row.next_attempt_at = lease_until  # due again if we die
                        row.attempts += 1
                    session.add(row)
                if wait_until is None:
                    ready.append(_Group(channel, recipient, group_rows))
        return ready, claimed

    async def _drop_recorded(
        self, session: AsyncSession, rows: list[NotificationLog]
    ) -> list[NotificationLog]:
        """Mark `sent` the rows the deliveries topic says were sent (a restored database did not
        know); return the others, still to send."""
        keys = {r.id: delivery_key(r.transition_event_id, r.channel, r.recipient) for r in rows}
        records = await delivery_store.recorded(session, keys.values())
        if not records:
            return rows
        still = []
        for row in rows:
            record = records.get(keys[row.id])
            if record is None:
                still.append(row)
                continue
            row.status, row.sent_at, row.lease_until = SENT, record.sent_at, None
            row.next_attempt_at = None
            row.provider_id, row.message_ref = record.provider_id, record.message_ref
            session.add(row)
            log.info(
                "delivery over %s recorded as sent on the deliveries topic; not sending it again",
                row.channel,
                extra={"channel": row.channel, "alert_id": str(row.alert_id or "")},
            )
        return still

    def _wait(
        self, channel: str, recipient: str, alerts: list[Alert], now: datetime
    ) -> tuple[datetime, bool] | None:
        """When a message must wait: (until, held for quiet hours), or None to send now."""
        urgent = any(a.urgent for a in alerts)
        held = held_until(self._policy(alerts), channel, urgent, now, self.calendar)
        if held is not None:
            return held, True
        if self.limiter is not None:
            seconds = self.limiter.acquire(f"{channel}:{recipient}")
            if seconds:
                return now + domain_span(self.clock, timedelta(seconds=seconds)), False
        return None

    def _policy(self, alerts: Sequence[Alert]) -> EscalationPolicy:
        slug = next((a.plan_slug for a in alerts if a.plan_slug), None)
        return self.policies.for_plan(slug or "")

    async def _send(self, group: _Group) -> bool:
        """Render and send one message for a group; record the outcome on every row."""
        async with self.sessions() as session, session.begin():
            alerts: dict[uuid.UUID, Alert] = {}
            for row in group.rows:
                if row.alert_id and row.alert_id not in alerts:
                    found = await alert_store.alert(session, row.alert_id)
                    if found is not None:
                        alerts[row.alert_id] = found
            agency = await contact_store.agency(session, group.rows[0].agency_id)
            message = await self._message(session, group, alerts, agency.name if agency else "")
        receipt = await self._deliver(group, message)
        if receipt is None:
            return False
        await self._sent(group, message, receipt)
        return True

    async def _deliver(self, group: _Group, message: OutgoingMessage) -> Receipt | None:
        """Hand the message to its channel in a client span continuing the planning trace;
        a refusal is recorded in that span (None)."""
        first = group.rows[0]
        parent = extract({"traceparent": first.traceparent}) if first.traceparent else None
        links = [link for r in group.rows[1:] for link in link_to(r.traceparent)]
        channel = self.channels.get(group.channel)
        with self.tracer.start_as_current_span(
            f"{group.channel} send",
            context=parent,
            kind=SpanKind.CLIENT,
            links=links,
            attributes={
                attr.AGENCY_ID: str(first.agency_id),
                attr.ALERT_ID: str(first.alert_id) if first.alert_id else "",
                attr.WORK_POINT_ID: first.work_point_id,
                attr.NOTIFICATION_CHANNEL: group.channel,
                attr.NOTIFICATION_RECIPIENT: mask(group.channel, group.recipient),
                attr.NOTIFICATION_ROWS: len(group.rows),
            },
        ) as span:
            try:
                if channel is None:
                    raise ChannelError(
                        f"channel {group.channel} is not configured",
                        code=ErrorCode.INVALID_REQUEST,
                        channel=group.channel,
                    )
                receipt = await channel.send(message)
            except ChannelError as exc:
                span.set_status(Status(StatusCode.ERROR, exc.code.value))
                await self._failed(group, exc)
                return None
            log.info(
                "message sent to %s over %s (%d deliveries)",
                mask(group.channel, group.recipient),
                group.channel,
                len(group.rows),
                extra={"channel": group.channel, "alert_id": str(first.alert_id or "")},
            )
        return receipt

    async def _sent(self, group: _Group, message: OutgoingMessage, receipt: Receipt) -> None:
        """Record a sent message on its rows; each planned delivery it carried took its time."""
        now = self.clock.now()
        sent_rows: list[NotificationLog] = []
        async with self.sessions() as session, session.begin():
            for row in group.rows:
                stored = await log_store.row(session, row.id)
                if stored is None:
                    continue
                stored.status, stored.sent_at, stored.lease_until = SENT, now, None
                stored.next_attempt_at = None
                stored.provider_id = receipt.provider_id
                stored.message_ref = message.reference
                session.add(stored)
                sent_rows.append(stored)
            tell_sent(session, sent_rows, now)
        if self.wake_relay is not None:
            self.wake_relay()
        count_notifications(self.metrics, group.channel, SENT)
        if self.metrics is None:
            return
        for row in group.rows:
            self.metrics.notification_delivery_duration.record(
                max((now - row.created_at).total_seconds(), 0.0),
                {attr.NOTIFICATION_CHANNEL: group.channel},
            )

    async def _message(
        self,
        session: AsyncSession,
        group: _Group,
        alerts: dict[uuid.UUID, Alert],
        agency_name: str,
    ) -> OutgoingMessage:
        """Render one message for the group, with a fresh acknowledgement link per alert."""
        now = self.clock.now()
        notices = [
            _notice_view(alert, row.event)
            for row in group.rows
            if (alert := alerts.get(row.alert_id) if row.alert_id else None) is not None
            and alert.kind == NOTICE
        ]
        if notices:
            rendered = render_notices(
                notices,
                recipient_name=agency_name,
                role=group.rows[0].role,
                max_sms_segments=self.options.max_sms_segments,
            )
            return self._outgoing(group, rendered)
        views = []
        for row in group.rows:
            alert = alerts.get(row.alert_id) if row.alert_id else None
            if alert is None:
                continue
            ack = None
            if alert.state != RESOLVED and alert.state != ACKNOWLEDGED:
                ack = await self.ack_links.issue(session, alert.id, row.agency_id, now)
            views.append(_view(alert, row.event, ack))
        rendered = render(
            views,
            recipient_name=agency_name,
            role=group.rows[0].role,
            max_sms_segments=self.options.max_sms_segments,
            now=now,
        )
        return self._outgoing(group, rendered)

    def _outgoing(self, group: _Group, rendered: Rendered) -> OutgoingMessage:
        """The rendered message in the form the group's channel takes."""
        text = {"sms": rendered.sms, "wecom": rendered.markdown}.get(group.channel, rendered.text)
        return OutgoingMessage(
            recipient=group.recipient,
            # The WeCom markdown carries its own heading; the robot would repeat a subject.
            subject="" if group.channel == "wecom" else rendered.subject,
            text=text,
            reference=reference(group.rows),
        )

    async def _failed(self, group: _Group, error: ChannelError) -> None:
        """Retry later, or give up: mark the rows failed and plan the next contact."""
        now = self.clock.now()
        backoff = self.options.backoff
        give_up = error.permanent or any(r.attempts >= backoff.max_attempts for r in group.rows)
        log.warning(
            "delivery to %s over %s failed (%s, attempt %d)%s",
            mask(group.channel, group.recipient),
            group.channel,
            error.code.value,
            max(r.attempts for r in group.rows),
            "; falling back" if give_up else "; will retry",
        )
        count_notifications(
            self.metrics, group.channel, FAILED if give_up else "retried", error=error.code
        )
        async with self.sessions() as session, session.begin():
            contact_id = group.rows[0].contact_id
            if give_up and error.code in ADDRESS_ERRORS and contact_id is not None:
                reason = f"{error.code.value}: {error.message}"
                await contact_store.mark_failed(session, contact_id, reason, now)
            for row in group.rows:
                stored = await log_store.row(session, row.id)
                if stored is None:
                    continue
                stored.last_error = str(error)[:1000]
                stored.error_code = error.code.value
                stored.lease_until = None
                if not give_up:
                    wait = backoff.delay(stored.attempts, self.rng)
                    if error.retry_after:
                        wait = max(wait, timedelta(seconds=error.retry_after))
                    stored.status = PENDING
                    stored.next_attempt_at = now + domain_span(self.clock, wait)
                    session.add(stored)
                    continue
                stored.status, stored.next_attempt_at = FAILED, None
                session.add(stored)
                await self._fall_back(session, stored, now)

    async def _fall_back(self, session: AsyncSession, row: NotificationLog, now: datetime) -> None:
        """Plan a failed row's step again on the agency's next contact not yet tried."""
        alert = await alert_store.alert(session, row.alert_id) if row.alert_id else None
        if alert is None:
            return
        await plan(
            session,
            alert,
            [Recipient(row.agency_id, "", row.role)],
            occurrence=row.step,
            event=row.event,
            now=now,
            group_wait=timedelta(0),
            skip_contacts=await log_store.tried_contacts(session, row.transition_event_id),
        )


def _notice_view(alert: Alert, event: str) -> NoticeView:
    return NoticeView(
        number=alert.notice_number or "",
        code=alert.code,
        title=alert.title,
        event=event,
        reply_due=alert.reply_due or alert.fired_at,
        reason=alert.note,
        lead_agencies=tuple(a["name"] for a in alert.lead_agencies),
    )


def _view(alert: Alert, event: str, ack_url: str | None) -> AlertView:
    return AlertView(
        work_point_id=alert.work_point_id,
        number=alert.number,
        title=alert.title,
        level=Level(alert.level),
        previous_level=Level(alert.previous_level) if alert.previous_level else None,
        reasons=tuple(StallReason(r) for r in alert.reasons),
        event=event,
        silent_working_days=alert.silent_working_days,
        note=alert.note,
        lead_agencies=tuple(a["name"] for a in alert.lead_agencies),
        fired_at=alert.fired_at,
        ack_url=ack_url,
        note_author=note_author(alert.lead_agencies, alert.co_agencies),
    )

"""From alerts to messages: planning deliveries, and the dispatcher that sends them.

Planning (in the transaction that changed the alert) writes one `notification_log` row per
(alert, step occurrence, channel, recipient); its `transition_event_id` is the cause id, a
uuid5 of the alert and the step occurrence, so the table's unique constraint is the promise of
at most one send per (alert, step, channel, recipient). A recipient is an agency's first active
contact; the others are its fallbacks.

The dispatcher (a timer, woken after commits) claims due rows with FOR UPDATE SKIP LOCKED, so
replicas side by side never take the same row, and per recipient:
1. holds SMS and WeCom outside working hours unless an alert is urgent (`held` until the
   window opens);
2. waits out the per-recipient rate limit;
3. marks the rows `sending` with a lease and commits, then renders one message for all of them
   (a digest when there are several alerts) and sends it outside any transaction;
4. marks them `sent`; on a transient error schedules a retry with exponential backoff and
   jitter; on a permanent error (or too many attempts) marks them `failed` and plans the same
   step on the agency's next active contact. Only `invalid_recipient` (the provider refused the
   address itself, e.g. SMTP 550 5.1.1) marks the contact `failed`: a provider's own fault or a
   refused login says nothing about the address (see `notifier.mailer.classify`).
A row whose lease ran out while `sending` (the process died mid-send, or the provider's answer
was lost) is due again: that is the one case where a message may go out twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from duban_shared import attributes as attr
from duban_shared.clock import Clock, domain_span
from duban_shared.events import Level, StallReason
from duban_shared.kafka import current_traceparent, link_to
from duban_shared.metrics import ServiceMetrics
from duban_shared.ratelimit import RateLimiter
from duban_shared.runtime import run_periodically
from duban_shared.workdays import WorkingCalendar
from opentelemetry.propagate import extract
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.alerts import ACKNOWLEDGED, RESOLVED, AckLinks
from notifier.channels.base import Channel, ChannelError, ErrorCode, OutgoingMessage
from notifier.contacts import mask
from notifier.models import AgencyView, Alert, Contact, NotificationLog
from notifier.policy import EscalationPolicy, PolicySet
from notifier.render import AlertView, render
from notifier.workhours import is_open, next_open

log = logging.getLogger(__name__)

PENDING, HELD, SENDING, SENT, FAILED = "pending", "held", "sending", "sent", "failed"
SUPERSEDED, NO_CONTACT = "superseded", "no_contact"
ADDRESS_ERRORS = frozenset({ErrorCode.INVALID_RECIPIENT})
"""Refusals that condemn the address itself (the contact is marked failed)."""


def cause_id(alert_id: uuid.UUID, occurrence: str) -> uuid.UUID:
    """The id of one step occurrence of one alert: stable, so replays plan nothing twice."""
    return uuid.uuid5(alert_id, occurrence)


@dataclass(frozen=True)
class Recipient:
    """An agency to tell, and how it relates to the alert."""

    agency_id: uuid.UUID
    name: str
    role: str  # lead, co, office


async def recipients(session: AsyncSession, alert: Alert, notify: str) -> list[Recipient]:
    """The agencies a step notifies: the leads, the co-agencies, or the coordinating office."""
    if notify == "lead":
        return [
            Recipient(uuid.UUID(a["agency_id"]), a["name"], "lead") for a in alert.lead_agencies
        ]
    if notify == "co":
        return [Recipient(uuid.UUID(a["agency_id"]), a["name"], "co") for a in alert.co_agencies]
    if alert.coordinating_agency_id is None:
        return []
    office = await session.get(AgencyView, alert.coordinating_agency_id)
    name = office.name if office is not None else "督办协调部门"
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
        contact = await _first_contact(session, person.agency_id, skip_contacts)
        channel = contact.channel if contact else "none"
        address = contact.address if contact else f"agency:{person.agency_id}"
        exists = (
            await session.exec(
                select(NotificationLog.id).where(
                    NotificationLog.transition_event_id == cause,
                    NotificationLog.channel == channel,
                    NotificationLog.recipient == address,
                )
            )
        ).first()
        if exists is not None:
            continue
        due = now if alert.urgent else now + group_wait
        if contact is not None:
            joined = (
                await session.exec(
                    select(NotificationLog.next_attempt_at).where(
                        NotificationLog.contact_id == contact.id,
                        NotificationLog.status == PENDING,
                        col(NotificationLog.next_attempt_at) > now,
                    )
                )
            ).first()
            if joined is not None and joined < due:
                due = joined
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
                next_attempt_at=due if contact else None,
                traceparent=current_traceparent(),
                created_at=now,
            )
        )
        if contact is None:
            log.warning("no usable contact for agency %s (%s)", person.agency_id, person.name)
        planned += 1
    await session.flush()
    return planned


async def _first_contact(
    session: AsyncSession, agency_id: uuid.UUID, skip: Sequence[int]
) -> Contact | None:
    query = (
        select(Contact)
        .where(Contact.agency_id == agency_id, Contact.status == "active")
        .order_by(col(Contact.position), col(Contact.id))
    )
    for contact in (await session.exec(query)).all():
        if contact.id not in skip:
            return contact
    return None


async def supersede_pending(
    session: AsyncSession, alert: Alert, *, whole_work_point: bool = False
) -> Counter[str]:
    """Drop deliveries not yet sent about the alert (or every alert of its work point, for a
    closure): after recovery they would only mislead. Return how many per channel."""
    scope = (
        NotificationLog.work_point_id == alert.work_point_id
        if whole_work_point
        else NotificationLog.alert_id == alert.id
    )
    rows = await session.exec(
        select(NotificationLog).where(
            scope,
            col(NotificationLog.status).in_([PENDING, HELD]),
            col(NotificationLog.event).not_in(["recovered", "closed"]),
        )
    )
    dropped: Counter[str] = Counter()
    for row in rows.all():
        row.status = SUPERSEDED
        session.add(row)
        dropped[row.channel] += 1
    return dropped


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


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: base * 2^(n-1), capped; half fixed, half random."""

    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)
    max_attempts: int = 8

    def delay(self, attempts: int, rng: random.Random) -> timedelta:
        """The wait before attempt `attempts + 1`."""
        full = min(self.cap, self.base * (1 << max(attempts - 1, 0)))
        return full / 2 + full / 2 * rng.random()


def _reference(rows: Sequence[NotificationLog]) -> str:
    """Our id of the message for these rows, the same each time they are sent: an email's
    Message-ID and an SMS gateway's caller id are made from it, so a message sent again (after
    a retry, or a lease that ran out when a process died mid-send) is recognised as the same
    one by the receiving side."""
    key = ",".join(sorted(f"{row.id}:{row.transition_event_id}" for row in rows))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass
class _Group:
    """Due rows of one recipient (one channel and address)."""

    channel: str
    recipient: str
    rows: list[NotificationLog]


class Dispatcher:
    """Sends due deliveries, one message per recipient; run dispatch_once() from a timer."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        channels: dict[str, Channel],
        policies: PolicySet,
        calendar: WorkingCalendar,
        clock: Clock,
        tracer: Tracer,
        ack_links: AckLinks,
        *,
        skip_locked: bool,
        batch_size: int = 200,
        lease: timedelta = timedelta(minutes=5),
        backoff: Backoff = Backoff(),
        recipient_limiter: RateLimiter | None = None,
        rng: random.Random | None = None,
        max_sms_segments: int = 2,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self._sessions = sessions
        self._metrics = metrics
        self._channels = channels
        self._policies = policies
        self._calendar = calendar
        self._clock = clock
        self._tracer = tracer
        self._ack_links = ack_links
        self._skip_locked = skip_locked
        self._batch_size = batch_size
        self._lease = lease
        self._backoff = backoff
        self._limiter = recipient_limiter
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not secrets)
        self._max_sms_segments = max_sms_segments
        self._wake = asyncio.Event()

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
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            query = (
                select(NotificationLog)
                .where(
                    col(NotificationLog.status).in_([PENDING, HELD, SENDING]),
                    col(NotificationLog.next_attempt_at) <= now,
                )
                .order_by(col(NotificationLog.next_attempt_at))
                .limit(self._batch_size)
            )
            if self._skip_locked:
                query = query.with_for_update(skip_locked=True)
            rows = list((await session.exec(query)).all())
            by_recipient: dict[tuple[str, str], list[NotificationLog]] = defaultdict(list)
            for row in rows:
                by_recipient[(row.channel, row.recipient)].append(row)
            ids = {r.alert_id for r in rows if r.alert_id}
            alerts = {
                a.id: a
                for a in (await session.exec(select(Alert).where(col(Alert.id).in_(ids)))).all()
            }
            ready = []
            for (channel, recipient), group_rows in by_recipient.items():
                mine = [alerts[r.alert_id] for r in group_rows if r.alert_id in alerts]
                wait_until = self._wait(channel, recipient, mine, now)
                for row in group_rows:
                    if wait_until is not None:
                        row.status = HELD if wait_until[1] else PENDING
                        row.next_attempt_at = wait_until[0]
                    else:
                        # The lease is real seconds, stored on the domain clock's scale.
                        lease_until = now + domain_span(self._clock, self._lease)
                        row.status, row.lease_until = SENDING, lease_until
                        row.next_attempt_at = lease_until  # due again if we die
                        row.attempts += 1
                    session.add(row)
                if wait_until is None:
                    ready.append(_Group(channel, recipient, group_rows))
        return ready, len(rows)

    def _wait(
        self, channel: str, recipient: str, alerts: list[Alert], now: datetime
    ) -> tuple[datetime, bool] | None:
        """When a message must wait: (until, held for quiet hours), or None to send now."""
        policy = self._policy(alerts)
        urgent = any(a.urgent for a in alerts)
        hours = policy.hours
        if (
            channel in policy.quiet_channels
            and not urgent
            and not is_open(now, hours, self._calendar)
        ):
            return next_open(now, hours, self._calendar), True
        if self._limiter is not None:
            seconds = self._limiter.acquire(f"{channel}:{recipient}")
            if seconds:
                return now + domain_span(self._clock, timedelta(seconds=seconds)), False
        return None

    def _policy(self, alerts: Sequence[Alert]) -> EscalationPolicy:
        slug = next((a.plan_slug for a in alerts if a.plan_slug), None)
        return self._policies.for_plan(slug or "")

    async def _send(self, group: _Group) -> bool:
        """Render and send one message for a group; record the outcome on every row."""
        async with self._sessions() as session, session.begin():
            alerts = {}
            for row in group.rows:
                if row.alert_id and row.alert_id not in alerts:
                    alert = await session.get(Alert, row.alert_id)
                    if alert is not None:
                        alerts[row.alert_id] = alert
            agency = await session.get(AgencyView, group.rows[0].agency_id)
            message = await self._message(session, group, alerts, agency.name if agency else "")
        first = group.rows[0]
        parent = extract({"traceparent": first.traceparent}) if first.traceparent else None
        links = [link for r in group.rows[1:] for link in link_to(r.traceparent)]
        channel = self._channels.get(group.channel)
        with self._tracer.start_as_current_span(
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
                return False
            log.info(
                "message sent to %s over %s (%d deliveries)",
                mask(group.channel, group.recipient),
                group.channel,
                len(group.rows),
                extra={"channel": group.channel, "alert_id": str(first.alert_id or "")},
            )
        now = self._clock.now()
        async with self._sessions() as session, session.begin():
            for row in group.rows:
                stored = await session.get(NotificationLog, row.id)
                if stored is None:
                    continue
                stored.status, stored.sent_at, stored.lease_until = SENT, now, None
                stored.next_attempt_at = None
                stored.provider_id = receipt.provider_id
                stored.message_ref = message.reference
                session.add(stored)
        self._count_sent(group, now)
        return True

    def _count_sent(self, group: _Group, now: datetime) -> None:
        """One message sent; each planned delivery it carried took its own time."""
        count_notifications(self._metrics, group.channel, SENT)
        if self._metrics is None:
            return
        for row in group.rows:
            self._metrics.notification_delivery_duration.record(
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
        now = self._clock.now()
        views = []
        for row in group.rows:
            alert = alerts.get(row.alert_id) if row.alert_id else None
            if alert is None:
                continue
            ack = None
            if alert.state != RESOLVED and alert.state != ACKNOWLEDGED:
                ack = await self._ack_links.issue(session, alert.id, row.agency_id, now)
            views.append(_view(alert, row.event, ack))
        rendered = render(
            views,
            recipient_name=agency_name,
            role=group.rows[0].role,
            max_sms_segments=self._max_sms_segments,
            now=now,
        )
        text = {"sms": rendered.sms, "wecom": rendered.markdown}.get(group.channel, rendered.text)
        return OutgoingMessage(
            recipient=group.recipient,
            # The WeCom markdown carries its own heading; the robot would repeat a subject.
            subject="" if group.channel == "wecom" else rendered.subject,
            text=text,
            reference=_reference(group.rows),
        )

    async def _failed(self, group: _Group, error: ChannelError) -> None:
        now = self._clock.now()
        give_up = error.permanent or any(
            r.attempts >= self._backoff.max_attempts for r in group.rows
        )
        log.warning(
            "delivery to %s over %s failed (%s, attempt %d)%s",
            mask(group.channel, group.recipient),
            group.channel,
            error.code.value,
            max(r.attempts for r in group.rows),
            "; falling back" if give_up else "; will retry",
        )
        count_notifications(
            self._metrics, group.channel, FAILED if give_up else "retried", error=error.code
        )
        async with self._sessions() as session, session.begin():
            if give_up and error.code in ADDRESS_ERRORS and group.rows[0].contact_id is not None:
                contact = await session.get(Contact, group.rows[0].contact_id)
                if contact is not None:
                    contact.status, contact.failed_at = "failed", now
                    contact.failed_reason = f"{error.code.value}: {error.message}"[:500]
                    session.add(contact)
            for row in group.rows:
                stored = await session.get(NotificationLog, row.id)
                if stored is None:
                    continue
                stored.last_error = str(error)[:1000]
                stored.error_code = error.code.value
                stored.lease_until = None
                if not give_up:
                    wait = self._backoff.delay(stored.attempts, self._rng)
                    if error.retry_after:
                        wait = max(wait, timedelta(seconds=error.retry_after))
                    stored.status = PENDING
                    stored.next_attempt_at = now + domain_span(self._clock, wait)
                    session.add(stored)
                    continue
                stored.status, stored.next_attempt_at = FAILED, None
                session.add(stored)
                alert = await session.get(Alert, stored.alert_id) if stored.alert_id else None
                if alert is None:
                    continue
                tried = await _tried_contacts(session, stored.transition_event_id)
                await plan(
                    session,
                    alert,
                    [Recipient(stored.agency_id, "", stored.role)],
                    occurrence=stored.step,
                    event=stored.event,
                    now=now,
                    group_wait=timedelta(0),
                    skip_contacts=tried,
                )


async def _tried_contacts(session: AsyncSession, cause: uuid.UUID) -> list[int]:
    rows = await session.exec(
        select(NotificationLog.contact_id).where(NotificationLog.transition_event_id == cause)
    )
    return [c for c in rows.all() if c is not None]


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
        note_author=_note_author(alert),
    )


def _note_author(alert: Alert) -> str | None:
    """Who wrote the alert's note, when it can only be one agency (else the message says 报送单位).

    A note comes from the status report that caused the transition, and only the work point's
    lead and co-responsible agencies report on it; the transition does not name the reporter.
    """
    agencies = {a["name"] for a in [*alert.lead_agencies, *alert.co_agencies]}
    return agencies.pop() if len(agencies) == 1 else None

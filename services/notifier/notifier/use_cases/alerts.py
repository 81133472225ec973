"""Alerts for people: list them, acknowledge with a token or with a link from a message.

Acknowledging sets the alert's next step to now, so the escalator re-plans it (steps that run
while acknowledged may start) and is woken; the first acknowledgement adds its
`AlertTransition` to the outbox in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from duban_shared import attributes as attr
from duban_shared.clock import Clock
from duban_shared.events import AlertTransitionKind
from duban_shared.metrics import ServiceMetrics
from opentelemetry import trace
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.domain.alerts import STALL, AckRefused, acknowledge, check_code
from notifier.store import alerts as alert_store
from notifier.store.models import AckCode, Alert
from notifier.use_cases.ack_links import AckLinks
from notifier.use_cases.alert_events import publish_transition


@dataclass(frozen=True)
class AlertPage:
    """One page of alerts, with the trace id of each that has one, and the total."""

    alerts: list[Alert]
    trace_ids: dict[uuid.UUID, str]
    total: int


class LinkRefused(Exception):
    """A link that cannot be used: why, and the alert when the link is a known one."""

    def __init__(self, refusal: AckRefused, alert: Alert | None) -> None:
        super().__init__(refusal.message)
        self.refusal, self.alert = refusal, alert


@dataclass
class Alerts:
    """The alert use cases."""

    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    ack_links: AckLinks
    wake_escalator: Callable[[], None]
    wake_relay: Callable[[], None] = lambda: None  # the outbox: an acknowledgement to publish
    metrics: ServiceMetrics | None = None

    async def page(
        self,
        *,
        state: str | None,
        work_point_id: str | None,
        visible: Callable[[Alert], bool],
        limit: int,
        offset: int,
    ) -> AlertPage:
        """Alerts newest first that `visible` lets the caller see, one page of them."""
        async with self.sessions() as session:
            rows = [
                a for a in await alert_store.alerts(session, state, work_point_id) if visible(a)
            ]
            shown = rows[offset : offset + limit]
            traces = await alert_store.trace_ids(session, [a.id for a in shown])
        return AlertPage(shown, traces, len(rows))

    async def acknowledge(
        self,
        alert_id: uuid.UUID,
        by: str,
        may_acknowledge: Callable[[Alert], None],
        *,
        person: str | None = None,
    ) -> Alert:
        """Acknowledge an alert for `by` (an API client; `person` its personal account, if
        any); `may_acknowledge` raises when the caller may not."""
        async with self.sessions() as session, session.begin():
            alert = await alert_store.alert(session, alert_id, for_update=True)
            if alert is None or alert.kind != STALL:
                raise AckRefused(
                    404, "unknown_alert", f"No alert {alert_id}; list them at GET /v1/alerts."
                )
            may_acknowledge(alert)
            now = self.clock.now()
            first = acknowledge(alert, by, now)
            if first:
                publish_transition(
                    session, alert, AlertTransitionKind.ACKNOWLEDGED, now, via="api", person=person
                )
            alert.next_step_at = now  # re-plan: `acknowledged` steps
            session.add(alert)
        if first:
            self._count(alert, "api")
        self.wake_escalator()
        self.wake_relay()
        return alert

    async def link(self, token: str) -> Alert:
        """The alert a link is for while it may be used (nothing is changed); LinkRefused
        otherwise."""
        async with self.sessions() as session:
            code = None
            try:
                code = self.ack_links.code_of(token)
                row = await _usable_code(session, code, self.clock.now())
                alert = await alert_store.alert(session, row.alert_id)
                if alert is None:
                    raise AckRefused(404, "unknown_alert", f"No alert {row.alert_id}.")
            except AckRefused as exc:
                raise LinkRefused(exc, await _link_alert(session, code)) from exc
            return alert

    async def acknowledge_by_link(self, token: str) -> tuple[Alert, bool]:
        """Acknowledge through a signed, expiring, single-use link, once (LinkRefused when it
        cannot be used); return the alert and whether this link acknowledged it."""
        now = self.clock.now()
        async with self.sessions() as session:
            code = None
            try:
                async with session.begin():
                    code = self.ack_links.code_of(token)
                    row = await _usable_code(session, code, now)
                    alert = await alert_store.alert(session, row.alert_id, for_update=True)
                    if alert is None:
                        raise AckRefused(404, "unknown_alert", f"No alert {row.alert_id}.")
                    first = acknowledge(alert, f"link:{row.agency_id}", now)
                    if first:
                        publish_transition(
                            session, alert, AlertTransitionKind.ACKNOWLEDGED, now, via="link"
                        )
                    alert.next_step_at = now  # re-plan: steps that run while acknowledged
                    row.used_at = now
                    session.add(row)
                    session.add(alert)
                    # Acknowledging twice is harmless: say whether this link did it.
                    by = alert.acknowledged_by or ""
                    by_this_link = alert.acknowledged_at == now and by.startswith("link:")
            except AckRefused as exc:
                raise LinkRefused(exc, await _link_alert(session, code)) from exc
        if first:
            self._count(alert, "link")
        self.wake_escalator()
        self.wake_relay()
        return alert, by_this_link

    def _count(self, alert: Alert, via: str) -> None:
        """Record how long the alert waited for its first acknowledgement (and how it came)."""
        trace.get_current_span().set_attribute(attr.ALERT_ACK_VIA, via)
        if self.metrics is not None and alert.acknowledged_at is not None:
            waited = (alert.acknowledged_at - alert.fired_at).total_seconds()
            self.metrics.alert_ack_duration.record(max(waited, 0.0), {attr.ALERT_ACK_VIA: via})


async def _usable_code(session: AsyncSession, code: str, now: datetime) -> AckCode:
    """The stored code (locked for the transaction), if it may still be used at `now`."""
    row = await alert_store.ack_code(session, code, for_update=True)
    if row is None:
        raise AckRefused(404, "unknown_link", "This acknowledgement link is not known here.")
    check_code(row.expires_at, row.used_at, now)
    return row


async def _link_alert(session: AsyncSession, code: str | None) -> Alert | None:
    """The alert a known link is for (to tell its state on a refusal), if any."""
    row = await alert_store.ack_code(session, code) if code else None
    return await alert_store.alert(session, row.alert_id) if row else None

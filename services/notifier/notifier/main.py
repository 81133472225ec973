"""Notifier wiring: build the service from its settings, and the HTTP app around it."""

from __future__ import annotations

from datetime import timedelta

import httpx
from duban_shared import topics
from duban_shared.app import service_app
from duban_shared.auth import jwks_verifier
from duban_shared.clock import Clock, SystemClock
from duban_shared.db import is_sqlite
from duban_shared.deadletters import DeadLetterSink
from duban_shared.offsets import OffsetStore
from duban_shared.outbox import OutboxRelay
from duban_shared.ratelimit import RateLimiter
from duban_shared.revocations import revocation_feed
from duban_shared.service import CoreParts, build_core
from duban_shared.workdays import WorkingCalendar
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider

from notifier.adapters.channels.base import Channel
from notifier.adapters.channels.build import build_channels
from notifier.adapters.channels.email import EmailChannel
from notifier.adapters.mailer import SmtpMailer
from notifier.adapters.policy_files import load_policies
from notifier.api import router
from notifier.consumers import (
    AgencyConsumer,
    CircularConsumer,
    DeliveryReplay,
    NoticeConsumer,
    StallConsumer,
)
from notifier.domain.delivery import Backoff
from notifier.service import SERVICE, NotifierService
from notifier.settings import NotifierSettings
from notifier.store.models import ConsumerOffset, OutboxMessage
from notifier.store.retention import pruner
from notifier.use_cases.ack_links import AckLinks
from notifier.use_cases.agencies import Agencies
from notifier.use_cases.alerts import Alerts
from notifier.use_cases.circulars import CircularMail
from notifier.use_cases.contacts import Contacts
from notifier.use_cases.delivery_records import DeliveryRecords
from notifier.use_cases.dispatching import Dispatcher, DispatchOptions
from notifier.use_cases.escalation import Escalator
from notifier.use_cases.notices import NoticeTransitions
from notifier.use_cases.notifications import Notifications
from notifier.use_cases.transitions import Transitions

SMS_PREFERENCE = ("aliyun_sms", "tencent_sms", "http_sms")
"""The SMS provider used when several are configured."""


def _channels(
    settings: NotifierSettings, wall_clock: Clock, mailer: SmtpMailer
) -> dict[str, Channel]:
    """Email always; one SMS provider (by SMS_PREFERENCE) and WeCom when configured."""
    channels: dict[str, Channel] = {"email": EmailChannel(mailer)}
    configured = build_channels(settings.channels, clock=wall_clock)
    sms = next((configured[n] for n in SMS_PREFERENCE if n in configured), None)
    if sms is not None:
        channels["sms"] = sms
    if "wecom" in configured:
        channels["wecom"] = configured["wecom"]
    return channels


def _delivery_replay(
    settings: NotifierSettings, core: CoreParts, wall_clock: Clock
) -> DeliveryReplay:
    """The start-up read of the deliveries topic, its position kept in the database."""
    prefix = settings.topic_prefix
    group = f"{prefix}{SERVICE}.deliveries"
    return DeliveryReplay(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topic=prefix + topics.DELIVERIES,
        group=group,
        client_id=SERVICE,
        offsets=OffsetStore(ConsumerOffset, core["sessions"], wall_clock),
        records=DeliveryRecords(core["sessions"]),
        dead_letters=DeadLetterSink(
            core["producer"],
            core["tracer"],
            prefix + topics.NOTIFIER_DLQ,
            group,
            core["metrics"],
        ),
    )


def build(
    settings: NotifierSettings,
    *,
    clock: Clock | None = None,
    wall_clock: Clock | None = None,
    tracer_provider: TracerProvider | None = None,
    jwks_http: httpx.AsyncClient | None = None,
) -> NotifierService:
    """Wire the notifier from its settings; nothing connects until start().

    `jwks_http` fetches the registry's JWKS (tests route it to the registry app); by default
    build() makes a client of its own, closed with the service. `clock` tells domain time,
    `wall_clock` real time (docs/architecture.md, Clocks); a test that injects only `clock`
    moves both.
    """
    wall_clock = wall_clock or clock or SystemClock()
    clock = clock or settings.domain_clock(wall_clock)
    core = build_core(settings, SERVICE, "duban.notifier", tracer_provider=tracer_provider)
    sessions, tracer, metrics = core.sessions, core.tracer, core.metrics
    ack_links = AckLinks(
        settings.ack_secret.get_secret_value(),
        settings.public_url,
        timedelta(hours=settings.ack_link_hours),
    )
    policies = load_policies(settings.escalation_dir)
    calendar = WorkingCalendar.from_folder(settings.calendar_dir)
    mailer = SmtpMailer(settings)
    channels = _channels(settings, wall_clock, mailer)
    skip_locked = not is_sqlite(settings.database_url)
    relay = OutboxRelay(
        OutboxMessage,
        sessions,
        core.producer,
        tracer,
        wall_clock,
        poll_seconds=settings.outbox_poll_seconds,
        skip_locked=skip_locked,
        topic_prefix=settings.topic_prefix,
    )
    dispatcher = Dispatcher(
        sessions,
        channels,
        policies,
        calendar,
        clock,
        tracer,
        ack_links,
        DispatchOptions(
            skip_locked=skip_locked,
            backoff=Backoff(
                base=timedelta(seconds=settings.retry_base_seconds),
                cap=timedelta(seconds=settings.retry_cap_seconds),
                max_attempts=settings.max_attempts,
            ),
            max_sms_segments=settings.max_sms_segments,
        ),
        limiter=RateLimiter(
            wall_clock, settings.per_recipient_per_hour / 3600, settings.per_recipient_burst
        ),
        metrics=metrics,
        wake_relay=relay.wake,
    )
    escalator = Escalator(sessions, policies, calendar, clock, tracer, skip_locked=skip_locked)
    transitions = Transitions(
        sessions, policies, calendar, clock, dispatcher.wake, metrics, wake_relay=relay.wake
    )
    owned_http = None
    if jwks_http is None:
        jwks_http = owned_http = httpx.AsyncClient(timeout=settings.auth_jwks_timeout_seconds)
    verifier = jwks_verifier(settings, wall_clock, jwks_http)
    circular_mail = CircularMail(
        sessions, mailer, settings.circular_recipient_list(), clock, tracer, metrics
    )
    return NotifierService(
        **core.parts(),
        settings=settings,
        clock=clock,
        wall_clock=wall_clock,
        stall_consumer=StallConsumer(transitions, tracer),
        notice_consumer=NoticeConsumer(
            NoticeTransitions(sessions, policies, calendar, clock, dispatcher.wake, metrics),
            tracer,
        ),
        agency_consumer=AgencyConsumer(Agencies(sessions), tracer),
        circular_consumer=CircularConsumer(circular_mail, tracer),
        circular_mail=circular_mail,
        delivery_replay=_delivery_replay(settings, core.parts(), wall_clock),
        dispatcher=dispatcher,
        escalator=escalator,
        alerts=Alerts(
            sessions, clock, ack_links, escalator.wake, wake_relay=relay.wake, metrics=metrics
        ),
        relay=relay,
        contacts=Contacts(sessions, clock, settings.wecom_robots()),
        notifications=Notifications(sessions),
        channels=channels,
        verifier=verifier,
        revocation_feed=revocation_feed(settings, SERVICE, verifier.revocations),
        ack_links=ack_links,
        pruner=pruner(settings, sessions, tracer, clock, metrics, wall_clock),
        owned_http=owned_http,
    )


def create_app(service: NotifierService | None = None) -> FastAPI:
    """Build the HTTP app; with no service given it builds and runs its own from settings."""
    owned = service is None
    service = service or build(NotifierSettings())
    return service_app(
        "Duban notifier",
        service,
        router,
        owned=owned,
        trusted_proxies=service.settings.trusted_proxy_list,
    )

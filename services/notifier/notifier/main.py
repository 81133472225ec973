"""Notifier wiring: engine, stall consumer, mailer and the HTTP app."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from aiokafka import AIOKafkaProducer
from duban_shared import topics
from duban_shared.app import service_app
from duban_shared.auth import JwksVerifier, jwks_verifier
from duban_shared.clock import Clock, SystemClock
from duban_shared.db import create_engine, is_sqlite, session_factory
from duban_shared.deadletters import DeadLetterSink
from duban_shared.kafka import make_consumer, make_producer
from duban_shared.metrics import ServiceMetrics, create_service_metrics
from duban_shared.ratelimit import RateLimiter
from duban_shared.revocations import REVOCATIONS, RevocationFeed, revocation_feed
from duban_shared.runtime import PRODUCER, Background
from duban_shared.telemetry import create_tracer_provider, instrument_engine
from duban_shared.workdays import WorkingCalendar
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.agencies import AgencyConsumer
from notifier.alerts import AckLinks
from notifier.channels.base import Channel
from notifier.channels.build import build_channels
from notifier.channels.email import EmailChannel
from notifier.consumer import StallConsumer
from notifier.delivery import Backoff, Dispatcher
from notifier.escalation import Escalator
from notifier.mailer import SmtpMailer
from notifier.policy import load_policies
from notifier.settings import NotifierSettings

SERVICE = "duban-notifier"
SMS_PREFERENCE = ("aliyun_sms", "tencent_sms", "http_sms")
"""The SMS provider used when several are configured."""


@dataclass
class NotifierService:
    """Everything the notifier runs, built once and closed once."""

    settings: NotifierSettings
    clock: Clock  # domain time: alerts, escalation, quiet hours; may be simulated
    wall_clock: Clock  # real seconds: token checks, JWKS cache, rate limits, provider answers
    tracer_provider: TracerProvider
    tracer: Tracer
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    stall_consumer: StallConsumer
    agency_consumer: AgencyConsumer
    dispatcher: Dispatcher
    escalator: Escalator
    channels: dict[str, Channel]
    verifier: JwksVerifier
    revocation_feed: RevocationFeed
    ack_links: AckLinks
    metrics: ServiceMetrics
    producer: AIOKafkaProducer  # dead letters only
    owned_http: httpx.AsyncClient | None = None  # the JWKS client, when build() made it
    background: Background = field(default_factory=Background)

    async def start(self) -> None:
        """Fetch the registry's keys (best effort), then consume stall transitions and agencies."""
        await self.verifier.prefetch()
        self.background.start_soon(PRODUCER, self.producer.start)
        feed = self.revocation_feed
        self.background.follow("notifier-revocations", feed.consumer, feed.run, name=REVOCATIONS)
        prefix, bootstrap = self.settings.topic_prefix, self.settings.kafka_bootstrap_servers
        stalls_group, agencies_group = f"{prefix}{SERVICE}.stalls", f"{prefix}{SERVICE}.agencies"
        stalls = make_consumer(bootstrap, stalls_group, prefix + topics.STALLS, client_id=SERVICE)
        agencies = make_consumer(
            bootstrap, agencies_group, prefix + topics.AGENCIES, client_id=SERVICE
        )
        lag = self.metrics.consumer_lag
        await self.background.consume(
            "notifier-stalls",
            stalls,
            self.stall_consumer.handle_batch,
            name="stalls",
            retry=self.settings.retry_policy(pause_seconds=self.settings.retry_seconds),
            lag=lag.tracker(stalls_group),
            dead_letters=self._dead_letters(stalls_group),
        )
        await self.background.consume(
            "notifier-agencies",
            agencies,
            self.agency_consumer.handle_batch,
            name="agencies",
            lag=lag.tracker(agencies_group),
            dead_letters=self._dead_letters(agencies_group),
        )
        stop = self.background.stop
        if self.settings.run_loops:
            self.background.spawn(
                "notifier-dispatcher",
                self.dispatcher.run(stop, self.settings.dispatch_interval_seconds),
            )
            self.background.spawn(
                "notifier-escalator",
                self.escalator.run(
                    stop, self.settings.escalate_interval_seconds, self.dispatcher.wake
                ),
            )

    def _dead_letters(self, group: str) -> DeadLetterSink:
        """Where one of the notifier's consumers parks what it cannot apply."""
        topic = self.settings.topic_prefix + topics.NOTIFIER_DLQ
        return DeadLetterSink(self.producer, self.tracer, topic, group, self.metrics)

    def escalator_wake(self) -> None:
        """An alert changed by hand (acknowledged): let the escalator re-plan it soon."""
        self.escalator.wake()

    async def close(self) -> None:
        """Stop consuming, then close the engine."""
        await self.background.close()
        await self.producer.stop()
        for channel in self.channels.values():
            await channel.aclose()
        if self.owned_http is not None:
            await self.owned_http.aclose()
        await self.engine.dispose()
        self.metrics.shutdown()


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
    provider = tracer_provider or create_tracer_provider(SERVICE)
    tracer = provider.get_tracer("duban.notifier")
    engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
    sessions = session_factory(engine)
    metrics = create_service_metrics(SERVICE)
    metrics.consumer_lag.stuck_after_seconds = settings.consumer_stuck_seconds
    instrument_engine(engine, provider, metrics.provider)
    ack_links = AckLinks(
        settings.ack_secret.get_secret_value(),
        settings.public_url,
        timedelta(hours=settings.ack_link_hours),
    )
    policies = load_policies(settings.escalation_dir)
    calendar = WorkingCalendar.from_folder(settings.calendar_dir)
    channels: dict[str, Channel] = {"email": EmailChannel(SmtpMailer(settings))}
    configured = build_channels(settings.channels, clock=wall_clock)
    sms = next((configured[n] for n in SMS_PREFERENCE if n in configured), None)
    if sms is not None:
        channels["sms"] = sms
    if "wecom" in configured:
        channels["wecom"] = configured["wecom"]
    skip_locked = not is_sqlite(settings.database_url)
    dispatcher = Dispatcher(
        sessions,
        channels,
        policies,
        calendar,
        clock,
        tracer,
        ack_links,
        skip_locked=skip_locked,
        backoff=Backoff(
            base=timedelta(seconds=settings.retry_base_seconds),
            cap=timedelta(seconds=settings.retry_cap_seconds),
            max_attempts=settings.max_attempts,
        ),
        recipient_limiter=RateLimiter(
            wall_clock, settings.per_recipient_per_hour / 3600, settings.per_recipient_burst
        ),
        max_sms_segments=settings.max_sms_segments,
        metrics=metrics,
    )
    escalator = Escalator(sessions, policies, calendar, clock, tracer, skip_locked=skip_locked)
    consumer = StallConsumer(
        sessions, policies, calendar, tracer, clock, dispatcher.wake, metrics=metrics
    )
    owned_http = None
    if jwks_http is None:
        jwks_http = owned_http = httpx.AsyncClient(timeout=settings.auth_jwks_timeout_seconds)
    verifier = jwks_verifier(settings, wall_clock, jwks_http)
    return NotifierService(
        settings,
        clock,
        wall_clock,
        provider,
        tracer,
        engine,
        sessions,
        consumer,
        AgencyConsumer(sessions, tracer),
        dispatcher,
        escalator,
        channels,
        verifier=verifier,
        revocation_feed=revocation_feed(settings, SERVICE, verifier.revocations),
        ack_links=ack_links,
        metrics=metrics,
        producer=make_producer(settings.kafka_bootstrap_servers, client_id=SERVICE),
        owned_http=owned_http,
        background=Background(settings.retry_policy()),
    )


def create_app(service: NotifierService | None = None) -> FastAPI:
    """Build the HTTP app; with no service given it builds and runs its own from settings."""
    from notifier.api import router

    owned = service is None
    service = service or build(NotifierSettings())
    return service_app(
        "Duban notifier",
        service,
        router,
        owned=owned,
        trusted_proxies=service.settings.trusted_proxy_list,
    )

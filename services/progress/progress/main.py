"""Progress wiring: engine, producer, consumers, sweeper, outbox relay and the HTTP app."""

from __future__ import annotations

import logging
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
from duban_shared.failures import OutageLog
from duban_shared.kafka import make_consumer, make_producer
from duban_shared.metrics import ServiceMetrics, create_service_metrics
from duban_shared.outbox import OutboxRelay
from duban_shared.ratelimit import RateLimiter
from duban_shared.revocations import REVOCATIONS, RevocationFeed, revocation_feed
from duban_shared.runtime import PRODUCER, Background
from duban_shared.telemetry import create_tracer_provider, instrument_engine
from duban_shared.throttle import LoginThrottle
from duban_shared.workdays import WorkingCalendar
from fastapi import APIRouter, FastAPI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.consumers import StatusConsumer, WorkPointConsumer
from progress.settings import ProgressSettings
from progress.store.gauges import register_open_stalls, register_provisional_judgements
from progress.store.ingest import IngestStore
from progress.store.models import OutboxMessage
from progress.use_cases.closure import ClosureReview
from progress.use_cases.ingestion import Ingestion
from progress.use_cases.reports import ApplyReports
from progress.use_cases.sweep import Sweeper
from progress.use_cases.work_points import ApplySnapshots

SERVICE = "duban-progress"
STATUS_GATHER_BYTES = 64 * 1024  # about a hundred status reports


@dataclass
class ProgressService:
    """Everything progress runs, built once and closed once."""

    settings: ProgressSettings
    clock: Clock  # domain time: judging, sweeps, reports; may be simulated (DUBAN_SIM_CLOCK_*)
    wall_clock: Clock  # real seconds: token checks, JWKS cache, rate limits, the outbox
    tracer_provider: TracerProvider
    tracer: Tracer
    metrics: ServiceMetrics
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    producer: AIOKafkaProducer
    relay: OutboxRelay
    sweeper: Sweeper
    status_consumer: StatusConsumer
    work_point_consumer: WorkPointConsumer
    verifier: JwksVerifier
    revocation_feed: RevocationFeed
    rate_limiter: RateLimiter
    login_throttle: LoginThrottle  # the board's failed logins per client id and address
    calendar: WorkingCalendar
    ingest: IngestStore
    ingestion: Ingestion  # status reports over HTTP
    closure: ClosureReview  # the office's closure decisions
    owned_http: httpx.AsyncClient | None = None  # the JWKS client, when build() made it
    # The board's client: tokens from the registry, alerts from the notifier.
    board_http: httpx.AsyncClient = field(
        default_factory=lambda: httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=2.0))
    )
    background: Background = field(default_factory=Background)
    # A broker outage seen by ingestion: logged once with a count, not per report.
    broker_outage: OutageLog = field(
        default_factory=lambda: OutageLog(logging.getLogger("progress.ingest"), "broker")
    )

    async def start(self) -> None:
        """Fetch the registry's keys (best effort), connect to Kafka (in the background, until
        the broker answers), and start the background work unless this is an API-only process
        (settings.background false)."""
        await self.verifier.prefetch()
        self.background.start_soon(PRODUCER, self.producer.start)
        feed = self.revocation_feed
        self.background.follow("progress-revocations", feed.consumer, feed.run, name=REVOCATIONS)
        if self.settings.background:
            await self._start_background()

    async def _start_background(self) -> None:
        """The status and work point consumers, the outbox relay and the sweeper."""
        bootstrap = self.settings.kafka_bootstrap_servers
        prefix = self.settings.topic_prefix
        status_group, work_points_group = group(prefix, "status"), group(prefix, "work-points")
        gather = (STATUS_GATHER_BYTES, self.settings.status_gather_ms)
        status = make_consumer(
            bootstrap,
            status_group,
            prefix + topics.STATUS,
            client_id=SERVICE,
            gather=gather if self.settings.status_gather_ms else None,
        )
        work_points = make_consumer(
            bootstrap, work_points_group, prefix + topics.WORK_POINTS, client_id=SERVICE
        )
        lag = self.metrics.consumer_lag
        await self.background.consume(
            "progress-status",
            status,
            self.status_consumer.handle_batch,
            name="status",
            lag=lag.tracker(status_group),
            dead_letters=self.status_consumer.dead_letters,
        )
        await self.background.consume(
            "progress-work-points",
            work_points,
            self.work_point_consumer.handle_batch,
            name="work-points",
            lag=lag.tracker(work_points_group),
            dead_letters=dead_letter_sink(
                self.settings, self.producer, self.tracer, self.metrics, "work-points"
            ),
        )
        stop = self.background.stop

        async def relay() -> None:
            await self.background.wait_ready(PRODUCER)
            await self.relay.run(stop)

        self.background.spawn("progress-outbox", relay())
        if self.settings.run_sweeper:
            self.background.spawn(
                "progress-sweeper", self.sweeper.run(stop, self.settings.sweep_interval_seconds)
            )

    async def close(self) -> None:
        """Stop background work, then Kafka clients and the engine."""
        await self.background.close()
        await self.producer.stop()
        if self.owned_http is not None:
            await self.owned_http.aclose()
        await self.board_http.aclose()
        await self.engine.dispose()
        self.metrics.shutdown()


def group(prefix: str, consumer: str) -> str:
    """The consumer group of one of progress's consumers."""
    return f"{prefix}{SERVICE}.{consumer}"


def dead_letter_sink(
    settings: ProgressSettings,
    producer: AIOKafkaProducer,
    tracer: Tracer,
    metrics: ServiceMetrics,
    consumer: str,
) -> DeadLetterSink:
    """Where one of progress's consumers parks what it cannot apply."""
    prefix = settings.topic_prefix
    return DeadLetterSink(
        producer, tracer, prefix + topics.PROGRESS_DLQ, group(prefix, consumer), metrics
    )


def build(
    settings: ProgressSettings,
    *,
    clock: Clock | None = None,
    wall_clock: Clock | None = None,
    tracer_provider: TracerProvider | None = None,
    jwks_http: httpx.AsyncClient | None = None,
) -> ProgressService:
    """Wire progress from its settings; nothing connects until start().

    `jwks_http` fetches the registry's JWKS (tests route it to the registry app); by default
    build() makes a client of its own, closed with the service. `clock` tells domain time,
    `wall_clock` real time (docs/architecture.md, Clocks); a test that injects only `clock`
    moves both.
    """
    wall_clock = wall_clock or clock or SystemClock()
    clock = clock or settings.domain_clock(wall_clock)
    provider = tracer_provider or create_tracer_provider(SERVICE)
    tracer = provider.get_tracer("duban.progress")
    engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
    sessions = session_factory(engine)
    metrics = create_service_metrics(SERVICE)
    metrics.consumer_lag.stuck_after_seconds = settings.consumer_stuck_seconds
    instrument_engine(engine, provider, metrics.provider)
    register_open_stalls(metrics, sessions, max_age_seconds=settings.metrics_cache_seconds)
    register_provisional_judgements(
        metrics, sessions, max_age_seconds=settings.metrics_cache_seconds
    )
    producer = make_producer(settings.kafka_bootstrap_servers, client_id=SERVICE)
    skip_locked = not is_sqlite(settings.database_url)
    relay = OutboxRelay(
        OutboxMessage,
        sessions,
        producer,
        tracer,
        wall_clock,
        poll_seconds=settings.outbox_poll_seconds,
        skip_locked=skip_locked,
        topic_prefix=settings.topic_prefix,
    )
    # Read now, not at import: a broken year file stops the service here, naming the file.
    calendar = WorkingCalendar.from_folder(settings.calendar_dir)
    sweeper = Sweeper(
        sessions,
        clock,
        tracer,
        relay,
        batch_size=settings.sweep_batch_size,
        skip_locked=skip_locked,
        calendar=calendar,
    )
    ingest = IngestStore(engine, tracer)
    background = Background(settings.retry_policy())
    broker_outage = OutageLog(logging.getLogger("progress.ingest"), "broker")
    owned_http = None
    if jwks_http is None:
        jwks_http = owned_http = httpx.AsyncClient(timeout=settings.auth_jwks_timeout_seconds)
    verifier = jwks_verifier(settings, wall_clock, jwks_http)
    return ProgressService(
        settings=settings,
        clock=clock,
        wall_clock=wall_clock,
        tracer_provider=provider,
        tracer=tracer,
        metrics=metrics,
        engine=engine,
        sessions=sessions,
        producer=producer,
        relay=relay,
        sweeper=sweeper,
        status_consumer=StatusConsumer(
            ApplyReports(
                sessions,
                clock,
                relay,
                calendar=calendar,
                late_after=timedelta(days=settings.late_after_days),
                earliest_before_plan=timedelta(days=settings.earliest_report_days_before_plan),
            ),
            dead_letter_sink(settings, producer, tracer, metrics, "status"),
            tracer,
            metrics=metrics,
        ),
        work_point_consumer=WorkPointConsumer(
            ApplySnapshots(sessions, clock, calendar),
            tracer,
            latest_due_years_after_plan=settings.latest_due_years_after_plan,
        ),
        verifier=verifier,
        revocation_feed=revocation_feed(settings, SERVICE, verifier.revocations),
        rate_limiter=RateLimiter(wall_clock, settings.rate_per_second, settings.rate_burst),
        login_throttle=settings.login_throttle(wall_clock),
        calendar=calendar,
        ingest=ingest,
        ingestion=Ingestion(
            settings, clock, tracer, producer, background, broker_outage, ingest, engine
        ),
        closure=ClosureReview(sessions, clock, relay, calendar),
        owned_http=owned_http,
        background=background,
        broker_outage=broker_outage,
    )


def create_app(service: ProgressService | None = None) -> FastAPI:
    """Build the HTTP app; with no service given it builds and runs its own from settings."""
    from progress.api import router

    owned = service is None
    service = service or build(ProgressSettings())
    return service_app(
        "Duban progress",
        service,
        router,
        owned=owned,
        max_body_bytes=service.settings.max_body_bytes,
        trusted_proxies=service.settings.trusted_proxy_list,
    )


def create_worker_app() -> FastAPI:
    """`duban-progress worker`: the consumers, the outbox relay and the sweeper, with only
    /healthz and /metrics over HTTP (the API runs in `serve` processes with background off)."""
    settings = ProgressSettings().model_copy(update={"background": True})
    return service_app(
        "Duban progress worker",
        build(settings),
        APIRouter(),
        owned=True,
        trusted_proxies=settings.trusted_proxy_list,
    )

"""The running progress service: its use cases, consumers, sweeper and relay, built once by
`progress.main.build` and closed once. The HTTP app reaches it through `progress.api.deps`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

import httpx
from aiokafka import AIOKafkaProducer
from duban_shared import topics
from duban_shared.auth import JwksVerifier
from duban_shared.clock import Clock
from duban_shared.deadletters import DeadLetterSink
from duban_shared.failures import OutageLog
from duban_shared.kafka import BatchHandler, Parker, make_consumer
from duban_shared.metrics import ServiceMetrics
from duban_shared.offsets import OffsetKeeper, OffsetStore
from duban_shared.outbox import OutboxRelay
from duban_shared.ratelimit import RateLimiter
from duban_shared.retention import (
    RETENTION_CHECK,
    START_CHECK_SECONDS,
    Pruner,
    check_at_start,
    check_broker_retention,
)
from duban_shared.revocations import REVOCATIONS, RevocationFeed
from duban_shared.runtime import PRODUCER
from duban_shared.service import ServiceCore
from duban_shared.throttle import LoginThrottle
from duban_shared.workdays import WorkingCalendar
from opentelemetry.trace import Tracer

from progress.settings import ProgressSettings
from progress.store.ingest import IngestStore
from progress.store.models import ConsumerOffset
from progress.use_cases.circulars import Circulars
from progress.use_cases.closure import ClosureReview
from progress.use_cases.ingestion import Ingestion
from progress.use_cases.notices import Notices
from progress.use_cases.sweep import Sweeper

SERVICE = "duban-progress"
STATUS_GATHER_BYTES = 64 * 1024  # about a hundred status reports


class Consumer(Protocol):
    """A Kafka entry point (`progress.consumers`): handles a batch of records."""

    @property
    def handle_batch(self) -> BatchHandler: ...


class ParkingConsumer(Consumer, Protocol):
    """A consumer that parks records itself (the status consumer's checks), with its sink."""

    @property
    def dead_letters(self) -> Parker: ...


@dataclass(kw_only=True)
class ProgressService(ServiceCore):
    """Everything progress runs, built once and closed once."""

    settings: ProgressSettings
    clock: Clock  # domain time: judging, sweeps, reports; may be simulated (DUBAN_SIM_CLOCK_*)
    wall_clock: Clock  # real seconds: token checks, JWKS cache, rate limits, the outbox
    relay: OutboxRelay
    sweeper: Sweeper
    status_consumer: ParkingConsumer
    work_point_consumer: Consumer
    alert_consumer: Consumer  # the notifier's alert transitions, for acknowledgement times
    verifier: JwksVerifier
    revocation_feed: RevocationFeed
    rate_limiter: RateLimiter
    login_throttle: LoginThrottle  # the board's failed logins per client id and address
    calendar: WorkingCalendar
    ingest: IngestStore
    ingestion: Ingestion  # status reports over HTTP
    closure: ClosureReview  # the office's closure decisions
    circulars: Circulars  # circulars (通报): on demand, and on schedule in the background
    notices: Notices  # supervision notices (督办单)
    pruner: Pruner  # retention: the inbox, the outbox, ingested events (progress.store.retention)
    owned_http: httpx.AsyncClient | None = None  # the JWKS client, when build() made it
    # The board's client: tokens from the registry, alerts from the notifier.
    board_http: httpx.AsyncClient = field(
        default_factory=lambda: httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=2.0))
    )
    # Each consumer group's positions as the database knows them (duban_shared.offsets).
    offset_keepers: dict[str, OffsetKeeper] = field(default_factory=dict)
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
        """Check the Kafka rule (the inbox outlives the consumed topics' records; a broken rule
        refuses the start), then the status, work point and alert consumers, the outbox relay,
        the sweeper, retention and the scheduled circulars."""
        bootstrap = self.settings.kafka_bootstrap_servers
        prefix = self.settings.topic_prefix
        await check_at_start(
            self.background, self.check_topic_retention, timeout_seconds=START_CHECK_SECONDS
        )
        status_group, work_points_group = group(prefix, "status"), group(prefix, "work-points")
        gather = (STATUS_GATHER_BYTES, self.settings.status_gather_ms)
        status_offsets, work_points_offsets = (
            self._keeper(status_group),
            self._keeper(work_points_group),
        )
        status = make_consumer(
            bootstrap,
            status_group,
            prefix + topics.STATUS,
            client_id=SERVICE,
            gather=gather if self.settings.status_gather_ms else None,
            keeper=status_offsets,
        )
        work_points = make_consumer(
            bootstrap,
            work_points_group,
            prefix + topics.WORK_POINTS,
            client_id=SERVICE,
            keeper=work_points_offsets,
        )
        lag = self.metrics.consumer_lag
        await self.background.consume(
            "progress-status",
            status,
            self.status_consumer.handle_batch,
            name="status",
            lag=lag.tracker(status_group),
            dead_letters=self.status_consumer.dead_letters,
            offsets=status_offsets,
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
            offsets=work_points_offsets,
        )
        alerts_group = group(prefix, "alerts")
        alerts_offsets = self._keeper(alerts_group)
        alerts = make_consumer(
            bootstrap,
            alerts_group,
            prefix + topics.ALERTS,
            client_id=SERVICE,
            keeper=alerts_offsets,
        )
        await self.background.consume(
            "progress-alerts",
            alerts,
            self.alert_consumer.handle_batch,
            name="alerts",
            lag=lag.tracker(alerts_group),
            dead_letters=dead_letter_sink(
                self.settings, self.producer, self.tracer, self.metrics, "alerts"
            ),
            offsets=alerts_offsets,
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
        if self.settings.run_retention:
            self.background.spawn(
                "progress-retention",
                self.pruner.run(
                    stop,
                    self.settings.retention_interval_seconds,
                    after=lambda: self.background.wait_ready(RETENTION_CHECK),
                ),
            )
        if self.circulars.scheduled_kinds:
            self.background.spawn(
                "progress-circulars",
                self.circulars.run(stop, self.settings.circular_check_seconds),
            )

    def _keeper(self, group_id: str) -> OffsetKeeper:
        """The database's positions of one consumer group (kept for tests and logs)."""
        keeper = OffsetKeeper(OffsetStore(ConsumerOffset, self.sessions, self.wall_clock), group_id)
        self.offset_keepers[group_id] = keeper
        return keeper

    async def check_topic_retention(self) -> dict[str, int | None]:
        """The Kafka rule against the broker: the inbox outlives the consumed topics' records."""
        settings = self.settings
        return await check_broker_retention(
            settings.kafka_bootstrap_servers,
            [settings.topic_prefix + t for t in settings.consumed_inbox_topics],
            settings.retention_inbox_days,
            setting="DUBAN_PROGRESS_RETENTION_INBOX_DAYS",
        )

    async def close(self) -> None:
        """Stop background work, the producer and the engine (the core), then the HTTP
        clients."""
        await super().close()
        if self.owned_http is not None:
            await self.owned_http.aclose()
        await self.board_http.aclose()


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

"""Metrics through OpenTelemetry, one MeterProvider per service, like the TracerProvider.

Every service exposes its metrics on `GET /metrics` of its own HTTP port (Prometheus text
format), from a Prometheus reader with a registry of its own: the three services can run in one
process (the tests) and each `/metrics` still shows only its service. OTEL_METRICS_EXPORTER adds
push exporters the way OTEL_TRACES_EXPORTER does for traces (`otlp`, the default; `console`;
`none`; `prometheus` is accepted and means the scrape endpoint, which is always there);
OTEL_SDK_DISABLED=true pushes nothing. The OTLP exporter reads OTEL_EXPORTER_OTLP_* itself and
pushes every OTEL_METRIC_EXPORT_INTERVAL milliseconds (60 s).

The instruments (their Prometheus names in docs/architecture.md, "Metrics and logs"):

- `duban.ingest.events`: status reports judged by the ingestion API, by outcome.
- `duban.event.processing.duration`: acceptance to application by progress's consumer.
- `duban.consumer.lag`: records not yet applied, per consumer group and partition.
- `duban.stalls.open`: open stall episodes by colour and headline reason (progress).
- `duban.notifications`: messages by channel and outcome (notifier).
- `duban.notification.delivery.duration`: planning of a delivery to the channel's acceptance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from aiokafka import AIOKafkaConsumer, TopicPartition
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from duban_shared import attributes as attr
from duban_shared.telemetry import exporter_names, service_resource

log = logging.getLogger(__name__)

Clock = Callable[[], float]

INGEST_EVENTS: Final = "duban.ingest.events"
EVENT_PROCESSING_DURATION: Final = "duban.event.processing.duration"
CONSUMER_LAG: Final = "duban.consumer.lag"
CONSUMER_STUCK: Final = "duban.consumer.stuck"
DEAD_LETTERS: Final = "duban.dead_letters"
STALLS_OPEN: Final = "duban.stalls.open"
CALENDAR_PROVISIONAL: Final = "duban.calendar.provisional_judgements"
NOTIFICATIONS: Final = "duban.notifications"
CIRCULARS: Final = "duban.circulars"
NOTICES: Final = "duban.notices"
NOTIFICATION_DELIVERY_DURATION: Final = "duban.notification.delivery.duration"
EXTENSION_REQUESTS: Final = "duban.extension_requests"
ALERT_ACK_DURATION: Final = "duban.alert.acknowledgement.duration"
RETENTION_PRUNED: Final = "duban.retention.pruned"
RETENTION_LAST_PRUNE: Final = "duban.retention.last_prune"
LOGINS: Final = "duban.logins"

PROMETHEUS_CONTENT_TYPE: Final = CONTENT_TYPE_PLAIN_0_0_4
"""The exposition format `/metrics` answers in (Prometheus text 0.0.4)."""

PROCESSING_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip
"""Seconds from acceptance to application: milliseconds normally, minutes when behind."""

DELIVERY_BUCKETS: Final = (
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0,
    43200.0, 86400.0, 259200.0,
)  # fmt: skip
"""Seconds to a channel's acceptance: the grouping window (minutes), quiet hours (a night, a
weekend) and retries all count."""

ACK_BUCKETS: Final = (
    60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 43200.0, 86400.0,
    172800.0, 259200.0, 604800.0,
)  # fmt: skip
"""Seconds from an alert firing to its acknowledgement: minutes to a week."""


class ServiceMetrics:
    """A service's MeterProvider, its scrape registry and the instruments of the project.

    An instrument no code of the service records into has no data points and does not appear
    on the service's `/metrics`.
    """

    def __init__(self, provider: MeterProvider, registry: CollectorRegistry) -> None:
        self.provider = provider
        self.registry = registry
        self.meter: Meter = provider.get_meter("duban")
        self.ingest_events = self.meter.create_counter(
            INGEST_EVENTS,
            unit="{event}",
            description="Status reports judged by the ingestion API (single and batch), by "
            "outcome (accepted, replayed, rejected) and error.type for rejections.",
        )
        self.event_processing_duration = self.meter.create_histogram(
            EVENT_PROCESSING_DURATION,
            unit="s",
            description="From a status report's acceptance (its Kafka record timestamp) to its "
            "application by progress's consumer.",
            explicit_bucket_boundaries_advisory=PROCESSING_BUCKETS,
        )
        self.notifications = self.meter.create_counter(
            NOTIFICATIONS,
            unit="{message}",
            description="Messages by channel and outcome: sent, failed (given up), retried "
            "(transient error, sent again later), dropped (superseded before sending).",
        )
        self.notification_delivery_duration = self.meter.create_histogram(
            NOTIFICATION_DELIVERY_DURATION,
            unit="s",
            description="From the planning of a delivery (the notifier applying the stall "
            "transition, or an escalation step falling due) to the channel accepting it.",
            explicit_bucket_boundaries_advisory=DELIVERY_BUCKETS,
        )
        self.circulars = self.meter.create_counter(
            CIRCULARS,
            unit="{circular}",
            description="Circulars (通报) produced by progress, by kind (weekly, monthly) and "
            "trigger (scheduled, on_demand); mailed by the notifier, by outcome.",
        )
        self.notices = self.meter.create_counter(
            NOTICES,
            unit="{notice}",
            description="Supervision notices (督办单) entering a state, by state: issued, "
            "replied, overdue, closed, withdrawn.",
        )
        self.alert_ack_duration = self.meter.create_histogram(
            ALERT_ACK_DURATION,
            unit="s",
            description="From an alert firing to its first acknowledgement (domain time, "
            "nights and holidays included), by how it was acknowledged (api, link).",
            explicit_bucket_boundaries_advisory=ACK_BUCKETS,
        )
        self.dead_letters = self.meter.create_counter(
            DEAD_LETTERS,
            unit="{record}",
            description="Records a consumer could not apply and parked on its service's "
            "dead-letter topic, by consumer group and error.type (the reason's code).",
        )
        self.extension_requests = self.meter.create_counter(
            EXTENSION_REQUESTS,
            unit="{request}",
            description="Extension requests (延期申请) by step: requested, approved, rejected, "
            "withdrawn.",
        )
        self.retention_pruned = self.meter.create_counter(
            RETENTION_PRUNED,
            unit="{row}",
            description="Rows deleted by retention (duban_shared.retention), by table "
            "(db.collection.name).",
        )
        self.logins = self.meter.create_counter(
            LOGINS,
            unit="{login}",
            description="People's logins (POST /v1/sessions) by outcome: ok, or the refusal's "
            "code (invalid_credentials, invalid_totp, totp_required, too_many_attempts, ...).",
        )
        self.consumer_lag = ConsumerLag(self.meter)
        self._cached: list[CachedGauge] = []

    def cached_gauge(
        self,
        name: str,
        load: Callable[[], Awaitable[Sequence[tuple[float, Mapping[str, str]]]]],
        *,
        max_age_seconds: float,
        unit: str = "",
        description: str = "",
    ) -> CachedGauge:
        """An observable gauge whose values come from `load`, called at most every max age."""
        gauge = CachedGauge(
            self.meter,
            name,
            load,
            max_age_seconds=max_age_seconds,
            unit=unit,
            description=description,
        )
        self._cached.append(gauge)
        return gauge

    async def exposition(self) -> bytes:
        """The service's metrics in the Prometheus text format (stale caches refreshed first)."""
        for gauge in self._cached:
            await gauge.refresh()
        return generate_latest(self.registry)

    def shutdown(self) -> None:
        """Flush the push exporters and stop them."""
        self.provider.shutdown()


def create_service_metrics(
    service_name: str,
    *,
    env: Mapping[str, str] | None = None,
    readers: Sequence[MetricReader] = (),
) -> ServiceMetrics:
    """Build a service's metrics; the exporters follow OTEL_METRICS_EXPORTER (see above)."""
    env = os.environ if env is None else env
    registry = CollectorRegistry(auto_describe=True)
    all_readers: list[MetricReader] = [PrometheusMetricReader(registry=registry), *readers]
    if env.get("OTEL_SDK_DISABLED", "").lower() != "true":
        for exporter in exporter_names(env, "OTEL_METRICS_EXPORTER"):
            if exporter == "otlp":
                from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                    OTLPMetricExporter,
                )

                all_readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
            elif exporter == "console":
                all_readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter()))
            elif exporter not in {"none", "prometheus"}:
                raise ValueError(
                    f"OTEL_METRICS_EXPORTER={exporter!r} is not supported; use otlp, console, "
                    "prometheus or none"
                )
    provider = MeterProvider(
        metric_readers=all_readers,
        resource=service_resource(service_name, env),
        shutdown_on_exit=False,  # the service shuts it down when it closes
    )
    return ServiceMetrics(provider, registry)


class CachedGauge:
    """An observable gauge over a query: the query runs at most every `max_age_seconds`.

    A scrape of `/metrics` refreshes a stale cache before answering; a push export (which
    observes from the exporter's thread) gets the cached values and schedules a refresh on the
    service's event loop. A failed refresh keeps the last values and is logged.
    """

    def __init__(
        self,
        meter: Meter,
        name: str,
        load: Callable[[], Awaitable[Sequence[tuple[float, Mapping[str, str]]]]],
        *,
        max_age_seconds: float,
        unit: str,
        description: str,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._max_age = max_age_seconds
        self._monotonic = monotonic
        self._values: dict[tuple[tuple[str, str], ...], float] = {}
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: asyncio.Future[None] | None = None
        self._name = name
        meter.create_observable_gauge(
            name, callbacks=[self._observe], unit=unit, description=description
        )

    def _stale(self) -> bool:
        return self._loaded_at is None or self._monotonic() - self._loaded_at >= self._max_age

    async def refresh(self, *, force: bool = False) -> None:
        """Run the query if the cache is older than its max age (or when forced)."""
        self._loop = asyncio.get_running_loop()
        if not force and not self._stale():
            return
        async with self._lock:
            if not force and not self._stale():
                return
            try:
                rows = await self._load()
            except Exception:
                log.exception("refreshing the %s gauge failed; keeping the last values", self._name)
                return
            # A series seen before and absent now reads 0, rather than vanishing.
            values = dict.fromkeys(self._values, 0.0)
            for value, attributes in rows:
                key = tuple(sorted(attributes.items()))
                values[key] = values.get(key, 0.0) + value
            self._values = values
            self._loaded_at = self._monotonic()

    def _observe(self, _options: CallbackOptions) -> Iterable[Observation]:
        if self._stale() and self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                self._loop.call_soon_threadsafe(self._schedule_refresh)
        return [Observation(value, dict(key)) for key, value in self._values.items()]

    def _schedule_refresh(self) -> None:
        if self._pending is None or self._pending.done():
            self._pending = asyncio.ensure_future(self.refresh())


@dataclass(frozen=True)
class StuckPartition:
    """A partition whose consumer has records to apply and has not advanced for a while."""

    group: str
    topic: str
    partition: int
    lag: int
    seconds: float

    def describe(self) -> str:
        """One line for /healthz and logs."""
        return (
            f"{self.group} on {self.topic}[{self.partition}]: {self.lag} record(s) waiting, "
            f"no progress for {self.seconds:.0f}s"
        )


class ConsumerLag:
    """`duban.consumer.lag`: per assigned partition, the high watermark minus the position of
    the next record to apply (records fetched but still being handled count as lag).

    It also keeps when each partition's position last moved, so that a consumer that has lag
    and does not advance (a hung handler, a dependency down, a record retried forever) is seen:
    `stuck()` lists such partitions, `duban.consumer.stuck` is 1 for them.
    """

    def __init__(
        self, meter: Meter, *, stuck_after_seconds: float = 120.0, clock: Clock = time.monotonic
    ) -> None:
        self._lag: dict[tuple[str, str, int], int] = {}
        self._moved: dict[tuple[str, str, int], tuple[int, float]] = {}
        self.stuck_after_seconds = stuck_after_seconds
        self.clock = clock
        meter.create_observable_gauge(
            CONSUMER_LAG,
            callbacks=[self._observe],
            unit="{message}",
            description="Records not yet applied: the partition's high watermark minus the "
            "consumer's position, per consumer group and partition.",
        )
        meter.create_observable_gauge(
            CONSUMER_STUCK,
            callbacks=[self._observe_stuck],
            unit="1",
            description="1 while a partition has records to apply and its consumer has not "
            "advanced for the stuck time (DUBAN_CONSUMER_STUCK_SECONDS), else 0.",
        )

    def tracker(self, group: str) -> LagTracker:
        """The lag of one consumer group, updated by its consumer loop."""
        return LagTracker(self, group)

    def record(self, key: tuple[str, str, int], lag: int, position: int) -> None:
        """Note a partition's lag and position (a moved position, or no lag, is progress)."""
        self._lag[key] = lag
        before = self._moved.get(key)
        if before is None or before[0] != position or lag == 0:
            self._moved[key] = (position, self.clock())

    def forget(self, key: tuple[str, str, int]) -> None:
        """The partition is no longer this process's to report."""
        self._lag.pop(key, None)
        self._moved.pop(key, None)

    def partitions(self) -> list[tuple[str, str, int]]:
        """The partitions reported, as (topic, group, partition)."""
        return list(self._lag)

    def stuck(self) -> list[StuckPartition]:
        """Partitions with lag whose position has not moved for the stuck time."""
        now = self.clock()
        found = []
        for key, lag in list(self._lag.items()):
            moved = self._moved.get(key)
            if lag > 0 and moved is not None and now - moved[1] >= self.stuck_after_seconds:
                topic, group, partition = key
                found.append(StuckPartition(group, topic, partition, lag, now - moved[1]))
        return found

    def _observe(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [
            Observation(lag, _partition_attributes(key)) for key, lag in list(self._lag.items())
        ]

    def _observe_stuck(self, _options: CallbackOptions) -> Iterable[Observation]:
        stuck = {(s.topic, s.group, s.partition) for s in self.stuck()}
        return [
            Observation(int(key in stuck), _partition_attributes(key)) for key in self.partitions()
        ]


def _partition_attributes(key: tuple[str, str, int]) -> dict[str, str]:
    topic, group, partition = key
    return {
        attr.MESSAGING_DESTINATION_NAME: topic,
        attr.MESSAGING_CONSUMER_GROUP_NAME: group,
        attr.MESSAGING_DESTINATION_PARTITION_ID: str(partition),
    }


class LagTracker:
    """Updates the lag of one consumer group (see duban_shared.kafka.run_batch_consumer)."""

    def __init__(self, lag: ConsumerLag, group: str) -> None:
        self._lag = lag
        self.group = group

    async def update(
        self, consumer: AIOKafkaConsumer, in_flight: Mapping[TopicPartition, int] | None = None
    ) -> None:
        """Record the lag of every assigned partition whose high watermark is known.

        `in_flight` maps partitions of a batch being handled to the batch's first offset: the
        consumer's position is already past those records, but they are not applied yet.
        """
        assigned = consumer.assignment()
        for tp in assigned:
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            start = (in_flight or {}).get(tp)
            position = start if start is not None else await consumer.position(tp)
            key = (tp.topic, self.group, tp.partition)
            self._lag.record(key, max(highwater - position, 0), position)
        mine = {(tp.topic, self.group, tp.partition) for tp in assigned}
        for key in [k for k in self._lag.partitions() if k[1] == self.group and k not in mine]:
            self._lag.forget(key)  # revoked: another member reports it

    def clear(self) -> None:
        """The consumer stopped: it reports no partition any more."""
        for key in [k for k in self._lag.partitions() if k[1] == self.group]:
            self._lag.forget(key)

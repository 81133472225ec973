"""What every service builds the same way and closes the same way: tracing, metrics, the
database engine and its sessions, the Kafka producer and the background tasks.

Use it in a service's `main.py` in three steps:

    @dataclass(kw_only=True)
    class RegistryService(ServiceCore):
        settings: RegistrySettings
        relay: OutboxRelay                      # ...what only this service has

        async def close(self) -> None:
            # close what only this service has, then the core
            await super().close()

    def build(settings, *, tracer_provider=None) -> RegistryService:
        core = build_core(settings, "duban-registry", "duban.registry",
                          tracer_provider=tracer_provider)
        relay = OutboxRelay(..., core.sessions, core.producer, core.tracer, ...)
        return RegistryService(**core.parts(), settings=settings, relay=relay)

`build_core` connects to nothing: the engine connects on its first session and the producer
when it is started (each service starts it in the background, see `duban_shared.runtime`).
`ServiceCore.close` undoes it in order: background tasks first (they use the rest), then the
producer, the engine and the metrics exporters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from aiokafka import AIOKafkaProducer
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from duban_shared.db import create_engine, session_factory
from duban_shared.kafka import make_producer
from duban_shared.metrics import ServiceMetrics, create_service_metrics
from duban_shared.runtime import Background
from duban_shared.settings import ServiceSettings
from duban_shared.telemetry import create_tracer_provider, instrument_engine


class CoreParts(TypedDict):
    """The fields of a ServiceCore, to build a service dataclass that extends it."""

    service_name: str
    tracer_provider: TracerProvider
    tracer: Tracer
    metrics: ServiceMetrics
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    producer: AIOKafkaProducer
    background: Background


@dataclass(kw_only=True)
class ServiceCore:
    """The parts every service has; a service's own dataclass extends it."""

    service_name: str  # e.g. "duban-registry": telemetry's service.name, the Kafka client id
    tracer_provider: TracerProvider
    tracer: Tracer
    metrics: ServiceMetrics
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    producer: AIOKafkaProducer
    background: Background

    def parts(self) -> CoreParts:
        """The fields, for `YourService(**core.parts(), ...)`."""
        return CoreParts(
            service_name=self.service_name,
            tracer_provider=self.tracer_provider,
            tracer=self.tracer,
            metrics=self.metrics,
            engine=self.engine,
            sessions=self.sessions,
            producer=self.producer,
            background=self.background,
        )

    async def close(self) -> None:
        """Stop the background tasks, then the producer, the engine and the metrics."""
        await self.background.close()
        await self.producer.stop()
        await self.engine.dispose()
        self.metrics.shutdown()


def build_core(
    settings: ServiceSettings,
    service_name: str,
    tracer_name: str,
    *,
    tracer_provider: TracerProvider | None = None,
) -> ServiceCore:
    """Build the common parts from a service's settings; nothing connects yet.

    1. Tracing: `tracer_provider` if given (tests collect spans), else one configured by the
       OTEL_* variables; the tracer is `tracer_name` of it.
    2. Metrics of `service_name`; a consumer is stuck after `consumer_stuck_seconds`.
    3. The engine of `database_url` (pool of `database_pool_size`), traced and measured, and
       its session factory.
    4. A producer for `kafka_bootstrap_servers` (client id `service_name`), not started.
    5. The background tasks, retried by `retry_policy()`.
    """
    provider = tracer_provider or create_tracer_provider(service_name)
    metrics = create_service_metrics(service_name)
    metrics.consumer_lag.stuck_after_seconds = settings.consumer_stuck_seconds
    engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
    instrument_engine(engine, provider, metrics.provider)
    return ServiceCore(
        service_name=service_name,
        tracer_provider=provider,
        tracer=provider.get_tracer(tracer_name),
        metrics=metrics,
        engine=engine,
        sessions=session_factory(engine),
        producer=make_producer(settings.kafka_bootstrap_servers, client_id=service_name),
        background=Background(settings.retry_policy()),
    )

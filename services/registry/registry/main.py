"""Registry wiring: engine, producer, outbox relay and the HTTP app."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from duban_shared.app import service_app
from duban_shared.clock import Clock, SystemClock
from duban_shared.db import create_engine, is_sqlite, session_factory
from duban_shared.kafka import make_producer
from duban_shared.outbox import OutboxRelay
from duban_shared.runtime import Background
from duban_shared.telemetry import create_tracer_provider
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from registry.models import OutboxMessage
from registry.settings import RegistrySettings

SERVICE = "duban-registry"


@dataclass
class RegistryService:
    """Everything the registry runs, built once and closed once."""

    settings: RegistrySettings
    clock: Clock
    tracer_provider: TracerProvider
    tracer: Tracer
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    producer: AIOKafkaProducer
    relay: OutboxRelay
    background: Background = field(default_factory=Background)

    async def start(self) -> None:
        """Connect to Kafka and start relaying the outbox."""
        await self.producer.start()
        self.background.spawn("registry-outbox", self.relay.run(self.background.stop))

    async def close(self) -> None:
        """Stop background work, then the producer and the engine."""
        await self.background.close()
        await self.producer.stop()
        await self.engine.dispose()


def build(
    settings: RegistrySettings,
    *,
    clock: Clock | None = None,
    tracer_provider: TracerProvider | None = None,
) -> RegistryService:
    """Wire the registry from its settings; nothing connects until start()."""
    clock = clock or SystemClock()
    provider = tracer_provider or create_tracer_provider(SERVICE)
    tracer = provider.get_tracer("duban.registry")
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    producer = make_producer(settings.kafka_bootstrap_servers, client_id=SERVICE)
    relay = OutboxRelay(
        OutboxMessage,
        sessions,
        producer,
        tracer,
        clock,
        poll_seconds=settings.outbox_poll_seconds,
        skip_locked=not is_sqlite(settings.database_url),
        topic_prefix=settings.topic_prefix,
    )
    return RegistryService(settings, clock, provider, tracer, engine, sessions, producer, relay)


def create_app(service: RegistryService | None = None) -> FastAPI:
    """Build the HTTP app; with no service given it builds and runs its own from settings."""
    from registry.api import router

    return service_app(
        "Duban registry", service or build(RegistrySettings()), router, owned=service is None
    )

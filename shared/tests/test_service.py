"""The service core: what build_core wires from the settings, and what close releases."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from duban_shared.service import ServiceCore, build_core
from duban_shared.settings import ServiceSettings
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import literal_column
from sqlmodel import select


@dataclass(kw_only=True)
class ExampleService(ServiceCore):
    """A service that extends the core with a part of its own."""

    greeting: str
    closed_own_part: bool = False

    async def close(self) -> None:
        self.closed_own_part = True
        await super().close()


def _settings(tmp_path: Path) -> ServiceSettings:
    return ServiceSettings(
        environment="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'core.db'}",
        kafka_bootstrap_servers="127.0.0.1:9",  # never contacted: nothing is started
        consumer_stuck_seconds=42,
        consumer_retry_seconds=0.5,
    )


async def test_build_core_wires_the_parts_from_the_settings_and_traces_the_database(
    tmp_path: Path,
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    core = build_core(
        _settings(tmp_path), "duban-example", "duban.example", tracer_provider=provider
    )
    assert core.service_name == "duban-example"
    assert core.tracer_provider is provider
    assert core.metrics.consumer_lag.stuck_after_seconds == 42
    assert core.background.retry.pause_seconds == 0.5
    async with core.sessions() as session:
        assert (await session.exec(select(literal_column("41 + 1")))).one() == 42
    assert any(
        "41 + 1" in str(s.attributes.get("db.statement")) for s in exporter.get_finished_spans()
    )
    await core.close()


async def test_a_service_extends_the_core_and_its_close_closes_both(tmp_path: Path) -> None:
    core = build_core(
        _settings(tmp_path), "duban-example", "duban.example", tracer_provider=TracerProvider()
    )
    assert set(core.parts()) == {f.name for f in fields(ServiceCore)}
    service = ExampleService(**core.parts(), greeting="你好")
    assert (service.sessions, service.producer, service.greeting) == (
        core.sessions,
        core.producer,
        "你好",
    )
    await service.close()
    assert service.closed_own_part
    assert service.background.stop.is_set()
    assert service.engine.pool.checkedout() == 0

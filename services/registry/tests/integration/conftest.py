"""A registry with the plan imported, built but not started (no Kafka), and its HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime

import httpx
import pytest
from duban_shared.clock import ManualClock
from registry.main import RegistryService, build, create_app
from registry.settings import RegistrySettings

from tests.harness import Spans
from tests.stack import import_plan_into

START = datetime.fromisoformat("2024-09-02T09:00:00+08:00")


@pytest.fixture
async def registry(
    make_database: Callable[[str], str], spans: Spans
) -> AsyncIterator[RegistryService]:
    service = build(
        RegistrySettings(database_url=make_database("registry"), environment="test"),
        clock=ManualClock(START),
        tracer_provider=spans.provider("duban-registry"),
    )
    await import_plan_into(service)
    yield service
    await service.close()  # never started: stops nothing on Kafka, disposes the engine


@pytest.fixture
async def http(registry: RegistryService) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(registry))
    async with httpx.AsyncClient(transport=transport, base_url="http://registry") as client:
        yield client

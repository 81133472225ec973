"""The app every service builds: what its lifespan does with the process it runs in."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from duban_shared.app import service_app
from duban_shared.metrics import create_service_metrics
from duban_shared.telemetry import create_tracer_provider
from fastapi import APIRouter


class _Service:
    """A service whose start builds some state, as a real one builds clients and caches."""

    def __init__(self) -> None:
        self.tracer_provider = create_tracer_provider(
            "duban-t", env={"OTEL_TRACES_EXPORTER": "none"}
        )
        self.metrics = create_service_metrics("duban-t", env={"OTEL_METRICS_EXPORTER": "none"})
        self.state: list[dict[str, object]] = []
        self.closed = False

    async def start(self) -> None:
        self.state = [{"n": n, "self": self} for n in range(1000)]

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def thawed() -> Iterator[None]:
    """No frozen objects before or after the test (the test process is no service's)."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def _collected(thing: object) -> bool:
    """Whether the collector still looks at `thing` (frozen objects are in no generation)."""
    return any(o is thing for o in gc.get_objects())


@pytest.mark.usefixtures("thawed")
async def test_an_owned_service_leaves_what_startup_built_out_of_collections() -> None:
    service = _Service()
    app = service_app("t", service, APIRouter(), owned=True)
    async with app.router.lifespan_context(app):
        assert service.state, "started by the lifespan"
        assert gc.get_freeze_count() > 0
        assert not _collected(service.state[0])
        later: list[object] = ["made after startup"]
        assert _collected(later)  # what requests make is collected as usual
    assert service.closed


@pytest.mark.usefixtures("thawed")
async def test_a_service_given_to_the_app_leaves_the_collector_alone() -> None:
    service = _Service()
    await service.start()
    app = service_app("t", service, APIRouter(), owned=False)
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() == 0
        assert _collected(service.state[0])

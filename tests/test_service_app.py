"""The app every service builds: what its lifespan does with the process it runs in."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import httpx
import pytest
from duban_shared.app import service_app
from duban_shared.kafka import RetryPolicy
from duban_shared.metrics import create_service_metrics
from duban_shared.runtime import Background
from duban_shared.telemetry import create_tracer_provider
from fastapi import APIRouter

from tests.harness import wait_for


class _Service:
    """A service whose start builds some state, as a real one builds clients and caches."""

    def __init__(self) -> None:
        self.tracer_provider = create_tracer_provider(
            "duban-t", env={"OTEL_TRACES_EXPORTER": "none"}
        )
        self.metrics = create_service_metrics("duban-t", env={"OTEL_METRICS_EXPORTER": "none"})
        self.state: list[dict[str, object]] = []
        self.closed = False
        self.background = Background()

    async def start(self) -> None:
        self.state = [{"n": n, "self": self} for n in range(1000)]

    async def close(self) -> None:
        await self.background.close()
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


async def test_health_fails_once_a_background_task_died_and_says_which() -> None:
    service = _Service()
    app = service_app("t", service, APIRouter(), owned=False)
    broken = asyncio.Event()

    async def consume() -> None:
        await service.background.stop.wait()

    async def relay() -> None:
        await broken.wait()
        raise ConnectionError("broker gone for good")

    service.background.spawn("status-consumer", consume())
    service.background.spawn("outbox-relay", relay())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        broken.set()

        async def died() -> bool:
            return bool(service.background.failures)

        await wait_for(died, what="the relay to die")
        answer = await http.get("/healthz")
        assert answer.status_code == 503
        body = answer.json()
        assert body["code"] == "background_task_died"
        assert "restart the process" in body["message"]
        assert body["details"] == ["outbox-relay: ConnectionError: broker gone for good"]
    await service.close()  # a clean stop is no failure
    assert service.background.failures == body["details"]


async def test_tasks_ended_by_the_stop_signal_are_no_failure() -> None:
    service = _Service()
    app = service_app("t", service, APIRouter(), owned=False)

    async def until_stopped() -> None:
        await service.background.stop.wait()
        raise RuntimeError("raised while stopping")

    service.background.spawn("consumer", until_stopped())
    await service.close()
    assert service.background.failures == []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
        assert (await http.get("/healthz")).status_code == 200


async def test_health_names_a_consumer_that_has_records_waiting_and_does_not_advance() -> None:
    service = _Service()
    lag = service.metrics.consumer_lag
    now = [1000.0]
    lag.clock, lag.stuck_after_seconds = (lambda: now[0]), 60.0
    tracker = lag.tracker("duban-progress.status")
    app = service_app("t", service, APIRouter(), owned=False)
    key = ("duban.status.v1", "duban-progress.status", 4)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
        lag.record(key, 12, position=300)
        now[0] += 59
        assert (await http.get("/healthz")).status_code == 200  # not yet the stuck time
        now[0] += 2
        lag.record(key, 15, position=300)  # more arrived, nothing applied
        answer = await http.get("/healthz")
        assert answer.status_code == 503
        body = answer.json()
        assert body["code"] == "consumer_stuck"
        assert body["details"] == [
            "duban-progress.status on duban.status.v1[4]: 15 record(s) waiting, no progress for 61s"
        ]
        assert (await http.get("/livez")).status_code == 200  # a restart would not help
        stuck_gauge = [
            line
            for line in (await http.get("/metrics")).text.splitlines()
            if line.startswith("duban_consumer_stuck{")
        ]
        assert len(stuck_gauge) == 1 and stuck_gauge[0].endswith(" 1.0")
        lag.record(key, 14, position=301)  # it advanced
        assert (await http.get("/healthz")).status_code == 200
        lag.record(key, 0, position=315)
        now[0] += 600  # idle without lag is not stuck
        assert (await http.get("/healthz")).status_code == 200
        tracker.clear()
        assert lag.partitions() == []
    await service.close()


async def test_health_is_not_ready_until_a_dependency_answers_then_ready_by_itself() -> None:
    service = _Service()
    service.background = Background(RetryPolicy(pause_seconds=0.01, max_pause_seconds=0.01))
    app = service_app("t", service, APIRouter(), owned=False)
    reachable = asyncio.Event()
    tries: list[int] = []

    async def connect() -> None:
        tries.append(1)
        if not reachable.is_set():
            raise ConnectionRefusedError("broker not up yet")

    service.background.start_soon("kafka producer", connect)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:

        async def tried_a_few_times() -> bool:
            return len(tries) >= 3

        await wait_for(tried_a_few_times, what="a few attempts to connect")
        answer = await http.get("/healthz")
        assert answer.status_code == 503
        assert answer.json()["code"] == "not_ready"
        assert answer.json()["details"] == ["kafka producer"]
        assert (await http.get("/livez")).status_code == 200  # waiting is not dying
        reachable.set()
        await service.background.started()
        assert (await http.get("/healthz")).json() == {"status": "ok"}
    assert service.background.failures == []  # a start that ended is no failure
    await service.close()


async def test_a_start_that_fails_for_good_is_a_dead_task() -> None:
    service = _Service()
    app = service_app("t", service, APIRouter(), owned=False)

    async def misconfigured() -> None:
        raise ValueError("DUBAN_KAFKA_BOOTSTRAP_SERVERS names no port")

    service.background.start_soon("kafka producer", misconfigured)

    async def died() -> bool:
        return bool(service.background.failures)

    await wait_for(died, what="the start to fail")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as http:
        assert (await http.get("/livez")).json()["code"] == "background_task_died"
    await service.close()

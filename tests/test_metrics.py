"""Metrics as Prometheus scrapes them: each service's own GET /metrics, through the real stack."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping

import httpx
from aiokafka import AIOKafkaProducer, ConsumerRecord
from duban_shared import topics
from duban_shared.kafka import make_consumer, run_batch_consumer
from duban_shared.metrics import ServiceMetrics, create_service_metrics
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import wait_for
from tests.stack import FORESTRY_MAIL, PLAN, Stack

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(client: httpx.AsyncClient) -> Samples:
    """GET /metrics of one service's app."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of a name whose labels include the given ones."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def names(samples: Samples) -> set[str]:
    """The metric names of a scrape."""
    return {n for n, _ in samples}


async def test_each_service_exposes_its_own_metrics(stack: Stack) -> None:
    # Ingestion: accepted, replayed, rejected with a stable code; single and batch endpoints.
    blocked = await stack.post_event(stack.forestry, 35, "blocked", percent=40)
    replay = await stack.post_event(
        stack.forestry,
        35,
        "blocked",
        percent=40,
        event_id=blocked.json()["event_id"],
        occurred_at=stack.clock.now().isoformat(),
    )
    unknown = await stack.post_event(stack.forestry, 99, "on_track")
    assert (blocked.status_code, replay.status_code, unknown.status_code) == (202, 202, 404)
    batch = await stack.progress_http.post(
        "/v1/events/batch",
        json={
            "events": [
                {
                    "event_id": str(uuid.uuid4()),
                    "work_point_id": f"{PLAN}/35",
                    "status": "blocked",
                    "percent": 45,
                    "occurred_at": stack.clock.now().isoformat(),
                },
                {
                    "event_id": str(uuid.uuid4()),
                    "work_point_id": f"{PLAN}/41",
                    "status": "on_track",
                    "occurred_at": stack.clock.now().isoformat(),
                },
            ]
        },
        headers=await stack.auth(stack.forestry),
    )
    assert batch.json()["accepted"] == 1, batch.text
    no_token = await stack.progress_http.post("/v1/events", json={})
    assert no_token.status_code == 401

    # The stall emails 市林业局; the notifier counts the message and how long it took.
    async def mailed() -> bool:
        return len(stack.smtp.mailbox(FORESTRY_MAIL)) >= 1

    await wait_for(mailed, what="the stall email")
    applied_id = uuid.UUID(batch.json()["results"][0]["event_id"])
    await stack.until_applied(blocked)
    await stack.until_applied(
        httpx.Response(202, json={"event_id": str(applied_id), "status": "accepted"})
    )

    progress = await scrape(stack.progress_http)
    ingest = "duban_ingest_events_total"
    assert value(progress, ingest, outcome="accepted") == 2
    assert value(progress, ingest, outcome="replayed") == 1
    assert value(progress, ingest, outcome="rejected", error_type="unknown_work_point") == 1
    assert value(progress, ingest, outcome="rejected", error_type="agency_not_responsible") == 1
    assert value(progress, ingest, outcome="rejected", error_type="missing_token") == 1
    assert value(progress, ingest, outcome="rejected") == 3
    # Both accepted reports were applied: the histogram saw each once.
    assert value(progress, "duban_event_processing_duration_seconds_count") == 2
    assert value(progress, "duban_event_processing_duration_seconds_bucket", le="+Inf") == 2
    assert value(progress, "duban_event_processing_duration_seconds_sum") >= 0
    # One open episode: red, blocked (the gauge reads the database, cached).
    stalls = "duban_stalls_open"
    assert value(progress, stalls, duban_stall_level="red", duban_stall_reason="blocked") == 1
    assert value(progress, stalls) == 1
    # HTTP server metrics come with the FastAPI instrumentation, on the service's provider.
    assert any(n.startswith("http_server_") for n in names(progress))

    async def notifier_counted() -> bool:
        scraped = await scrape(stack.notifier_http)
        return value(scraped, "duban_notifications_total", duban_notification_channel="email") >= 1

    await wait_for(notifier_counted, what="the notifier to count the email")
    notifier = await scrape(stack.notifier_http)
    sent = {"duban_notification_channel": "email", "outcome": "sent"}
    assert value(notifier, "duban_notifications_total", **sent) == 1
    assert value(notifier, "duban_notifications_total") == 1  # nothing failed, retried, dropped
    delivery = "duban_notification_delivery_duration_seconds"
    assert value(notifier, f"{delivery}_count", duban_notification_channel="email") == 1
    # The stack's clock did not move: planned and sent at the same instant of domain time.
    assert value(notifier, f"{delivery}_sum") == 0
    assert value(notifier, f"{delivery}_bucket", le="1.0") == 1

    # Each /metrics shows its own service only, though the three share this process.
    registry = await scrape(stack.registry_http)
    ours = {
        "duban_ingest_events_total",
        "duban_stalls_open",
        "duban_event_processing_duration_seconds_count",
        "duban_notifications_total",
        "duban_notification_delivery_duration_seconds_count",
        "duban_consumer_lag",
    }
    assert names(progress) & ours == ours - {
        "duban_notifications_total",
        "duban_notification_delivery_duration_seconds_count",
    }
    assert names(notifier) & ours == {
        "duban_notifications_total",
        "duban_notification_delivery_duration_seconds_count",
        "duban_consumer_lag",
    }
    assert names(registry) & ours == set()
    assert value(registry, "target_info", service_name="duban-registry") == 1
    assert value(progress, "target_info", service_name="duban-progress") == 1
    assert value(notifier, "target_info", service_name="duban-notifier") == 1


async def test_consumer_lag_reaches_zero_for_every_consumer_of_a_service(stack: Stack) -> None:
    response = await stack.post_event(stack.forestry, 35, "on_track", percent=50)
    await stack.until_applied(response)
    prefix = stack.topic_prefix
    expected = {
        ("progress", f"{prefix}duban-progress.status", prefix + topics.STATUS),
        ("progress", f"{prefix}duban-progress.work-points", prefix + topics.WORK_POINTS),
        ("progress", f"{prefix}duban-progress.alerts", prefix + topics.ALERTS),
        ("notifier", f"{prefix}duban-notifier.stalls", prefix + topics.STALLS),
        ("notifier", f"{prefix}duban-notifier.agencies", prefix + topics.AGENCIES),
    }
    clients = {"progress": stack.progress_http, "notifier": stack.notifier_http}

    async def caught_up() -> bool:
        for service, group, topic in expected:
            scraped = await scrape(clients[service])
            series = {
                (dict(ls)["messaging_destination_partition_id"], v)
                for (n, ls), v in scraped.items()
                if n == "duban_consumer_lag"
                and dict(ls).get("messaging_consumer_group_name") == group
                and dict(ls).get("messaging_destination_name") == topic
            }
            # Every partition of the topic is assigned to the service's one consumer.
            if not series or any(v != 0 for _, v in series):
                return False
        return True

    await wait_for(caught_up, what="every consumer's lag to read 0")
    # A service reports only its own groups.
    progress = await scrape(stack.progress_http)
    groups = {
        dict(ls)["messaging_consumer_group_name"]
        for (n, ls) in progress
        if n == "duban_consumer_lag"
    }
    assert groups == {g for s, g, _ in expected if s == "progress"}


async def test_consumer_lag_counts_records_produced_while_the_consumer_was_away(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic = topic_prefix + topics.STALLS
    group = f"{topic_prefix}lag-test"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for n in range(3):  # one key, so one partition
            await producer.send_and_wait(topic, f"record {n}".encode(), key=b"wp/1")
    finally:
        await producer.stop()

    metrics = create_service_metrics("lag-test", env={"OTEL_METRICS_EXPORTER": "none"})
    gate = asyncio.Event()
    handled: list[int] = []

    async def handle(records: list[ConsumerRecord[bytes, bytes]]) -> None:
        await gate.wait()  # the consumer has the records but has not applied them yet
        handled.extend(r.offset for r in records)

    consumer = make_consumer(kafka_bootstrap, group, topic, client_id="lag-test")
    await consumer.start()
    stop = asyncio.Event()
    loop = asyncio.create_task(
        run_batch_consumer(
            consumer, handle, stop, name="lag-test", lag=metrics.consumer_lag.tracker(group)
        )
    )
    try:
        await wait_for(lambda: _lag_is(metrics, group, 3), what="the backlog of 3 as lag")
        gate.set()
        await wait_for(lambda: _lag_is(metrics, group, 0), what="the lag to drop to 0")
        assert handled == [0, 1, 2]
    finally:
        stop.set()
        await loop
        await consumer.stop()
    # A stopped consumer reports no partition any more.
    assert not _lag_series(parse((await metrics.exposition()).decode()), group)
    metrics.shutdown()


def _lag_series(samples: Samples, group: str) -> Mapping[str, float]:
    return {
        dict(ls)["messaging_destination_partition_id"]: v
        for (n, ls), v in samples.items()
        if n == "duban_consumer_lag" and dict(ls).get("messaging_consumer_group_name") == group
    }


async def _lag_is(metrics: ServiceMetrics, group: str, expected: float) -> bool:
    series = _lag_series(parse((await metrics.exposition()).decode()), group)
    return bool(series) and sum(series.values()) == expected

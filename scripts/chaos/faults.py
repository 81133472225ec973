"""Poison records and the health watch.

Poison: a report dated 2001 and a work point change due in 2030, both produced straight to
the services' Kafka topics (as a buggy or hostile producer would) and both sent through the
public APIs (which may refuse them at the edge with 422, or accept them and leave the consumer
to park them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from duban_shared import topics

from scripts.chaos.load import Agency, Tokens
from scripts.chaos.stack import PLAN_SLUG, Stack


@dataclass
class Poison:
    """One poison record and how it was sent."""

    name: str
    route: str  # "kafka" or "api"
    work_point_id: str
    event_id: str | None = None  # a status report's id
    answer: int | None = None  # the API's answer (None: produced to Kafka)
    answer_code: str = ""


async def _latest_snapshot(bootstrap: str, work_point_id: str) -> dict[str, Any]:
    """The registry's last snapshot of a work point, read from its compacted topic."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        topic = topics.WORK_POINTS
        parts = consumer.partitions_for_topic(topic) or set()
        if not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in parts]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        found: dict[str, Any] | None = None
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    if record.key == work_point_id.encode() and record.value:
                        found = json.loads(record.value)
        if found is None:
            raise RuntimeError(f"no snapshot of {work_point_id} on {topic}")
        return found
    finally:
        await consumer.stop()


async def produce_poison(stack: Stack, agency: Agency, code: str) -> list[Poison]:
    """Produce the two poison records straight to the topics progress consumes."""
    wp = f"{PLAN_SLUG}/{code}"
    snapshot = await _latest_snapshot(stack.bootstrap, wp)
    snapshot["due_on"] = "2030-12-31"
    if "event_id" in snapshot:
        snapshot["event_id"] = str(uuid.uuid4())
    report_id = str(uuid.uuid4())
    report = {
        "event_id": report_id,
        "occurred_at": "2001-06-01T10:00:00+08:00",
        "received_at": "2001-06-01T10:00:05+08:00",
        "work_point_id": wp,
        "agency_id": str(agency.id),
        "status": "on_track",
        "percent": 50,
        "note": "poison: dated 2001",
    }
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topics.STATUS, json.dumps(report).encode(), key=wp.encode())
        await producer.send_and_wait(
            topics.WORK_POINTS, json.dumps(snapshot).encode(), key=wp.encode()
        )
    finally:
        await producer.stop()
    return [
        Poison("report dated 2001", "kafka", wp, event_id=report_id),
        Poison("work point due 2030", "kafka", wp),
    ]


async def post_poison(
    progress: httpx.AsyncClient,
    registry: httpx.AsyncClient,
    tokens: Tokens,
    agency: Agency,
    office_token: str,
    code: str,
) -> list[Poison]:
    """Send the same two poison records through the public APIs."""
    wp = f"{PLAN_SLUG}/{code}"
    report_id = str(uuid.uuid4())
    body = {
        "event_id": report_id,
        "work_point_id": wp,
        "status": "on_track",
        "percent": 50,
        "note": "poison: dated 2001",
        "occurred_at": "2001-06-01T10:00:00+08:00",
    }
    report = Poison("report dated 2001", "api", wp, event_id=report_id)
    change = Poison("work point due 2030", "api", wp)
    for _ in range(60):  # through whatever fault runs at the moment
        token = await tokens.get(agency)
        with contextlib.suppress(httpx.HTTPError):
            answer = await progress.post(
                "/v1/events", json=body, headers={"Authorization": f"Bearer {token}"}
            )
            report.answer, report.answer_code = answer.status_code, _code(answer)
            if answer.status_code < 500:
                break
        await asyncio.sleep(2)
    for _ in range(60):
        with contextlib.suppress(httpx.HTTPError):
            answer = await registry.put(
                f"/v1/plans/{PLAN_SLUG}/work-points/{code}/policy",
                json={"due_on": "2030-12-31"},
                headers={"Authorization": f"Bearer {office_token}"},
            )
            change.answer, change.answer_code = answer.status_code, _code(answer)
            if answer.status_code < 500:
                break
        await asyncio.sleep(2)
    return [report, change]


def _code(answer: httpx.Response) -> str:
    try:
        return str(answer.json().get("code", ""))
    except ValueError:
        return ""


@dataclass
class HealthWatch:
    """Polls every process's /healthz each second: how long each was not ok, at most and in
    all (a killed process counts as not ok until it answers again)."""

    stack: Stack
    longest: dict[str, float] = field(default_factory=dict)
    total: dict[str, float] = field(default_factory=dict)
    _since: dict[str, float] = field(default_factory=dict)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop`."""
        async with httpx.AsyncClient(timeout=2) as http:
            while not stop.is_set():
                started = time.monotonic()
                names = [n for n, p in self.stack.procs.items() if p.health_url]
                results = await asyncio.gather(*(self._ok(http, n) for n in names))
                now = time.monotonic()
                for name, ok in zip(names, results, strict=True):
                    if ok:
                        self._close(name, now)
                    else:
                        self._since.setdefault(name, now)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, 1.0 - (now - started)))
        now = time.monotonic()
        for name in list(self._since):
            self._close(name, now)

    async def _ok(self, http: httpx.AsyncClient, name: str) -> bool:
        proc = self.stack.procs[name]
        if proc.health_url is None or proc.starts == 0 or (not proc.alive and _retired(name)):
            return True
        try:
            return (await http.get(proc.health_url)).status_code == 200
        except httpx.HTTPError:
            return False

    def _close(self, name: str, now: float) -> None:
        began = self._since.pop(name, None)
        if began is None:
            return
        span = now - began
        self.longest[name] = max(self.longest.get(name, 0.0), span)
        self.total[name] = self.total.get(name, 0.0) + span


def _retired(name: str) -> bool:
    """The wrong-clock worker is stopped on purpose; it is not watched after that."""
    return name == "worker-2027"

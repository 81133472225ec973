"""Real infrastructure for tests: Kafka, PostgreSQL, an SMTP server, and captured spans.

The broker and PostgreSQL are started by `scripts/test.sh` (what `make test` runs); point the
tests elsewhere with DUBAN_TEST_KAFKA_BOOTSTRAP and DUBAN_TEST_PG_URL. Each test gets its own
topics (a random prefix) and its own databases, so no test depends on another.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from duban_shared.migrations import upgrade
from duban_shared.telemetry import create_tracer_provider
from duban_shared.topics import TopicSpec, read_topic_list
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy.engine import make_url

from tests import containers

ROOT = Path(__file__).resolve().parents[1]
PLAN_PATH = ROOT / "data" / "plans" / "zhaoqing-digital-2024.txt"
TOPICS_FILE = ROOT / "deploy" / "kafka" / "topics.txt"
# Tests read metrics from each service's /metrics; nothing is pushed to a collector.
os.environ.setdefault("OTEL_METRICS_EXPORTER", "none")
MIGRATIONS = {
    name: ROOT / "services" / name / name / "migrations"
    for name in ("registry", "progress", "notifier")
}


async def wait_for(
    condition: Callable[[], Awaitable[bool]], *, within: float = 30.0, what: str = "condition"
) -> None:
    """Poll an async condition until it holds; fail with `what` after the timeout."""
    deadline = time.monotonic() + within
    while True:
        if await condition():
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------- backend

_infrastructure: containers.Infrastructure | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    """DUBAN_TEST_BACKEND=containers: Kafka and PostgreSQL as containers for this session."""
    global _infrastructure
    if not containers.selected():
        return
    _infrastructure = containers.start()
    os.environ["DUBAN_TEST_KAFKA_BOOTSTRAP"] = _infrastructure.kafka_bootstrap
    os.environ["DUBAN_TEST_PG_URL"] = _infrastructure.pg_url
    print(
        f"\ntest backend: containers (Kafka {_infrastructure.kafka_bootstrap}, "
        f"PostgreSQL 127.0.0.1:{containers.PG_PORT})"
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _infrastructure
    if _infrastructure is not None:
        _infrastructure.stop()
        _infrastructure = None


# ---------------------------------------------------------------- Kafka


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """Address of the test broker; fails loudly (never skips) when it is not running."""
    bootstrap = os.environ.get("DUBAN_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:19092")
    host, _, port = bootstrap.partition(":")
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError:
        pytest.fail(
            f"No Kafka broker at {bootstrap}. Start one with `bash scripts/kafka.sh start` "
            "(make test does it) or set DUBAN_TEST_KAFKA_BOOTSTRAP.",
            pytrace=False,
        )
    return bootstrap


def topic_specs() -> list[TopicSpec]:
    """Read deploy/kafka/topics.txt: the one list of topics and partition counts."""
    return read_topic_list(TOPICS_FILE)


@pytest.fixture
async def topic_prefix(kafka_bootstrap: str) -> AsyncIterator[str]:
    """Create this test's own copy of every topic; delete them afterwards."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    names = []
    try:
        new = []
        for name, partitions, configs in topic_specs():
            names.append(prefix + name)
            new.append(NewTopic(prefix + name, partitions, 1, topic_configs=configs))
        await admin.create_topics(new)
        yield prefix
    finally:
        try:
            await admin.delete_topics(names)
        finally:
            await admin.close()


async def committed_offsets(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    """Return a consumer group's committed offsets by (topic, partition)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}


# ---------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """URL of the test PostgreSQL server's maintenance database; fails loudly if down."""
    url = os.environ.get("DUBAN_TEST_PG_URL", "postgresql+psycopg://duban@127.0.0.1:15432/postgres")
    try:
        with psycopg.connect(_libpq(url), connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"No PostgreSQL at {url} ({exc}). Start it with `bash scripts/postgres.sh start` "
            "(make test does it) or set DUBAN_TEST_PG_URL.",
            pytrace=False,
        )
    return url


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def make_database(pg_admin_url: str) -> Iterator[Callable[[str], str]]:
    """Factory: a fresh, migrated PostgreSQL database for a service; dropped afterwards."""
    created: list[str] = []

    def make(service: str) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}_{service}"
        with psycopg.connect(_libpq(pg_admin_url), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        url = make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
        upgrade(MIGRATIONS[service], url)
        return url

    yield make
    with psycopg.connect(_libpq(pg_admin_url), autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Callable[[str], str]:
    """Factory: a fresh, migrated SQLite database for a service."""

    def make(service: str) -> str:
        url = f"sqlite+aiosqlite:///{tmp_path / service}.db"
        upgrade(MIGRATIONS[service], url)
        return url

    return make


# ---------------------------------------------------------------- SMTP


@dataclass
class Refusal:
    """A reply the sink gives instead of accepting: at RCPT TO or at the end of DATA."""

    stage: str  # "RCPT" or "DATA"
    reply: str  # the whole SMTP reply, e.g. "550 5.1.1 user unknown"
    address: str | None = None  # only for this recipient; None: for any
    times: int | None = 1  # how many times; None: until `recover()`


@dataclass
class SmtpSink:
    """A real SMTP server on loopback that keeps every message and can refuse on demand."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    fail_next: list[str] = field(default_factory=list)  # SMTP replies for the next DATA
    refusals: list[Refusal] = field(default_factory=list)
    replies: list[tuple[str, str]] = field(default_factory=list)  # (stage, reply) refusals given
    lock: threading.Lock = field(default_factory=threading.Lock)

    def refuse(
        self, stage: str, reply: str, *, address: str | None = None, times: int | None = 1
    ) -> None:
        """Answer RCPT TO (`stage="RCPT"`) or DATA with `reply`, `times` times (None: always)."""
        assert stage in ("RCPT", "DATA"), stage
        with self.lock:
            self.refusals.append(Refusal(stage, reply, address, times))

    def recover(self) -> None:
        """Accept everything again."""
        with self.lock:
            self.refusals.clear()
            self.fail_next.clear()

    def mailbox(self, address: str) -> list[EmailMessage]:
        """Messages delivered to one recipient."""
        with self.lock:
            return [m for m in self.messages if address in m.get("X-Rcpt-To", "")]

    def _refusal(self, stage: str, addresses: list[str]) -> str | None:
        """The reply of the first matching refusal, used up once (call with the lock held)."""
        for refusal in self.refusals:
            if refusal.stage == stage and (refusal.address is None or refusal.address in addresses):
                if refusal.times is not None:
                    refusal.times -= 1
                    if refusal.times <= 0:
                        self.refusals.remove(refusal)
                self.replies.append((stage, refusal.reply))
                return refusal.reply
        return None

    async def handle_RCPT(
        self,
        _server: SMTP,
        _session: Session,
        envelope: Envelope,
        address: str,
        _rcpt_options: list[str],
    ) -> str:
        """Accept the recipient, or answer with a refusal set for it."""
        with self.lock:
            refused = self._refusal("RCPT", [address])
        if refused is not None:
            return refused
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:
        """Store the message, or answer with a queued failure or a refusal."""
        with self.lock:
            if self.fail_next:
                reply = self.fail_next.pop(0)
                self.replies.append(("DATA", reply))
                return reply
            refused = self._refusal("DATA", list(envelope.rcpt_tos))
            if refused is not None:
                return refused
            raw = envelope.original_content or b""
            msg = message_from_bytes(raw, policy=policy.default)
            assert isinstance(msg, EmailMessage)
            msg["X-Rcpt-To"] = ",".join(envelope.rcpt_tos)
            self.messages.append(msg)
        return "250 OK"


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    """An aiosmtpd server for one test."""
    sink = SmtpSink(port=free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    yield sink
    controller.stop()


# ---------------------------------------------------------------- spans


@dataclass
class Spans:
    """Spans finished by the services under test, one TracerProvider per service."""

    exporter: InMemorySpanExporter

    def provider(self, service: str) -> TracerProvider:
        """A provider for a service that exports into this collection only."""
        return create_tracer_provider(
            service,
            processors=[SimpleSpanProcessor(self.exporter)],
            env={"OTEL_TRACES_EXPORTER": "none"},
        )

    def all(self) -> list[ReadableSpan]:
        """Every finished span so far."""
        return list(self.exporter.get_finished_spans())

    def chain_to_root(self, span: ReadableSpan) -> list[ReadableSpan]:
        """The span and its finished ancestors, child first."""
        assert span.context is not None
        by_id = {s.context.span_id: s for s in self.in_trace(span.context.trace_id) if s.context}
        chain = [span]
        while chain[-1].parent is not None and chain[-1].parent.span_id in by_id:
            chain.append(by_id[chain[-1].parent.span_id])
        return chain

    def in_trace(self, trace_id: int) -> list[ReadableSpan]:
        """The finished spans of one trace."""
        return [s for s in self.all() if s.context is not None and s.context.trace_id == trace_id]


def service_of(span: ReadableSpan) -> Any:
    """The service.name of a span."""
    return span.resource.attributes.get("service.name")


@pytest.fixture
def spans() -> Spans:
    """Captured spans of this test."""
    return Spans(InMemorySpanExporter())


async def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    """Return the end offset of every partition of a topic."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in ends.items()}

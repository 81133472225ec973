"""Retention on PostgreSQL and SQLite: a simulated year pruned to what the settings keep, in
batches, while the hot paths write; and the Kafka rule checked against a real topic."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from duban_shared import topics
from duban_shared.clock import ManualClock
from duban_shared.db import create_engine, session_factory
from duban_shared.inbox import first_delivery
from duban_shared.metrics import create_service_metrics
from duban_shared.outbox import outbox_row
from duban_shared.retention import MS_PER_DAY, RETENTION_TOO_SHORT, RetentionError
from notifier.settings import NotifierSettings
from notifier.store import models as nm
from opentelemetry.sdk.trace import TracerProvider
from progress.settings import ProgressSettings
from progress.store import models as pm
from registry.settings import RegistrySettings
from registry.store import models as rm
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.harness import Spans, wait_for

YEAR_START = datetime(2024, 1, 1, 9, tzinfo=UTC)
DAYS = 366  # 2024
PER_DAY = 12  # rows of each table a day
BATCH = 500
TRACER = TracerProvider().get_tracer("test")


@pytest.fixture(params=["postgresql", "sqlite"])
def database(
    request: pytest.FixtureRequest,
    make_database: Callable[[str], str],
    sqlite_url: Callable[[str], str],
) -> Callable[[str], str]:
    """A fresh migrated database per service, on the backend of the parameter."""
    return make_database if request.param == "postgresql" else sqlite_url


def _day(n: int) -> datetime:
    return YEAR_START + timedelta(days=n)


async def _count(engine: AsyncEngine, model: type[Any], *where: Any) -> int:
    async with engine.connect() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(model).where(*where))).scalar_one()
        )


async def _fill_progress(engine: AsyncEngine) -> None:
    """A year of progress's growing tables: PER_DAY rows a day in each; the last day's outbox
    rows not published yet."""
    inbox, outbox, ingested = [], [], []
    for n in range(DAYS):
        at = _day(n)
        for _ in range(PER_DAY):
            inbox.append({"event_id": uuid.uuid4(), "topic": topics.STATUS, "processed_at": at})
            outbox.append(
                {
                    "topic": topics.STALLS,
                    "key": "wp",
                    "payload": b"{}",
                    "created_at": at,
                    "published_at": at if n < DAYS - 1 else None,
                }
            )
            ingested.append(
                {
                    "event_id": uuid.uuid4(),
                    "agency_id": uuid.uuid4(),
                    "body_sha256": "0" * 64,
                    "partition": 0,
                    "offset": n,
                    "accepted_at": at,
                }
            )
    async with engine.begin() as conn:
        await conn.execute(insert(pm.Inbox), inbox)
        await conn.execute(insert(pm.OutboxMessage), outbox)
        await conn.execute(insert(pm.IngestedEvent), ingested)


def _alert(state: str, fired: datetime) -> nm.Alert:
    return nm.Alert(
        episode_id=uuid.uuid4(),
        work_point_id="wp",
        number=1,
        code="2024-001",
        title="t",
        level="red",
        lead_agencies=[],
        state=state,
        fired_at=fired,
        updated_at=fired,
    )


@dataclass
class NotifierYear:
    open_alert: uuid.UUID
    resolved_alert: uuid.UUID


async def _fill_notifier(engine: AsyncEngine) -> NotifierYear:
    """A year of the notifier's: inbox ids; deliveries (sent or failed, one a day still
    pending), half of a resolved alert, half of one still firing; acknowledgement links."""
    open_alert, resolved_alert = _alert("firing", YEAR_START), _alert("resolved", YEAR_START)
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        session.add_all([open_alert, resolved_alert])
    inbox, log, codes = [], [], []
    for n in range(DAYS):
        at = _day(n)
        for i in range(PER_DAY):
            inbox.append({"event_id": uuid.uuid4(), "topic": topics.STALLS, "processed_at": at})
            log.append(
                {
                    "transition_event_id": uuid.uuid4(),
                    "episode_id": uuid.uuid4(),
                    "alert_id": open_alert.id if i % 2 else resolved_alert.id,
                    "work_point_id": "wp",
                    "agency_id": uuid.uuid4(),
                    "channel": "email",
                    "recipient": f"r{i}@example.org",
                    "status": "pending" if i == 0 else ("sent" if i % 3 else "failed"),
                    "created_at": at,
                }
            )
            codes.append(
                {
                    "code": uuid.uuid4().hex[:16],
                    "alert_id": resolved_alert.id,
                    "agency_id": uuid.uuid4(),
                    "created_at": at,
                    "expires_at": at + timedelta(hours=72),
                }
            )
    async with engine.begin() as conn:
        await conn.execute(insert(nm.Inbox), inbox)
        await conn.execute(insert(nm.NotificationLog), log)
        await conn.execute(insert(nm.AckCode), codes)
    return NotifierYear(open_alert.id, resolved_alert.id)


def _kept_days(keep_days: int, now: datetime) -> int:
    """Days of the generated year stamped at or after now - keep."""
    cutoff = now - timedelta(days=keep_days)
    return sum(1 for n in range(DAYS) if _day(n) >= cutoff)


async def test_a_simulated_year_is_pruned_in_batches_while_the_hot_path_writes(
    database: Callable[[str], str], spans: Spans
) -> None:
    url = database("progress")
    settings = ProgressSettings(
        database_url=url,
        retention_inbox_days=14,
        retention_outbox_days=7,
        retention_ingested_days=30,
        retention_batch_size=BATCH,
    )
    engine = create_engine(url)
    sessions = session_factory(engine)
    clock = ManualClock(_day(DAYS - 1) + timedelta(hours=8))  # the year's last evening
    metrics = create_service_metrics("duban-progress-test")
    from progress.store.retention import pruner

    hot: list[uuid.UUID] = []

    async def hot_path(_pause: float) -> None:
        # between two batches, a consumer applies an event and writes an outbox row: its own
        # transaction goes through while pruning is under way
        event_id = uuid.uuid4()
        async with sessions() as session, session.begin():
            assert await first_delivery(session, pm.Inbox, event_id, topics.STATUS, clock.now())
            row = outbox_row(pm.OutboxMessage, topics.STALLS, "wp", b"{}", clock.now())
            row.published_at = clock.now()
            session.add(row)
        hot.append(event_id)

    try:
        await _fill_progress(engine)
        before = await _count(engine, pm.Inbox)
        assert before == DAYS * PER_DAY
        tracer = spans.provider("duban-progress").get_tracer("test")
        job = pruner(settings, sessions, tracer, clock, clock, metrics)
        job.sleep = hot_path
        dry = {o.table: o.rows for o in await job.prune(dry_run=True)}
        assert await _count(engine, pm.Inbox) == before  # a dry run deletes nothing

        outcomes = {o.table: o for o in await job.prune()}

        now = clock.now()
        expected_kept = {
            "inbox": _kept_days(14, now) * PER_DAY,
            "ingested_event": _kept_days(30, now) * PER_DAY,
        }
        assert await _count(engine, pm.Inbox) == expected_kept["inbox"] + len(hot)
        assert await _count(engine, pm.IngestedEvent) == expected_kept["ingested_event"]
        # published rows older than 7 days went; the unpublished last day's rows stay
        published_kept = (_kept_days(7, now) - 1) * PER_DAY
        assert await _count(engine, pm.OutboxMessage) == published_kept + PER_DAY + len(hot)
        assert (
            await _count(engine, pm.OutboxMessage, pm.OutboxMessage.published_at.is_(None))
            == PER_DAY
        )
        for table, kept in expected_kept.items():
            gone = DAYS * PER_DAY - kept
            assert outcomes[table].rows == dry[table] == gone
            assert outcomes[table].batches == -(-gone // BATCH)  # at most BATCH rows a statement
        assert outcomes["outbox"].rows == dry["outbox"]
        assert hot and all([await _inbox_has(sessions, e) for e in hot])
        exposition = (await metrics.exposition()).decode()
        assert 'duban_retention_pruned_total{db_collection_name="inbox"' in exposition
        assert "duban_retention_last_prune" in exposition

        # each round is a span, with a child per table
        rounds = [s for s in spans.all() if s.name == "retention prune"]
        assert len(rounds) == 2  # the dry run and this one
        inbox_span = [s for s in spans.all() if s.name == "retention prune inbox"][-1]
        assert inbox_span.parent is not None
        assert inbox_span.parent.span_id == rounds[-1].context.span_id
        assert inbox_span.attributes["duban.retention.batches"] == outcomes["inbox"].batches

        # a second round finds nothing more
        again = {o.table: o.rows for o in await job.prune()}
        assert again == {"inbox": 0, "outbox": 0, "ingested_event": 0}
    finally:
        metrics.shutdown()
        await engine.dispose()


async def _inbox_has(sessions: Any, event_id: uuid.UUID) -> bool:
    async with sessions() as session:
        return await session.get(pm.Inbox, event_id) is not None


async def test_the_notifier_keeps_open_alerts_deliveries_and_what_is_pending(
    database: Callable[[str], str],
) -> None:
    url = database("notifier")
    settings = NotifierSettings(
        database_url=url,
        retention_inbox_days=14,
        retention_notification_log_days=90,
        retention_ack_code_days=30,
        retention_batch_size=BATCH,
    )
    engine = create_engine(url)
    clock = ManualClock(_day(DAYS - 1) + timedelta(hours=8))
    from notifier.store.retention import pruner

    try:
        year = await _fill_notifier(engine)
        job = pruner(settings, session_factory(engine), TRACER, clock)
        job.sleep = lambda _s: asyncio.sleep(0)
        outcomes = {o.table: o for o in await job.prune()}
        now = clock.now()
        assert await _count(engine, nm.Inbox) == _kept_days(14, now) * PER_DAY
        log = nm.NotificationLog
        # an open alert's deliveries and pending ones stay, whatever their age
        assert await _count(engine, log, log.alert_id == year.open_alert) == DAYS * PER_DAY // 2
        assert await _count(engine, log, log.status == "pending") == DAYS
        old_done_of_resolved = (DAYS - _kept_days(90, now)) * (PER_DAY // 2 - 1)
        assert outcomes["notification_log"].rows == old_done_of_resolved
        assert await _count(
            engine,
            log,
            log.alert_id == year.resolved_alert,
            log.created_at < now - timedelta(days=90),
        ) == DAYS - _kept_days(90, now)  # the pending ones
        # links go 30 days after they expired
        cutoff = now - timedelta(days=30)
        assert await _count(engine, nm.AckCode, nm.AckCode.expires_at < cutoff) == 0
        assert outcomes["ack_code"].rows > 0 and outcomes["ack_code"].batches > 1
    finally:
        await engine.dispose()


async def test_pruning_skips_a_row_a_hot_path_holds_instead_of_waiting(
    make_database: Callable[[str], str],
) -> None:
    # PostgreSQL: the relay holds an old outbox row (FOR UPDATE); pruning leaves it and ends
    url = make_database("registry")
    engine = create_engine(url)
    sessions = session_factory(engine)
    clock = ManualClock(_day(DAYS - 1))
    from registry.store.retention import pruner

    try:
        rows = [
            {
                "topic": "t",
                "key": "k",
                "payload": b"{}",
                "created_at": _day(n),
                "published_at": _day(n),
            }
            for n in range(30)
        ]
        async with engine.begin() as conn:
            await conn.execute(insert(rm.OutboxMessage), rows)
        job = pruner(
            RegistrySettings(database_url=url, retention_outbox_days=7), sessions, TRACER, clock
        )
        async with engine.connect() as holder:
            await holder.execute(text("SELECT id FROM outbox ORDER BY id LIMIT 1 FOR UPDATE"))
            (outcome,) = await asyncio.wait_for(job.prune(), timeout=30)
            await holder.rollback()
        old = sum(1 for n in range(30) if _day(n) < clock.now() - timedelta(days=7))
        assert outcome.rows == old - 1  # all but the held row
        (again,) = await job.prune()
        assert again.rows == 1
    finally:
        await engine.dispose()


@pytest.fixture
async def long_topic(kafka_bootstrap: str) -> AsyncIterator[str]:
    """A topic prefix whose topics consumed through progress's inbox (status, alerts) keep
    records 30 days (retention.ms on the broker)."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    names = [prefix + topics.STATUS, prefix + topics.ALERTS]
    try:
        await admin.create_topics(
            [
                NewTopic(name, 1, 1, topic_configs={"retention.ms": str(30 * MS_PER_DAY)})
                for name in names
            ]
        )
        yield prefix
    finally:
        try:
            await admin.delete_topics(names)
        finally:
            await admin.close()


async def test_start_up_refuses_an_inbox_shorter_than_the_topics_retention(
    kafka_bootstrap: str, long_topic: str, sqlite_url: Callable[[str], str], tmp_path: Any
) -> None:
    from progress.main import build

    url = sqlite_url("progress")
    # the settings agree with themselves (7-day topics, 14-day inbox); the broker says 30 days
    settings = ProgressSettings(
        database_url=url,
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=long_topic,
        retention_inbox_days=14,
        auth_jwks_url="http://127.0.0.1:9/.well-known/jwks.json",
    )
    service = build(settings, tracer_provider=TracerProvider())
    try:
        with pytest.raises(RetentionError) as refused:
            await service.start()
    finally:
        await service.close()
    assert refused.value.code == RETENTION_TOO_SHORT
    assert "14 days (1209600000 ms)" in refused.value.message
    for topic in (topics.STATUS, topics.ALERTS):  # named together: the same retention
        assert f"{long_topic}{topic}" in refused.value.message
    assert "keep records 30 days (2592000000 ms)" in refused.value.message

    # the command line refuses the same, exit 2, and prunes nothing
    env = {
        **os.environ,
        "DUBAN_PROGRESS_DATABASE_URL": url,
        "DUBAN_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DUBAN_TOPIC_PREFIX": long_topic,
        "DUBAN_PROGRESS_RETENTION_INBOX_DAYS": "14",
        "OTEL_TRACES_EXPORTER": "none",
    }
    code, out, err = await _prune_cli(env)
    assert code == 2, err
    assert RETENTION_TOO_SHORT in err and "30 days" in err

    # with an inbox as long as the topic it passes and says per table what would go
    env["DUBAN_PROGRESS_RETENTION_INBOX_DAYS"] = "30"
    code, out, err = await _prune_cli(env)
    assert code == 0, err
    assert "inbox\twould delete 0 row(s)" in out
    assert "status_report\tnever pruned" in out


async def _prune_cli(env: dict[str, str]) -> tuple[int | None, str, str]:
    """Run `duban-progress prune --dry-run`; its exit code, output and errors."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "progress.cli",
        "prune",
        "--dry-run",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    return process.returncode, out.decode(), err.decode()


async def test_a_consuming_process_prunes_in_its_background_once_the_rule_holds(
    kafka_bootstrap: str, long_topic: str, sqlite_url: Callable[[str], str]
) -> None:
    from progress.main import build

    url = sqlite_url("progress")
    clock = ManualClock(datetime(2025, 3, 3, 9, tzinfo=UTC))
    old, recent = uuid.uuid4(), uuid.uuid4()
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(pm.Inbox),
                [
                    {"event_id": old, "topic": topics.STATUS, "processed_at": _day(0)},
                    {"event_id": recent, "topic": topics.STATUS, "processed_at": clock.now()},
                ],
            )
    finally:
        await engine.dispose()
    settings = ProgressSettings(
        database_url=url,
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=long_topic,
        retention_inbox_days=30,  # as long as the broker keeps duban.status.v1's records
        auth_jwks_url="http://127.0.0.1:9/.well-known/jwks.json",
    )
    service = build(settings, clock=clock, tracer_provider=TracerProvider())
    try:
        await service.start()
        assert "progress-retention" in service.background.names

        async def pruned() -> bool:
            return "inbox" in service.pruner.last_pruned

        await wait_for(pruned, what="the background's first prune")
        async with service.sessions() as session:
            assert await session.get(pm.Inbox, old) is None
            assert await session.get(pm.Inbox, recent) is not None
        exposition = (await service.metrics.exposition()).decode()
        assert 'duban_retention_pruned_total{db_collection_name="inbox"' in exposition
    finally:
        await service.close()

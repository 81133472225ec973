"""Retention: prune the tables that only grow, in small batches, and keep the inbox in step
with Kafka.

Each service names its prunable tables as `PruneTarget`s (a table, the timestamp column that
ages a row, how long a row is kept, and what else must hold before it may go). A `Pruner`
deletes what is past its retention a batch at a time: one short transaction per batch of
`batch_size` rows, chosen by the timestamp's index (on PostgreSQL `FOR UPDATE SKIP LOCKED`,
so a row a hot path holds is left for the next round), and a pause between batches, so the
consumers, the relay and the API never wait behind a long delete.

The Kafka rule: a consumer's inbox must remember an event id at least as long as the topic
keeps the record, or a redelivery of a record older than the inbox (a consumer group reset, a
restore from a backup) would be applied twice. `check_inbox_retention` compares the inbox's
retention with each consumed topic's `retention.ms` (the settings' DUBAN_KAFKA_RETENTION_MS,
and the broker's value read at start-up) and refuses what breaks it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import Tracer
from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select as sqlmodel_select
from sqlmodel.ext.asyncio.session import AsyncSession

from duban_shared.clock import Clock, domain_span
from duban_shared.failures import is_transient
from duban_shared.metrics import RETENTION_LAST_PRUNE, ServiceMetrics

if TYPE_CHECKING:
    from duban_shared.runtime import Background

log = logging.getLogger(__name__)

RETENTION_TOO_SHORT = "inbox_retention_shorter_than_topic"
"""The stable code of a refused inbox retention (settings or broker)."""
TOPIC_RETENTION_UNKNOWN = "topic_retention_unknown"
"""The stable code when a consumed topic's retention cannot be read from the broker."""

MS_PER_DAY = 86_400_000
FOREVER = None
"""A retention of None: the records (or rows) are kept forever."""


class RetentionError(ValueError):
    """Settings that break the retention rule; `code` is stable, the message names both values."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def describe_ms(ms: int | None) -> str:
    """A retention for people: `forever`, or days (and the milliseconds the broker uses)."""
    if ms is None:
        return "forever"
    return f"{ms / MS_PER_DAY:g} days ({ms} ms)"


def topic_retention_ms(cleanup_policy: str, retention_ms: str | int | None) -> int | None:
    """How long a topic keeps a record, from its `cleanup.policy` and `retention.ms`: None
    (forever) for a compacted-only topic or a retention of -1."""
    policies = {p.strip() for p in cleanup_policy.split(",")}
    if "delete" not in policies or retention_ms is None:
        return None
    ms = int(retention_ms)
    return None if ms < 0 else ms


def inbox_retention_problems(
    inbox_days: int, topics: Mapping[str, int | None], *, source: str
) -> list[str]:
    """What breaks the rule "the inbox keeps an event id at least as long as each topic keeps
    the record" (empty: nothing). `inbox_days` 0 means the inbox is never pruned; `topics`
    maps a consumed topic to its retention in ms (None: forever); `source` says where the
    topic values come from (the settings, the broker), for the message."""
    if inbox_days == 0:
        return []
    inbox_ms = inbox_days * MS_PER_DAY
    longer: dict[int | None, list[str]] = {}
    for topic, ms in sorted(topics.items()):
        if ms is None or ms > inbox_ms:
            longer.setdefault(ms, []).append(topic)
    problems = []
    for ms, names in longer.items():
        which = f"topic {names[0]} keeps" if len(names) == 1 else f"topics {', '.join(names)} keep"
        problems.append(
            f"the inbox keeps event ids {describe_ms(inbox_ms)} but {which} records "
            f"{describe_ms(ms)} ({source}): a record redelivered after its id left the inbox "
            "would be applied twice"
        )
    return problems


def check_inbox_retention(
    inbox_days: int, topics: Mapping[str, int | None], *, source: str, setting: str
) -> None:
    """Raise RetentionError (code inbox_retention_shorter_than_topic) when the rule is broken;
    `setting` names the variable to raise."""
    problems = inbox_retention_problems(inbox_days, topics, source=source)
    if problems:
        longest = max((ms for ms in topics.values() if ms is not None), default=0)
        needed = -(-longest // MS_PER_DAY) if all(ms is not None for ms in topics.values()) else 0
        fix = (
            f"set {setting} to at least {needed}"
            if needed
            else f"set {setting}=0 (never prune the inbox)"
        )
        raise RetentionError(
            RETENTION_TOO_SHORT,
            f"{RETENTION_TOO_SHORT}: " + "; ".join(problems) + f"; {fix}, or shorten the "
            "topics' retention.ms (DUBAN_KAFKA_RETENTION_MS when the topics are created).",
        )


async def read_topic_retention(
    bootstrap_servers: str, topics: Sequence[str]
) -> dict[str, int | None]:
    """Each topic's retention (ms; None: forever) as the broker has it, by the admin client.
    A topic the broker does not know raises its Kafka error (UnknownTopicOrPartitionError,
    retriable), naming the topic."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
    from aiokafka.errors import for_code

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        wanted = {"cleanup.policy": None, "retention.ms": None}
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t, dict(wanted)) for t in topics]
        )
    finally:
        await admin.close()
    found: dict[str, int | None] = {}
    for response in responses:
        for error_code, error_message, _type, name, entries in response.resources:
            if error_code:
                # the broker's own error (a missing topic is retriable: it may be created soon)
                raise for_code(error_code)(
                    f"{TOPIC_RETENTION_UNKNOWN}: the broker at {bootstrap_servers} gave no "
                    f"retention.ms for topic {name} ({error_message or 'error ' + str(error_code)}"
                    "); create the topics first (scripts/kafka.sh topics)"
                )
            values = {entry[0]: entry[1] for entry in entries}
            found[name] = topic_retention_ms(
                values.get("cleanup.policy") or "delete", values.get("retention.ms")
            )
    return found


START_CHECK_SECONDS = 10.0
"""How long a start waits for the broker's answer before checking in the background."""
RETENTION_CHECK = "topic retention check"
"""What a service's start waits for when the broker did not answer at start-up."""


async def check_broker_retention(
    bootstrap_servers: str, topics: Sequence[str], inbox_days: int, *, setting: str
) -> dict[str, int | None]:
    """Read the consumed topics' retention from the broker and check the inbox keeps ids at
    least that long (RetentionError otherwise); return what the broker said."""
    found = await read_topic_retention(bootstrap_servers, topics)
    check_inbox_retention(inbox_days, found, source="retention.ms on the broker", setting=setting)
    log.info(
        "inbox keeps event ids %s; topics keep records: %s",
        describe_ms(inbox_days * MS_PER_DAY if inbox_days else None),
        ", ".join(f"{t} {describe_ms(ms)}" for t, ms in sorted(found.items())),
    )
    return found


async def check_at_start(
    background: Background, check: Callable[[], Awaitable[object]], *, timeout_seconds: float
) -> None:
    """The start-up check of the Kafka rule: when the broker answers within the timeout, a
    broken rule raises RetentionError here and the process refuses to start (non-zero exit);
    when it does not answer, the check waits for it in the background (pending as
    RETENTION_CHECK: not ready), and a broken rule then kills that task, which /healthz
    reports. Pruning waits for the check (`Pruner.run(after=...)`)."""
    try:
        await asyncio.wait_for(check(), timeout_seconds)
        return
    except RetentionError:
        raise
    except Exception as exc:
        if not is_transient(exc):
            raise
        log.warning("cannot check the topics' retention yet (%s); checking in the background", exc)
    background.start_soon(RETENTION_CHECK, check)


def kept_for(days: int) -> timedelta | None:
    """A retention setting in days as a PruneTarget's `keep`: 0 means kept forever (None)."""
    return timedelta(days=days) if days > 0 else None


@dataclass(frozen=True)
class PruneTarget:
    """One prunable table: rows whose `stamp` is older than `keep` (and that meet `where`) go.

    `clock` tells the time `stamp` was written in. With `real_time` the retention is about
    real time (Kafka's `retention.ms`): under a simulated clock it is stretched by the clock's
    rate (duban_shared.clock.domain_span), so a demo's fast clock never prunes an id the broker
    still keeps. `keep` None: never pruned (listed, so `prune --dry-run` says so).
    """

    table: str
    model: type[Any]
    key: Any  # the primary key column the batch deletes by
    stamp: Any  # the timestamp column that ages a row (indexed)
    keep: timedelta | None
    clock: Clock
    where: tuple[ColumnElement[bool], ...] = ()
    real_time: bool = False
    setting: str = ""  # the variable that sets `keep`, for the CLI's output

    def cutoff(self) -> datetime | None:
        """Rows stamped before this moment go (None: nothing goes)."""
        if self.keep is None:
            return None
        span = domain_span(self.clock, self.keep) if self.real_time else self.keep
        try:
            return self.clock.now() - span
        except OverflowError:  # a fast simulated clock stretches it past year 1: nothing goes
            return datetime.min.replace(tzinfo=UTC)

    def conditions(self, cutoff: datetime) -> list[ColumnElement[bool]]:
        """What a row must meet to go."""
        return [self.stamp < cutoff, *self.where]


@dataclass
class TableOutcome:
    """What a round did (or, dry, would do) to one table."""

    table: str
    keep: timedelta | None
    cutoff: datetime | None
    rows: int = 0
    batches: int = 0
    setting: str = ""

    def describe(self, *, dry_run: bool) -> str:
        """One line for the CLI."""
        if self.cutoff is None:
            return f"{self.table}\tkept forever\t({self.setting or 'never pruned'} = 0)"
        verb = "would delete" if dry_run else "deleted"
        days = self.keep.total_seconds() / 86400 if self.keep is not None else 0
        batches = "" if dry_run else f" in {self.batches} batch(es)"
        return (
            f"{self.table}\t{verb} {self.rows} row(s){batches}\tolder than "
            f"{self.cutoff.isoformat()} (keep {days:g} days, {self.setting})"
        )


Sleep = Callable[[float], Awaitable[None]]


@dataclass
class Pruner:
    """Deletes what is past its retention, a batch per short transaction, table by table."""

    targets: Sequence[PruneTarget]
    sessions: async_sessionmaker[AsyncSession]
    tracer: Tracer
    metrics: ServiceMetrics | None = None
    batch_size: int = 1000
    pause_seconds: float = 0.1
    skip_locked: bool = True
    sleep: Sleep | None = None  # between batches; by default a pause that ends early on stop
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    last_pruned: dict[str, float] = field(default_factory=dict)  # table -> unix time

    def __post_init__(self) -> None:
        if self.metrics is not None:
            self.metrics.meter.create_observable_gauge(
                RETENTION_LAST_PRUNE,
                callbacks=[self._observe_last],
                unit="s",
                description="When each table was last pruned (unix time, the wall clock).",
            )

    def _observe_last(self, _options: CallbackOptions) -> Iterable[Observation]:
        for table, moment in self.last_pruned.items():
            yield Observation(moment, {"db.collection.name": table})

    async def prune(self, *, dry_run: bool = False) -> list[TableOutcome]:
        """One round over every table: delete (or, dry, count) what is past its retention."""
        outcomes = []
        with self.tracer.start_as_current_span("retention prune") as span:
            span.set_attribute("duban.retention.dry_run", dry_run)
            for target in self.targets:
                outcomes.append(await self._prune_table(target, dry_run=dry_run))
            span.set_attribute("duban.retention.rows", sum(o.rows for o in outcomes))
        return outcomes

    async def _prune_table(self, target: PruneTarget, *, dry_run: bool) -> TableOutcome:
        cutoff = target.cutoff()
        outcome = TableOutcome(target.table, target.keep, cutoff, setting=target.setting)
        if cutoff is None:
            return outcome
        with self.tracer.start_as_current_span(f"retention prune {target.table}") as span:
            span.set_attribute("db.collection.name", target.table)
            span.set_attribute("duban.retention.cutoff", cutoff.isoformat())
            if dry_run:
                outcome.rows = await self._count(target, cutoff)
            else:
                while not self.stop.is_set():
                    deleted = await self._delete_batch(target, cutoff)
                    if deleted == 0:
                        break
                    outcome.rows += deleted
                    outcome.batches += 1
                    if self.metrics is not None:
                        self.metrics.retention_pruned.add(
                            deleted, {"db.collection.name": target.table}
                        )
                    if deleted < self.batch_size:
                        break
                    await self._pause()
                self.last_pruned[target.table] = time.time()
            span.set_attribute("duban.retention.rows", outcome.rows)
            span.set_attribute("duban.retention.batches", outcome.batches)
        return outcome

    async def _count(self, target: PruneTarget, cutoff: datetime) -> int:
        async with self.sessions() as session:
            query = sqlmodel_select(func.count()).select_from(target.model)
            query = query.where(*target.conditions(cutoff))
            return int((await session.exec(query)).one())

    async def _delete_batch(self, target: PruneTarget, cutoff: datetime) -> int:
        chosen = (
            select(target.key)
            .where(*target.conditions(cutoff))
            .order_by(target.stamp)
            .limit(self.batch_size)
        )
        if self.skip_locked:
            chosen = chosen.with_for_update(skip_locked=True)
        async with self.sessions() as session, session.begin():
            result = await session.exec(
                delete(target.model)
                .where(target.key.in_(chosen.scalar_subquery()))
                .execution_options(synchronize_session=False)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    async def _pause(self) -> None:
        if self.sleep is not None:
            await self.sleep(self.pause_seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), timeout=self.pause_seconds)

    async def run(
        self,
        stop: asyncio.Event,
        interval_seconds: float,
        *,
        after: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Prune every interval until stopped (the service's background task), once `after`
        (e.g. the start-up check of the Kafka rule) has returned."""
        from duban_shared.runtime import run_periodically

        self.stop = stop
        if after is not None:
            waiting = asyncio.ensure_future(after())
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            for task in (waiting, stopping):
                task.cancel()
            if stop.is_set():
                return
        await run_periodically(self.prune, stop, interval_seconds, name="retention", log=log)

"""Transactional outbox: rows written with the state change, relayed to Kafka afterwards.

A service defines its own table from `OutboxFields` (each service owns its data). The relay
claims unpublished rows in id order, sends each with acks=all, and marks it published. A crash
between send and mark re-sends that row once: consumers absorb the duplicate by `event_id`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import defaultdict
from collections.abc import Awaitable
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata
from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.trace import Tracer
from sqlalchemy import LargeBinary, Table, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from duban_shared.clock import Clock
from duban_shared.db import utc_column
from duban_shared.kafka import current_traceparent, send_traced_nowait

log = logging.getLogger(__name__)


class OutboxFields(SQLModel):
    """Columns of an outbox table; a service's table model inherits them."""

    id: int | None = Field(default=None, primary_key=True)
    topic: str = Field(max_length=200)
    key: str = Field(max_length=200)
    payload: bytes = Field(sa_type=LargeBinary, nullable=False)
    traceparent: str | None = Field(default=None, max_length=100)
    created_at: datetime = utc_column()
    published_at: datetime | None = utc_column(nullable=True, index=True)


def outbox_row(model: type[Any], topic: str, key: str, payload: bytes, now: datetime) -> Any:
    """Build an outbox row that remembers the current trace, for the session to add."""
    return model(
        topic=topic, key=key, payload=payload, traceparent=current_traceparent(), created_at=now
    )


class OutboxRelay:
    """Moves outbox rows to Kafka; wake it after a commit to cut latency."""

    def __init__(
        self,
        model: type[Any],
        sessions: async_sessionmaker[AsyncSession],
        producer: AIOKafkaProducer,
        tracer: Tracer,
        clock: Clock,
        *,
        poll_seconds: float = 1.0,
        batch_size: int = 500,
        skip_locked: bool = True,
        topic_prefix: str = "",
    ) -> None:
        self._table: Table = model.__table__
        self._sessions = sessions
        self._producer = producer
        self._tracer = tracer
        self._clock = clock
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._skip_locked = skip_locked
        self._topic_prefix = topic_prefix
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Ask the relay to look at the table now instead of at its next poll."""
        self._wake.set()

    async def relay_once(self) -> int:
        """Publish one batch of unpublished rows; return how many were sent.

        Plain rows (SQLAlchemy Core, no ORM objects): one SELECT claims the batch, one UPDATE
        marks it published once the broker acknowledged every row of it.
        """
        table = self._table
        async with self._sessions() as session, session.begin():
            conn = await session.connection()
            query = (
                select(table.c.id, table.c.topic, table.c.key, table.c.payload, table.c.traceparent)
                .where(table.c.published_at.is_(None))
                .order_by(table.c.id)
                .limit(self._batch_size)
            )
            if self._skip_locked:
                query = query.with_for_update(skip_locked=True)
            rows = (await conn.execute(query)).all()
            if not rows:
                return 0
            # A key with one row (the usual case) is queued at once, the batch's messages going
            # out together; a key's several rows are sent in order, each once the previous is
            # acknowledged (one partition, one consumer's order).
            by_key: dict[tuple[str, str], list[Any]] = defaultdict(list)
            for row in rows:
                by_key[(row.topic, row.key)].append(row)
            parents: dict[str, otel_context.Context] = {}
            pending: list[Awaitable[Any]] = []
            try:
                for key_rows in by_key.values():
                    if len(key_rows) == 1:
                        pending.append(await self._queue(key_rows[0], parents))
                    else:
                        pending.append(self._send_in_order(key_rows, parents))
            except BaseException:
                for waiting in pending:
                    if inspect.iscoroutine(waiting):
                        waiting.close()  # never started: nothing of it was sent
                raise
            outcomes = await asyncio.gather(*pending, return_exceptions=True)
            failed = next((o for o in outcomes if isinstance(o, BaseException)), None)
            if failed is not None:
                raise failed
            await conn.execute(
                update(table)
                .where(table.c.id.in_([row.id for row in rows]))
                .values(published_at=self._clock.now())
            )
        return len(rows)

    async def _queue(
        self, row: Any, parents: dict[str, otel_context.Context]
    ) -> asyncio.Future[RecordMetadata]:
        """Queue one row's message in a PRODUCER span continued from its stored trace."""
        traceparent = row.traceparent or ""
        parent = parents.get(traceparent)
        if parent is None:
            parent = parents[traceparent] = propagate.extract({"traceparent": traceparent})
        return await send_traced_nowait(
            self._producer,
            self._tracer,
            self._topic_prefix + row.topic,
            row.key,
            row.payload,
            parent=parent,
        )

    async def _send_in_order(
        self, rows: list[Any], parents: dict[str, otel_context.Context]
    ) -> None:
        for row in rows:
            await (await self._queue(row, parents))

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until stopped; a failed batch is retried at the next poll."""
        while not stop.is_set():
            try:
                sent = await self.relay_once()
            except Exception:
                log.exception("outbox relay failed; retrying in %.1fs", self._poll_seconds)
                sent = 0
            if sent:
                continue
            self._wake.clear()
            waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            _, pending = await asyncio.wait(
                waiters, timeout=self._poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in pending:
                waiter.cancel()

"""Transactional outbox: rows written with the state change, relayed to Kafka afterwards.

A service defines its own table from `OutboxFields` (each service owns its data). The relay
claims unpublished rows in id order, sends each with acks=all, and marks it published. A crash
between send and mark re-sends that row once: consumers absorb the duplicate by `event_id`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from opentelemetry import propagate
from opentelemetry.trace import Tracer
from sqlalchemy import LargeBinary
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from duban_shared.clock import Clock
from duban_shared.db import utc_column
from duban_shared.kafka import current_traceparent, send_traced

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
        batch_size: int = 200,
        skip_locked: bool = True,
        topic_prefix: str = "",
    ) -> None:
        self._model = model
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
        """Publish one batch of unpublished rows; return how many were sent."""
        model = self._model
        async with self._sessions() as session, session.begin():
            query = (
                select(model)
                .where(col(model.published_at).is_(None))
                .order_by(col(model.id))
                .limit(self._batch_size)
            )
            if self._skip_locked:
                query = query.with_for_update(skip_locked=True)
            rows = list((await session.exec(query)).all())
            # One key's rows in order (one partition, one consumer's order); keys side by side,
            # so a batch costs about one broker round trip, not one per row.
            by_key: dict[tuple[str, str], list[Any]] = defaultdict(list)
            for row in rows:
                by_key[(row.topic, row.key)].append(row)
            await asyncio.gather(*(self._send_in_order(key_rows) for key_rows in by_key.values()))
            for row in rows:
                session.add(row)
        return len(rows)

    async def _send_in_order(self, rows: list[Any]) -> None:
        for row in rows:
            parent = propagate.extract({"traceparent": row.traceparent or ""})
            await send_traced(
                self._producer,
                self._tracer,
                self._topic_prefix + row.topic,
                row.key,
                row.payload,
                parent=parent,
            )
            row.published_at = self._clock.now()

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

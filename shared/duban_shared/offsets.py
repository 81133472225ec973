"""Consumed positions kept in the service's own database, so a restored database rewinds Kafka.

A consumer commits its offsets to the broker (for lag and tools), and since this module also
stores, per (group, topic, partition), the offset of the next record to read in the service's
database, written right after the batch's transaction committed and before the broker commit.
When the group assigns a partition, the consumer seeks to the stored offset instead of the
group's committed one (`OffsetKeeper`, a rebalance listener):

- normally both are equal;
- after a database restore the stored offset is the one of the backup, behind the group's: the
  records after it are read again, and the inbox skips those the backup already holds, so a
  restore loses nothing the topic still retains;
- after a crash between the stored and the broker commit the stored one is ahead: the records
  in between were applied already.

The stored offset is written after the data it covers (never in the same transaction, so no
handler has to know about it): it can only be behind the data, which costs a re-read that the
inbox absorbs, never ahead of it. A partition with no stored offset (a new database, a backup
taken before the partition was first consumed, a database from before this table) is read
from the earliest record the topic retains; the inbox absorbs that too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from sqlalchemy import BigInteger
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from duban_shared.clock import Clock
from duban_shared.db import utc_column

log = logging.getLogger(__name__)


class ConsumerOffsetFields(SQLModel):
    """Columns of a consumer offset table; a service's table model inherits them."""

    group_id: str = Field(primary_key=True, max_length=200)
    topic: str = Field(primary_key=True, max_length=200)
    partition: int = Field(primary_key=True)
    next_offset: int = Field(sa_type=BigInteger)
    """The offset of the next record to read (the last applied one's plus one)."""
    updated_at: datetime = utc_column()


class OffsetStore:
    """Reads and writes one service's consumer offset table."""

    def __init__(
        self, model: type[Any], sessions: async_sessionmaker[AsyncSession], clock: Clock
    ) -> None:
        self.model = model
        self.sessions = sessions
        self.clock = clock

    async def load(
        self, group: str, partitions: Iterable[TopicPartition]
    ) -> dict[TopicPartition, int]:
        """The stored next offsets of these partitions (absent: never stored)."""
        wanted = set(partitions)
        if not wanted:
            return {}
        table = self.model
        topics = sorted({tp.topic for tp in wanted})
        async with self.sessions() as session:
            rows = await session.exec(
                select(table).where(col(table.group_id) == group, col(table.topic).in_(topics))
            )
            found = {TopicPartition(r.topic, r.partition): int(r.next_offset) for r in rows}
        return {tp: offset for tp, offset in found.items() if tp in wanted}

    async def save(self, group: str, positions: Mapping[TopicPartition, int]) -> None:
        """Store the next offsets of these partitions (one short transaction)."""
        if not positions:
            return
        now = self.clock.now()
        rows = [
            {
                "group_id": group,
                "topic": tp.topic,
                "partition": tp.partition,
                "next_offset": offset,
                "updated_at": now,
            }
            for tp, offset in positions.items()
        ]
        async with self.sessions() as session, session.begin():
            dialect = (await session.connection()).dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            statement = insert(self.model).values(rows)
            statement = statement.on_conflict_do_update(
                index_elements=["group_id", "topic", "partition"],
                set_={
                    "next_offset": statement.excluded.next_offset,
                    "updated_at": statement.excluded.updated_at,
                },
            )
            await session.exec(statement)


class OffsetKeeper(ConsumerRebalanceListener):  # type: ignore[misc]
    """A consumer group's positions in the database: seek on assignment, save after a batch.

    The rebalance listener only notes the partitions assigned (aiokafka logs and swallows a
    listener's errors, so it does no I/O); the batch loop calls `settle` after every poll,
    which seeks them to their stored offsets and tells the loop to drop what the poll fetched
    from them. If the database cannot be read, settle raises and the loop retries it as an
    outage: no record of an unsettled partition is ever handled.
    """

    def __init__(self, store: OffsetStore, group: str) -> None:
        self.store = store
        self.group = group
        self.pending: set[TopicPartition] = set()
        self.rewound: dict[TopicPartition, int] = {}
        """Partitions sought back behind the group's committed offset, by how many records
        (after a restore); for logs and tests."""

    def subscribe(self, consumer: AIOKafkaConsumer, *topics: str) -> None:
        """Subscribe the consumer to its topics with this keeper as the listener."""
        consumer.subscribe(list(topics), listener=self)

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        """Forget revoked partitions not settled yet (offsets are saved after every batch)."""
        self.pending.difference_update(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        """Note the partitions to settle before any of their records is handled."""
        self.pending.update(assigned)

    async def settle(self, consumer: AIOKafkaConsumer) -> set[TopicPartition]:
        """Seek every newly assigned partition to its stored offset (none stored: to its
        beginning); return those partitions (what the last poll fetched from them is stale)."""
        assigned: set[TopicPartition] = set(consumer.assignment())
        pending = self.pending & assigned
        self.pending.clear()
        if not pending:
            return set()
        pending = set(pending)
        try:
            await self._seek(consumer, pending)
        except BaseException:
            self.pending.update(pending)  # settled again after the pause; seeking is idempotent
            raise
        return pending

    async def _seek(self, consumer: AIOKafkaConsumer, pending: set[TopicPartition]) -> None:
        """Seek each partition to its stored offset, or to its beginning; note the rewinds."""
        stored = await self.store.load(self.group, pending)
        for tp in sorted(pending):
            group_at = await consumer.committed(tp)
            position = stored.get(tp)
            if position is None:
                if group_at:
                    log.warning(
                        "%s %s[%d]: no consumed offset in the database, the group committed %d;"
                        " reading from the earliest retained record (the inbox skips what is"
                        " applied)",
                        self.group,
                        tp.topic,
                        tp.partition,
                        group_at,
                    )
                    self.rewound[tp] = group_at
                await consumer.seek_to_beginning(tp)
                continue
            if group_at is not None and position < group_at:
                log.warning(
                    "%s %s[%d]: the database consumed up to %d, the group committed %d (a"
                    " restored database); reading the %d records in between again",
                    self.group,
                    tp.topic,
                    tp.partition,
                    position,
                    group_at,
                    group_at - position,
                )
                self.rewound[tp] = group_at - position
            consumer.seek(tp, position)

    async def save(self, positions: Mapping[TopicPartition, int]) -> None:
        """Store the next offsets after a batch was applied."""
        await self.store.save(self.group, positions)

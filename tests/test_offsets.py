"""Consumed offsets kept in a service's database (duban_shared.offsets), on PostgreSQL and
SQLite: stored after a batch, overwritten by the next, read back per group and partition."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import TopicPartition
from duban_shared.clock import ManualClock
from duban_shared.db import create_engine, session_factory
from duban_shared.offsets import OffsetStore
from progress.store.models import ConsumerOffset

STATUS = TopicPartition("t.duban.status.v1", 0), TopicPartition("t.duban.status.v1", 1)


@pytest.mark.parametrize("database", ["make_database", "sqlite_url"])
async def test_offsets_are_stored_overwritten_and_read_per_group(
    database: str, request: pytest.FixtureRequest
) -> None:
    make: Callable[[str], str] = request.getfixturevalue(database)
    engine = create_engine(make("progress"))
    clock = ManualClock(datetime(2024, 9, 2, 1, tzinfo=UTC))
    store = OffsetStore(ConsumerOffset, session_factory(engine), clock)
    try:
        assert await store.load("g", STATUS) == {}
        await store.save("g", {STATUS[0]: 10, STATUS[1]: 4})
        await store.save("other", {STATUS[0]: 99})
        clock.advance(timedelta(seconds=1))
        await store.save("g", {STATUS[0]: 17})  # the next batch: only partition 0 moved
        assert await store.load("g", STATUS) == {STATUS[0]: 17, STATUS[1]: 4}
        assert await store.load("g", [STATUS[1]]) == {STATUS[1]: 4}
        assert await store.load("other", STATUS) == {STATUS[0]: 99}
        assert await store.load("g", [TopicPartition("t.duban.stalls.v1", 0)]) == {}
    finally:
        await engine.dispose()

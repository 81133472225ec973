"""The retention rule (duban_shared.retention): the inbox outlives the topics' records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from duban_shared.clock import ManualClock, ScaledClock
from duban_shared.retention import (
    MS_PER_DAY,
    RETENTION_TOO_SHORT,
    PruneTarget,
    RetentionError,
    check_inbox_retention,
    inbox_retention_problems,
    topic_retention_ms,
)
from duban_shared.topics import read_topic_list

WEEK_MS = 7 * MS_PER_DAY


def test_a_topic_keeps_records_by_its_policy_and_retention() -> None:
    assert topic_retention_ms("delete", "604800000") == WEEK_MS
    assert topic_retention_ms("compact,delete", 86_400_000) == MS_PER_DAY
    assert topic_retention_ms("compact", "604800000") is None  # compaction keeps the latest
    assert topic_retention_ms("delete", "-1") is None  # forever
    assert topic_retention_ms("delete", None) is None


def test_the_inbox_must_keep_ids_at_least_as_long_as_each_topic() -> None:
    assert inbox_retention_problems(7, {"s": WEEK_MS}, source="settings") == []
    assert inbox_retention_problems(14, {"s": WEEK_MS, "t": MS_PER_DAY}, source="x") == []
    (problem,) = inbox_retention_problems(6, {"s": WEEK_MS, "t": MS_PER_DAY}, source="broker")
    assert "6 days" in problem and "7 days" in problem and "topic s" in problem
    # a topic that keeps records forever needs an inbox that is never pruned
    assert inbox_retention_problems(3650, {"s": None}, source="broker")
    assert inbox_retention_problems(0, {"s": None}, source="broker") == []
    assert inbox_retention_problems(0, {"s": WEEK_MS}, source="broker") == []


def test_a_refusal_has_a_stable_code_and_names_both_values_and_the_fix() -> None:
    with pytest.raises(RetentionError) as refused:
        check_inbox_retention(
            3,
            {"duban.status.v1": 30 * MS_PER_DAY},
            source="retention.ms on the broker",
            setting="DUBAN_PROGRESS_RETENTION_INBOX_DAYS",
        )
    error = refused.value
    assert error.code == RETENTION_TOO_SHORT
    assert "3 days (259200000 ms)" in error.message
    assert "30 days (2592000000 ms)" in error.message
    assert "DUBAN_PROGRESS_RETENTION_INBOX_DAYS to at least 30" in error.message
    with pytest.raises(RetentionError, match="RETENTION_INBOX_DAYS=0"):
        check_inbox_retention(3, {"t": None}, source="broker", setting="RETENTION_INBOX_DAYS")


def test_kafka_time_is_stretched_under_a_simulated_clock() -> None:
    start = datetime(2024, 3, 1, tzinfo=UTC)
    wall = ManualClock(start)
    fast = ScaledClock(start, 3600.0, start, wall=wall)  # an hour a second
    wall.advance(timedelta(days=1))
    target = PruneTarget("inbox", object, None, None, timedelta(days=7), fast, real_time=True)
    # the broker keeps records 7 real days: 7 * 3600 simulated days under this clock
    assert target.cutoff() == fast.now() - timedelta(days=7 * 3600)
    domain = PruneTarget("log", object, None, None, timedelta(days=7), fast)
    assert domain.cutoff() == fast.now() - timedelta(days=7)
    assert PruneTarget("kept", object, None, None, None, fast).cutoff() is None
    demo = ScaledClock(start, 60000.0, start, wall=wall)  # make demo's rate: beyond year 1
    inbox = PruneTarget("inbox", object, None, None, timedelta(days=14), demo, real_time=True)
    assert inbox.cutoff() == datetime.min.replace(tzinfo=UTC)


def test_the_topic_list_gives_event_topics_the_retention_setting(tmp_path: Path) -> None:
    listing = tmp_path / "topics.txt"
    listing.write_text(
        "events 6\n"
        "snapshots 3 cleanup.policy=compact\n"
        "tokens 1 cleanup.policy=compact,delete retention.ms=86400000\n"
        "parked 3 retention.ms=-1\n",
        encoding="utf-8",
    )
    specs = {s.name: s.configs for s in read_topic_list(listing, retention_ms=123)}
    assert specs["events"] == {"retention.ms": "123"}
    assert specs["snapshots"] == {"cleanup.policy": "compact"}
    assert specs["tokens"]["retention.ms"] == "86400000"
    assert specs["parked"] == {"retention.ms": "-1"}

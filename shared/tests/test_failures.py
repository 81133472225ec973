"""Outage or the record's own failure: the one classification every consumer loop uses."""

from __future__ import annotations

import errno
import logging

import psycopg
import pydantic
import pytest
import sqlalchemy.exc
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    NotLeaderForPartitionError,
    RecordTooLargeError,
)
from duban_shared.failures import OutageLog, RecordRejected, error_code, is_transient
from duban_shared.workdays import CalendarDataMissing


def _operational() -> sqlalchemy.exc.OperationalError:
    return sqlalchemy.exc.OperationalError("SELECT 1", {}, psycopg.OperationalError("refused"))


def _raised_from(outer: Exception, inner: Exception) -> Exception:
    try:
        try:
            raise inner
        except Exception as exc:
            raise outer from exc
    except Exception as caught:
        return caught


@pytest.mark.parametrize(
    "error",
    [
        _operational(),
        sqlalchemy.exc.InterfaceError("SELECT 1", {}, Exception("connection closed")),
        sqlalchemy.exc.TimeoutError("QueuePool limit reached"),
        ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
        TimeoutError(),
        OSError(errno.EHOSTUNREACH, "no route to host"),
        KafkaConnectionError("broker gone"),
        KafkaTimeoutError(),
        NotLeaderForPartitionError(),  # retriable by Kafka's own word
        _raised_from(RuntimeError("wrapped"), _operational()),  # a cause further down counts
    ],
    ids=lambda e: type(e).__name__,
)
def test_outages_are_transient(error: Exception) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bad data"),
        KeyError("missing"),
        RecordRejected("invalid_snapshot", "unreadable"),
        CalendarDataMissing(2150),
        sqlalchemy.exc.IntegrityError("INSERT", {}, Exception("duplicate key")),
        sqlalchemy.exc.DataError("INSERT", {}, Exception("integer out of range")),
        RecordTooLargeError(),  # not retriable: it will never fit
        FileNotFoundError(errno.ENOENT, "template"),
        _raised_from(RuntimeError("wrapped"), ValueError("bad")),
    ],
    ids=lambda e: type(e).__name__,
)
def test_the_records_own_failures_are_not_transient(error: Exception) -> None:
    assert not is_transient(error)


def test_error_codes_are_stable_and_come_from_the_failure() -> None:
    assert error_code(RecordRejected("invalid_snapshot", "x")) == "invalid_snapshot"
    assert error_code(CalendarDataMissing(2150)) == "calendar_year_missing"
    assert error_code(ValueError("x")) == "unexpected_value_error"
    with pytest.raises(pydantic.ValidationError) as info:
        pydantic.TypeAdapter(int).validate_python("x")
    assert error_code(info.value) == "unexpected_validation_error"


def test_an_outage_is_logged_once_with_a_count(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    outage = OutageLog(logging.getLogger("t"), "database", summary_seconds=60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="t"):
        for second in range(0, 130):  # two failures a second for 130 s
            now[0] = float(second)
            outage.failed(_operational())
            outage.failed(_operational())
        outage.recovered()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4, lines  # first (with traceback), two summaries, the recovery
    assert lines[0].startswith("database unavailable: OperationalError")
    assert caplog.records[0].exc_info is not None
    assert all(r.exc_info is None for r in caplog.records[1:])
    assert lines[1].startswith("database still unavailable: 121 failures in 60s")
    assert lines[2].startswith("database still unavailable: 241 failures in 120s")
    assert lines[3] == "database available again: the outage lasted 129s (260 failures)"


def test_a_failure_long_after_the_last_is_a_new_outage(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    outage = OutageLog(logging.getLogger("t"), "database", summary_seconds=60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="t"):
        outage.failed(_operational())
        now[0] = 600.0  # no success seen (an error handler), but ten quiet minutes
        outage.failed(_operational())
    lines = [r.getMessage() for r in caplog.records]
    assert lines[1] == "database available again: the outage lasted 0s (1 failures)"
    assert lines[2].startswith("database unavailable: OperationalError")
    assert caplog.records[2].exc_info is not None

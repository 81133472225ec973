"""Which failures are outages and which belong to the record, and how outages are logged.

A consumer meets two kinds of failure, and must treat them oppositely:
- an **outage** (the database or the broker unreachable, a timeout, a dropped connection) says
  nothing about the record: the same record succeeds once the dependency is back, so it is
  retried, with backoff, for as long as the outage lasts, and never parked;
- any other failure is **deterministic**: bad data, a calendar year that cannot be computed, a
  rule the record breaks, a bug. Retrying it forever would hold up every record behind it on
  its partition, so after a few attempts it is parked as a dead letter and the rest goes on.

`is_transient` is the one place that tells them apart. An unknown error counts as
deterministic: parking a record that would have passed later costs a replay, while treating a
poison record as an outage stops the partition for good.
"""

from __future__ import annotations

import errno
import logging
import re
import socket
import time
from collections.abc import Callable

import sqlalchemy.exc
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset, aborted, broken pipe
    TimeoutError,  # asyncio.TimeoutError too
    socket.gaierror,  # a host name that does not resolve right now
    sqlalchemy.exc.OperationalError,  # database unreachable, restarting, locked (SQLite)
    sqlalchemy.exc.InterfaceError,  # connection closed under the driver
    sqlalchemy.exc.DisconnectionError,
    sqlalchemy.exc.TimeoutError,  # no pooled connection in time
    KafkaConnectionError,
    KafkaTimeoutError,
)
"""Exception types that mean "a dependency is unavailable", whatever the record."""

_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.EPIPE,
        errno.ETIMEDOUT,
    }
)


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it was raised from or during, nearest first (cycles cut)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not s for s in seen) and len(seen) < 16:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def is_transient(exc: BaseException) -> bool:
    """Tell whether a failure is an outage of a dependency (retry) rather than the record's own
    (park after a few attempts). Looks through the chain of causes."""
    for cause in _causes(exc):
        if isinstance(cause, TRANSIENT_TYPES):
            return True
        if isinstance(cause, sqlalchemy.exc.DBAPIError) and cause.connection_invalidated:
            return True
        if isinstance(cause, KafkaError) and getattr(cause, "retriable", False):
            return True
        if isinstance(cause, OSError) and cause.errno in _NETWORK_ERRNOS:
            return True
    return False


class RecordRejected(Exception):
    """A record that can never be applied as it is (unreadable, or breaking a rule): parked at
    once, without the attempts an unexplained failure gets."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


_CODE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")


def error_code(exc: BaseException) -> str:
    """A stable code for a failure: its own `code` when it has one (CalendarDataMissing,
    ReportProblem, ...), else `unexpected_<type>` from its class name."""
    code = getattr(exc, "code", None)
    if isinstance(code, str) and _CODE.match(code):
        return code
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()
    return f"unexpected_{name}"[:64]


class OutageLog:
    """Logs an outage once, with a count, instead of once per failure.

    The first failure is logged with its traceback; while it lasts, one line at most every
    `summary_seconds` gives the count so far; the first success after it says how long it lasted
    and how many failures it caused. Where no success is seen (an error handler), a failure
    after `summary_seconds` without any counts as a new outage.
    """

    def __init__(
        self,
        log: logging.Logger,
        what: str,
        *,
        summary_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self.what = what
        self._summary_seconds = summary_seconds
        self._clock = clock
        self.failures = 0
        self._since = 0.0
        self._last_line = 0.0
        self._last_failure = 0.0

    def failed(self, exc: BaseException) -> None:
        """Count one failure; log the first one in full, then a summary now and then."""
        now = self._clock()
        if self.failures and now - self._last_failure > self._summary_seconds:
            self.recovered()
        self._last_failure = now
        self.failures += 1
        if self.failures == 1:
            self._since = self._last_line = now
            self._log.error("%s unavailable: %s", self.what, _describe(exc), exc_info=exc)
        elif now - self._last_line >= self._summary_seconds:
            self._last_line = now
            self._log.error(
                "%s still unavailable: %d failures in %.0fs (last: %s)",
                self.what,
                self.failures,
                now - self._since,
                _describe(exc),
            )

    def recovered(self) -> None:
        """A success: close the outage, if there was one, with one line."""
        if self.failures:
            self._log.warning(
                "%s available again: the outage lasted %.0fs (%d failures)",
                self.what,
                self._last_failure - self._since,
                self.failures,
            )
            self.failures = 0


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__

"""Background work of a service (consumers, relays, sweepers) with one clean stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer

from duban_shared.failures import OutageLog, is_transient
from duban_shared.kafka import (
    BatchHandler,
    Parker,
    RetryPolicy,
    run_batch_consumer,
    sleep_unless_stopped,
)

if TYPE_CHECKING:
    from duban_shared.metrics import LagTracker
    from duban_shared.offsets import OffsetKeeper

log = logging.getLogger(__name__)

PRODUCER = "kafka producer"
"""What a service's Kafka producer is called among its starts (Background.start_soon)."""


class Background:
    """Long-running tasks that share one stop signal; a crashed task is logged, not hidden:
    `failures` names it (the service's /healthz then fails, so the process is restarted).

    Connections to the broker and the database are made here too, not in the way of the
    process's start: `start_soon` retries a start (a producer, a consumer, keys from the
    database) until the dependency answers, and `pending` names what is still waiting, so a
    process started during an outage answers "not ready" and becomes ready when it ends.
    """

    def __init__(self, retry: RetryPolicy | None = None) -> None:
        self.stop = asyncio.Event()
        self.retry = retry or RetryPolicy()
        self._tasks: list[asyncio.Task[None]] = []
        self._consumers: list[AIOKafkaConsumer] = []
        self._failures: list[str] = []
        self._pending: dict[str, asyncio.Event] = {}

    def spawn(self, name: str, coro: Coroutine[Any, Any, None], *, until_stop: bool = True) -> None:
        """Start a task that should run until stop is set (or, not `until_stop`, that may end
        early; either way its failure is reported)."""
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._report if until_stop else self._report_failure)
        self._tasks.append(task)

    def start_soon(
        self,
        what: str,
        start: Callable[[], Awaitable[object]],
        *,
        then: Callable[[], Coroutine[Any, Any, None]] | None = None,
        task_name: str | None = None,
    ) -> None:
        """Run `start` until it succeeds (outages retried with backoff, logged once), then
        `then` if given, as a background task (named `task_name`, by default `start <what>`);
        `what` is pending until `start` succeeded."""
        self._pending[what] = asyncio.Event()

        async def starting() -> None:
            if await self._start_when_reachable(what, start) and then is not None:
                await then()

        self.spawn(task_name or f"start {what}", starting(), until_stop=then is not None)

    async def _start_when_reachable(
        self, what: str, start: Callable[[], Awaitable[object]]
    ) -> bool:
        outage = OutageLog(log, what)
        while not self.stop.is_set():
            try:
                await start()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                outage.failed(exc)
                await sleep_unless_stopped(self.stop, self.retry.pause(outage.failures))
                continue
            outage.recovered()
            self._pending.pop(what).set()
            return True
        return False

    def ready(self, what: str) -> bool:
        """Tell whether a start given to start_soon has succeeded (True if none was given)."""
        return what not in self._pending

    async def wait_ready(self, what: str) -> None:
        """Wait until a start given to start_soon has succeeded."""
        event = self._pending.get(what)
        if event is not None:
            await event.wait()

    async def started(self) -> None:
        """Wait until every start given to start_soon so far has succeeded."""
        for event in list(self._pending.values()):
            await event.wait()

    @property
    def pending(self) -> list[str]:
        """What is still waiting for its dependency (see start_soon)."""
        return sorted(self._pending)

    async def consume(
        self,
        task_name: str,
        consumer: AIOKafkaConsumer,
        handle_batch: BatchHandler,
        *,
        name: str,
        lag: LagTracker | None = None,
        dead_letters: Parker | None = None,
        retry: RetryPolicy | None = None,
        offsets: OffsetKeeper | None = None,
    ) -> None:
        """Start a Kafka consumer (once the broker answers) and its batch loop
        (`duban_shared.kafka.run_batch_consumer`; `offsets`: the consumed positions kept in the
        database, duban_shared.offsets); close() stops the consumer after the loop."""

        self._consumers.append(consumer)  # stopped on close, started or not

        async def loop() -> None:
            await run_batch_consumer(
                consumer,
                handle_batch,
                self.stop,
                name=name,
                lag=lag,
                dead_letters=dead_letters,
                retry=retry or self.retry,
                offsets=offsets,
            )

        self.start_soon(f"consumer {name}", consumer.start, then=loop, task_name=task_name)

    def follow(
        self,
        task_name: str,
        consumer: AIOKafkaConsumer,
        run: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
        *,
        name: str,
    ) -> None:
        """Start a consumer that commits nothing (e.g. one without a group reading a whole
        topic into memory) once the broker answers, then `run(stop)`; close() stops it."""
        self._consumers.append(consumer)
        self.start_soon(
            f"consumer {name}", consumer.start, then=lambda: run(self.stop), task_name=task_name
        )

    @property
    def names(self) -> list[str]:
        """The names of the tasks started, in order."""
        return [task.get_name() for task in self._tasks]

    @property
    def failures(self) -> list[str]:
        """What died before stop was asked (`<task>: <error>`); empty while all is well."""
        return list(self._failures)

    def _report_failure(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._report(task)

    def _report(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self.stop.is_set():
            return
        error = task.exception()
        if error is None:
            log.error("background task %s ended before stop was asked", task.get_name())
            self._failures.append(f"{task.get_name()}: ended")
        else:
            log.error("background task %s died", task.get_name(), exc_info=error)
            self._failures.append(f"{task.get_name()}: {type(error).__name__}: {error}")

    async def close(self, grace_seconds: float = 15.0) -> None:
        """Signal stop, wait for the tasks to finish, cancel what is still running, then stop
        the Kafka consumers."""
        self.stop.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks.clear()
        for consumer in self._consumers:
            await consumer.stop()
        self._consumers.clear()


async def run_periodically(
    work: Callable[[], Awaitable[object]],
    stop: asyncio.Event,
    interval_seconds: float,
    *,
    name: str,
    wake: asyncio.Event | None = None,
    log: logging.Logger | None = None,
) -> None:
    """Run `work` every interval, or as soon as `wake` is set, until `stop` is set.

    A failure is logged and the next round comes as usual: a background loop must outlive a
    database or broker hiccup.
    """
    logger = log or logging.getLogger(__name__)
    outage = OutageLog(logger, name)
    while not stop.is_set():
        try:
            await work()
            outage.recovered()
        except Exception as exc:
            if is_transient(exc):
                outage.failed(exc)  # once with a count, not a traceback every round
            else:
                logger.exception("%s failed; next attempt in %.0fs", name, interval_seconds)
        waiters = {asyncio.ensure_future(stop.wait())}
        if wake is not None:
            waiters.add(asyncio.ensure_future(wake.wait()))
        await asyncio.wait(waiters, timeout=interval_seconds, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        if wake is not None:
            wake.clear()

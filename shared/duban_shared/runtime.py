"""Background work of a service (consumers, relays, sweepers) with one clean stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer

from duban_shared.kafka import BatchHandler, run_batch_consumer

if TYPE_CHECKING:
    from duban_shared.metrics import LagTracker

log = logging.getLogger(__name__)


class Background:
    """Long-running tasks that share one stop signal; a crashed task is logged, not hidden:
    `failures` names it (the service's /healthz then fails, so the process is restarted)."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._consumers: list[AIOKafkaConsumer] = []
        self._failures: list[str] = []

    def spawn(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        """Start a task that should run until stop is set."""
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._report)
        self._tasks.append(task)

    async def consume(
        self,
        task_name: str,
        consumer: AIOKafkaConsumer,
        handle_batch: BatchHandler,
        *,
        name: str,
        lag: LagTracker | None = None,
        retry_seconds: float = 1.0,
    ) -> None:
        """Start a Kafka consumer and its batch loop (`duban_shared.kafka.run_batch_consumer`);
        close() stops the consumer after the loop."""
        await consumer.start()
        self._consumers.append(consumer)
        self.spawn(
            task_name,
            run_batch_consumer(
                consumer,
                handle_batch,
                self.stop,
                name=name,
                lag=lag,
                retry_seconds=retry_seconds,
            ),
        )

    @property
    def names(self) -> list[str]:
        """The names of the tasks started, in order."""
        return [task.get_name() for task in self._tasks]

    @property
    def failures(self) -> list[str]:
        """What died before stop was asked (`<task>: <error>`); empty while all is well."""
        return list(self._failures)

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
    while not stop.is_set():
        try:
            await work()
        except Exception:
            logger.exception("%s failed; next attempt in %.0fs", name, interval_seconds)
        waiters = {asyncio.ensure_future(stop.wait())}
        if wake is not None:
            waiters.add(asyncio.ensure_future(wake.wait()))
        await asyncio.wait(waiters, timeout=interval_seconds, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        if wake is not None:
            wake.clear()

"""Background work of a service (consumers, relays, sweepers) with one clean stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class Background:
    """Long-running tasks that share one stop signal; a crashed task is logged, not hidden."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def spawn(self, name: str, coro: Coroutine[Any, Any, None]) -> None:
        """Start a task that should run until stop is set."""
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._report)
        self._tasks.append(task)

    def _report(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None and not self.stop.is_set():
            log.error("background task %s died", task.get_name(), exc_info=task.exception())

    async def close(self, grace_seconds: float = 15.0) -> None:
        """Signal stop, wait for the tasks to finish, cancel what is still running."""
        self.stop.set()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=grace_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

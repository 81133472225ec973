"""What a use case runs with: a session to open its transaction on, the clocks, the settings,
and the outbox relay to wake once what it queued is committed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from duban_shared.clock import Clock
from sqlmodel.ext.asyncio.session import AsyncSession

from registry.settings import RegistrySettings


def _nothing() -> None:
    """No relay runs in this process (the command line): the running registry relays."""


@dataclass(frozen=True)
class Context:
    """A use case's dependencies: the HTTP request's (api.deps) or the command's (cli.common)."""

    session: AsyncSession
    settings: RegistrySettings
    clock: Clock  # domain time: plan, work point and agency changes
    wall_clock: Clock  # real seconds: clients, tokens, signing keys
    wake: Callable[[], None] = _nothing

    @asynccontextmanager
    async def transaction(self, *, wall: bool = False) -> AsyncIterator[datetime]:
        """One transaction, yielding the time it records (domain time, or with `wall` real
        time); after the commit the outbox relay is woken for what it queued."""
        async with self.session.begin():
            yield (self.wall_clock if wall else self.clock).now()
        self.wake()

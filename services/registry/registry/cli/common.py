"""What the registry's commands share: the program name, and running a use case on the
migrated database."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from duban_shared.audit import Actor
from duban_shared.clock import SystemClock
from duban_shared.db import create_engine, session_factory
from duban_shared.migrations import upgrade

from registry.settings import RegistrySettings
from registry.use_cases.context import Context

PROG = "duban-registry"
MIGRATIONS = Path(__file__).parent.parent / "migrations"
T = TypeVar("T")


def run_use_case(work: Callable[[Context], Awaitable[T]]) -> T:
    """Migrate the registry database, then run `work` (use cases) with a session of it. The
    running registry relays what they queue on the outbox."""
    settings = RegistrySettings()
    upgrade(MIGRATIONS, settings.database_url)
    print(f"registry: database at head ({settings.database_url})", file=sys.stderr)

    async def run() -> T:
        engine = create_engine(settings.database_url)
        try:
            async with session_factory(engine)() as session:
                clock = SystemClock()
                actor = Actor(f"cli:{PROG}", "operator")
                return await work(Context(session, settings, clock, clock, actor=actor))
        finally:
            await engine.dispose()

    return asyncio.run(run())

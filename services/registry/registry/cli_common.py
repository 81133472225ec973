"""What the registry's commands share: the program name and one database transaction."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from duban_shared.clock import SystemClock
from duban_shared.db import create_engine, session_factory
from duban_shared.migrations import upgrade
from sqlmodel.ext.asyncio.session import AsyncSession

from registry.settings import RegistrySettings

PROG = "duban-registry"
MIGRATIONS = Path(__file__).parent / "migrations"
T = TypeVar("T")


def in_transaction(work: Callable[[AsyncSession, datetime], Awaitable[T]]) -> T:
    """Migrate the registry database, then run `work` in one transaction of it."""
    settings = RegistrySettings()
    upgrade(MIGRATIONS, settings.database_url)
    print(f"registry: database at head ({settings.database_url})", file=sys.stderr)

    async def run() -> T:
        engine = create_engine(settings.database_url)
        try:
            async with session_factory(engine)() as session, session.begin():
                return await work(session, SystemClock().now())
        finally:
            await engine.dispose()

    return asyncio.run(run())

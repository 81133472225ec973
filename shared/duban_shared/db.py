"""Async database engines for PostgreSQL (psycopg 3) and SQLite (aiosqlite)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Dialect, TypeDecorator, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession


def is_sqlite(url: str) -> bool:
    """Tell whether a database URL points at SQLite."""
    return make_url(url).get_backend_name() == "sqlite"


def sync_url(url: str) -> str:
    """Return the URL alembic's synchronous engine uses for the same database."""
    parsed = make_url(url)
    if parsed.drivername == "sqlite+aiosqlite":
        parsed = parsed.set(drivername="sqlite")
    return parsed.render_as_string(hide_password=False)


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """Create an async engine; SQLite gets WAL, foreign keys and a busy timeout.

    On PostgreSQL the pool keeps `pool_size` connections and opens up to as many again when
    busy: an async request holds its connection across awaits, so under load more requests
    hold one at a time than the statement rate suggests, and a pool too small opens and closes
    connections all the time.

    Every statement is planned for its own parameters (`plan_cache_mode=force_custom_plan`):
    ours are mostly batch statements (`= ANY(array)`, many rows at once) that psycopg
    prepares after a few executions, and a generic plan PostgreSQL settled on while a table
    was small made the status consumer's main statements three times as costly for the rest
    of a run (in about a third of the consumer benchmark's runs: 1,800-1,950 events/s
    instead of 2,300-2,550). Planning them afresh costs little beside their work.
    """
    kwargs: dict[str, Any] = {
        "pool_pre_ping": True,
        "pool_size": pool_size,
        "max_overflow": pool_size,
        "connect_args": {"options": "-c plan_cache_mode=force_custom_plan"},
    }
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs = {"connect_args": {"timeout": 30}}
    engine = create_async_engine(url, **kwargs)
    if is_sqlite(url):

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Return a factory of sessions that keep objects usable after commit."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp column that stores UTC and always reads back aware UTC (SQLite too)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return aware UTC whatever the driver gave."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_column(*, nullable: bool = False, index: bool = False) -> Any:
    """A SQLModel Field for an aware UTC timestamp column."""
    from sqlmodel import Field

    return Field(
        default=None if nullable else ..., sa_type=UtcDateTime, nullable=nullable, index=index
    )

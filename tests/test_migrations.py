"""Each service's migrations go up to head, down to base and up again, on both databases,
and head matches the service's table models."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from duban_shared.db import is_sqlite, sync_url
from duban_shared.migrations import downgrade, upgrade
from notifier.models import NotifierBase
from progress.models import ProgressBase
from registry.models import RegistryBase
from sqlalchemy import Engine, MetaData, create_engine, inspect, pool

from tests.harness import MIGRATIONS

METADATA: dict[str, MetaData] = {
    "registry": RegistryBase.metadata,
    "progress": ProgressBase.metadata,
    "notifier": NotifierBase.metadata,
}


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """Factory: an empty database (PostgreSQL ones are created migrated, so taken to base)."""
    if request.param == "sqlite":
        return lambda service: f"sqlite+aiosqlite:///{tmp_path / service}.db"
    make: Callable[[str], str] = request.getfixturevalue("make_database")

    def fresh(service: str) -> str:
        url = make(service)
        downgrade(MIGRATIONS[service], url, "base")
        return url

    return fresh


@pytest.fixture
def sync_engine() -> Iterator[Callable[[str], Engine]]:
    engines: list[Engine] = []

    def make(url: str) -> Engine:
        engine = create_engine(sync_url(url), poolclass=pool.NullPool)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.dispose()


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def _version(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _drift(engine: Engine, metadata: MetaData) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "render_as_batch": is_sqlite(str(engine.url))}
        )
        return list(compare_metadata(context, metadata))


@pytest.mark.parametrize("service", ["registry", "progress", "notifier"])
def test_migrations_upgrade_downgrade_and_upgrade_again(
    service: str,
    empty_database: Callable[[str], str],
    sync_engine: Callable[[str], Engine],
) -> None:
    url = empty_database(service)
    engine = sync_engine(url)
    model_tables = set(METADATA[service].tables)
    assert _tables(engine) <= {"alembic_version"}

    upgrade(MIGRATIONS[service], url)
    assert _tables(engine) == model_tables | {"alembic_version"}
    assert _version(engine) == "0001"
    assert _drift(engine, METADATA[service]) == []  # head is exactly what the models say

    downgrade(MIGRATIONS[service], url, "base")
    assert _tables(engine) == {"alembic_version"}
    assert _version(engine) is None

    upgrade(MIGRATIONS[service], url)
    assert _tables(engine) == model_tables | {"alembic_version"}
    assert _version(engine) == "0001"

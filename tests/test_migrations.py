"""Each service's migrations go up to head, down to base and up again, on both databases,
and head matches the service's table models."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy.exc
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from duban_shared.db import is_sqlite, sync_url
from duban_shared.migrations import alembic_config, downgrade, upgrade
from notifier.store.models import NotifierBase
from progress.store.models import ProgressBase
from registry.store import auth_models as _registry_auth_tables  # noqa: F401 (on the metadata)
from registry.store.models import RegistryBase
from sqlalchemy import Engine, MetaData, create_engine, inspect, pool, text

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


def _head(service: str) -> str:
    heads = ScriptDirectory.from_config(
        alembic_config(MIGRATIONS[service], "sqlite://")
    ).get_heads()
    assert len(heads) == 1, f"{service} has several migration heads: {heads}"
    return str(heads[0])


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
    assert _version(engine) == _head(service)
    assert _drift(engine, METADATA[service]) == []  # head is exactly what the models say

    downgrade(MIGRATIONS[service], url, "base")
    assert _tables(engine) == {"alembic_version"}
    assert _version(engine) is None

    upgrade(MIGRATIONS[service], url)
    assert _tables(engine) == model_tables | {"alembic_version"}
    assert _version(engine) == _head(service)


def test_registry_0003_carries_existing_plans_agencies_and_targets_both_ways(
    empty_database: Callable[[str], str], sync_engine: Callable[[str], Engine]
) -> None:
    url = empty_database("registry")
    upgrade(MIGRATIONS["registry"], url, "0002")  # before the plan model
    engine = sync_engine(url)
    forestry = uuid.uuid4()
    targets = [
        {"metric": "林分优化", "value": 13, "unit": "万亩", "comparator": "=", "source": "s"}
    ]
    now = datetime(2024, 8, 7, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO plan (id, slug, title, issuer, issued_on, year, source_sha256, "
                "imported_at) VALUES (1, 'p', 't', 'i', :d, 2024, 'h', :now)"
            ),
            {"d": date(2024, 8, 6), "now": now},
        )
        conn.execute(
            text("INSERT INTO agency (id, name, kind) VALUES (:id, '市林业局', 'city_bureau')"),
            {"id": forestry if not is_sqlite(url) else forestry.hex},
        )
        conn.execute(
            text(
                "INSERT INTO workpoint (id, plan_id, number, section_number, title, text, "
                "lead_inferred, with_other_units, targets, revision, updated_at) VALUES "
                "('p/35', 1, 35, 9, 't', 'x', false, false, :targets, 1, :now)"
            ),
            {"targets": json.dumps(targets, ensure_ascii=False), "now": now},
        )

    upgrade(MIGRATIONS["registry"], url, "0003")
    with engine.connect() as conn:
        due_on, version = conn.execute(text("SELECT due_on, version FROM plan")).one()
        assert (str(due_on), version) == ("2024-12-31", 1)  # SQLite answers raw SQL with text
        assert conn.execute(text("SELECT name_key FROM agency")).scalar_one() == "林业局"
        moved = conn.execute(text("SELECT work_point_id, position, value, unit FROM target")).all()
        assert [tuple(r) for r in moved] == [("p/35", 0, 13.0, "万亩")]

    downgrade(MIGRATIONS["registry"], url, "0002")
    with engine.connect() as conn:
        restored = conn.execute(text("SELECT targets FROM workpoint")).scalar_one()
    restored = json.loads(restored) if isinstance(restored, str) else restored
    assert [(t["metric"], t["value"], t["unit"]) for t in restored] == [("林分优化", 13.0, "万亩")]


def test_registry_0004_gives_stored_work_points_their_number_as_code_unique_per_plan(
    empty_database: Callable[[str], str], sync_engine: Callable[[str], Engine]
) -> None:
    url = empty_database("registry")
    upgrade(MIGRATIONS["registry"], url, "0003")  # before codes
    engine = sync_engine(url)
    now = datetime(2024, 8, 7, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO plan (id, slug, title, issuer, issued_on, year, due_on, version, "
                "source_sha256, imported_at, report_every_working_days, grace_working_days, "
                "warn_before_due_working_days, pace_tolerance_pct, flatline_reports) VALUES "
                "(1, 'p', 't', 'i', :d, 2024, :due, 1, 'h', :now, 10, 3, 10, 10, 3)"
            ),
            {"d": date(2024, 8, 6), "due": date(2024, 12, 31), "now": now},
        )
        for number in (2, 35):
            conn.execute(
                text(
                    "INSERT INTO workpoint (id, plan_id, number, section_number, title, text, "
                    "lead_inferred, with_other_units, revision, updated_at) VALUES "
                    "(:id, 1, :n, 9, 't', 'x', false, false, 1, :now)"
                ),
                {"id": f"p/{number}", "n": number, "now": now},
            )

    upgrade(MIGRATIONS["registry"], url, "0004")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, number, code FROM workpoint ORDER BY number")).all()
    assert [tuple(r) for r in rows] == [("p/2", 2, "2"), ("p/35", 35, "35")]
    with engine.begin() as conn:  # the number is an ordinal now: it may repeat while renumbering
        conn.execute(text("UPDATE workpoint SET number = 2 WHERE id = 'p/35'"))
        conn.execute(text("UPDATE workpoint SET number = 35 WHERE id = 'p/35'"))
    with pytest.raises(sqlalchemy.exc.IntegrityError), engine.begin() as conn:
        conn.execute(text("UPDATE workpoint SET code = '2' WHERE id = 'p/35'"))

    downgrade(MIGRATIONS["registry"], url, "0003")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM workpoint")).scalar_one() == 2


async def test_progress_0003_chains_reports_stored_before_it_so_they_verify(
    empty_database: Callable[[str], str], sync_engine: Callable[[str], Engine]
) -> None:
    from duban_shared.db import create_engine as create_async_engine
    from duban_shared.db import session_factory
    from progress.store import history

    url = empty_database("progress")
    upgrade(MIGRATIONS["progress"], url, "0002")
    engine = sync_engine(url)
    agency = uuid.uuid4()
    insert = text(
        "INSERT INTO status_report (event_id, work_point_id, agency_id, status, percent, note, "
        "occurred_at, received_at, stored_at, out_of_order) VALUES "
        "(:id, 'p/35', :agency, :status, :pct, :note, :at, NULL, :at, false)"
    )
    with engine.begin() as conn:
        for minute, status in enumerate(["on_track", "at_risk", "blocked"]):
            at = datetime(2024, 9, 2, 1, minute, tzinfo=UTC)
            ids = (uuid.uuid4(), agency)
            conn.execute(
                insert,
                {
                    "id": ids[0] if not is_sqlite(url) else ids[0].hex,
                    "agency": ids[1] if not is_sqlite(url) else ids[1].hex,
                    "status": status,
                    "pct": 10 * minute,
                    "note": f"第{minute}次",
                    "at": at if not is_sqlite(url) else at.replace(tzinfo=None),
                },
            )
    upgrade(MIGRATIONS["progress"], url, "0003")
    # Later revisions add hashed fields (KPIs, evidence, lateness): the old rows still verify.
    upgrade(MIGRATIONS["progress"], url, "head")

    async_engine = create_async_engine(url)
    try:
        async with session_factory(async_engine)() as session:
            result = await history.verify(session)
    finally:
        await async_engine.dispose()
    assert (result.ok, result.rows_checked) == (True, 3)

"""The plan import on PostgreSQL and SQLite: idempotent, precise updates, tombstones; and the
registry's read API over the imported plan (no Kafka needed to read)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from duban_shared import topics
from duban_shared.clock import ManualClock
from duban_shared.db import create_engine, session_factory
from duban_shared.events import AgencySnapshot, WorkPointSnapshot
from registry.domain.agency_identity import agency_id_for
from registry.domain.plan_import import Defaults, ImportReport, sha256_text
from registry.domain.plan_parser import parse_plan
from registry.main import build, create_app
from registry.settings import RegistrySettings
from registry.store.models import Agency, OutboxMessage, Plan, Responsibility, Section, WorkPoint
from registry.use_cases.plans import import_plan
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from tests.harness import Spans
from tests.stack import bearer

PLAN = "zhaoqing-digital-2024"
PLAN_PATH = Path(__file__).resolve().parents[4] / "data" / "plans" / f"{PLAN}.txt"
OLD_35 = "(三十五)加强林业数字化应用。"
NEW_35 = "(三十五)深化林业数字化应用。"
START = datetime.fromisoformat("2024-09-02T09:00:00+08:00")


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(
    request: pytest.FixtureRequest,
) -> str:
    if request.param == "postgresql":
        make: Callable[[str], str] = request.getfixturevalue("make_database")
    else:
        make = request.getfixturevalue("sqlite_url")
    return make("registry")


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
def plan_text() -> str:
    text = PLAN_PATH.read_text(encoding="utf-8")
    assert text.count(OLD_35) == 1
    return text


async def _import(
    sessions: async_sessionmaker[AsyncSession], text: str, now: datetime
) -> ImportReport:
    async with sessions() as session, session.begin():
        return await import_plan(
            session,
            parse_plan(text),
            slug=PLAN,
            source_sha256=sha256_text(text),
            now=now,
            defaults=Defaults(),
        )


async def _count(sessions: async_sessionmaker[AsyncSession], model: type) -> int:
    async with sessions() as session:
        return int((await session.exec(select(func.count()).select_from(model))).one())


async def _outbox(
    sessions: async_sessionmaker[AsyncSession], topic: str = topics.WORK_POINTS
) -> list[OutboxMessage]:
    async with sessions() as session:
        query = (
            select(OutboxMessage)
            .where(OutboxMessage.topic == topic)
            .order_by(col(OutboxMessage.id))
        )
        return list((await session.exec(query)).all())


async def _revisions(sessions: async_sessionmaker[AsyncSession]) -> dict[int, int]:
    async with sessions() as session:
        return {wp.number: wp.revision for wp in (await session.exec(select(WorkPoint))).all()}


async def test_importing_the_plan_stores_sections_work_points_agencies_and_snapshots(
    sessions: async_sessionmaker[AsyncSession], plan_text: str
) -> None:
    report = await _import(sessions, plan_text, START)

    assert report.plan_created and report.changed
    assert report.work_points_added == [str(n) for n in range(1, 51)]
    assert len(report.agencies_added) == 52
    assert await _count(sessions, Plan) == 1
    assert await _count(sessions, Section) == 13
    assert await _count(sessions, WorkPoint) == 50
    assert await _count(sessions, Agency) == 52
    rows = await _outbox(sessions)
    assert len(rows) == 50
    assert {r.topic for r in rows} == {topics.WORK_POINTS}
    snaps = [WorkPointSnapshot.model_validate_json(r.payload) for r in rows]
    assert [s.number for s in snaps] == list(range(1, 51))
    assert [r.key for r in rows] == [s.work_point_id for s in snaps]
    forestry = snaps[34]
    assert forestry.work_point_id == f"{PLAN}/35"
    assert forestry.title == "加强林业数字化应用"
    assert [(r.name, r.role) for r in forestry.responsibilities] == [("市林业局", "lead")]
    assert forestry.responsibilities[0].agency_id == agency_id_for("市林业局")
    assert (forestry.report_every_working_days, forestry.grace_working_days) == (10, 3)
    assert set((await _revisions(sessions)).values()) == {1}
    agency_rows = await _outbox(sessions, topics.AGENCIES)
    assert len(agency_rows) == 52
    assert {AgencySnapshot.model_validate_json(r.payload).name for r in agency_rows} >= {"市林业局"}


async def test_reimporting_the_same_plan_changes_nothing(
    sessions: async_sessionmaker[AsyncSession], plan_text: str
) -> None:
    await _import(sessions, plan_text, START)
    report = await _import(sessions, plan_text, START + timedelta(days=1))

    assert report.changed is False
    assert report.work_points_unchanged == 50
    assert report.agencies_added == report.work_points_updated == []
    assert len(await _outbox(sessions)) == 50
    assert set((await _revisions(sessions)).values()) == {1}
    assert await _count(sessions, Responsibility) > 50  # roles were not dropped


async def test_rewording_one_work_point_updates_only_that_work_point(
    sessions: async_sessionmaker[AsyncSession], plan_text: str
) -> None:
    await _import(sessions, plan_text, START)
    changed = plan_text.replace(OLD_35, NEW_35)
    later = START + timedelta(days=7)
    report = await _import(sessions, changed, later)

    assert report.changed
    assert report.work_points_updated == ["35"]
    assert report.work_points_unchanged == 49
    assert report.work_points_added == report.work_points_removed == []
    revisions = await _revisions(sessions)
    assert revisions.pop(35) == 2
    assert set(revisions.values()) == {1}

    rows = await _outbox(sessions)
    assert len(rows) == 51
    snap = WorkPointSnapshot.model_validate_json(rows[-1].payload)
    assert (rows[-1].key, snap.number, snap.title) == (f"{PLAN}/35", 35, "深化林业数字化应用")
    assert snap.occurred_at == later
    assert snap.deleted is False
    assert [r.name for r in snap.responsibilities] == ["市林业局"]
    async with sessions() as session:
        wp = await session.get(WorkPoint, f"{PLAN}/35")
        plan = (await session.exec(select(Plan))).one()
    assert wp is not None and wp.title == "深化林业数字化应用"
    assert wp.updated_at == later
    assert plan.source_sha256 == sha256_text(changed)


async def test_a_work_point_removed_from_the_text_is_deleted_and_a_tombstone_is_queued(
    sessions: async_sessionmaker[AsyncSession], plan_text: str
) -> None:
    await _import(sessions, plan_text, START)
    lines = plan_text.splitlines(keepends=True)
    without_50 = "".join(line for line in lines if not line.startswith("(五十)"))
    assert len(without_50) < len(plan_text)
    report = await _import(sessions, without_50, START + timedelta(days=7))

    assert report.work_points_removed == ["50"]
    assert report.work_points_updated == []
    assert await _count(sessions, WorkPoint) == 49
    async with sessions() as session:
        assert await session.get(WorkPoint, f"{PLAN}/50") is None
        orphans = await session.exec(
            select(Responsibility).where(Responsibility.work_point_id == f"{PLAN}/50")
        )
        assert orphans.all() == []
    rows = await _outbox(sessions)
    assert len(rows) == 51
    tomb = WorkPointSnapshot.model_validate_json(rows[-1].payload)
    assert rows[-1].key == f"{PLAN}/50"
    assert (tomb.work_point_id, tomb.deleted, tomb.responsibilities) == (f"{PLAN}/50", True, [])

    # Importing the shortened text again changes nothing more.
    again = await _import(sessions, without_50, START + timedelta(days=8))
    assert again.changed is False
    assert len(await _outbox(sessions)) == 51


@pytest.fixture
async def registry_http(
    database_url: str, plan_text: str, spans: Spans
) -> AsyncIterator[httpx.AsyncClient]:
    clock = ManualClock(START)
    service = build(
        RegistrySettings(database_url=database_url, environment="test"),  # type: ignore[call-arg]
        clock=clock,
        tracer_provider=spans.provider("duban-registry"),
    )
    await _import(service.sessions, plan_text, clock.now())
    transport = httpx.ASGITransport(app=create_app(service))
    headers = await bearer(service)  # reading the plan needs a token
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=headers
    ) as client:
        yield client
    await service.close()  # never started: stops nothing on Kafka, disposes the engine


async def test_listing_work_points_by_agency_returns_only_that_agencys(
    registry_http: httpx.AsyncClient,
) -> None:
    response = await registry_http.get(
        f"/v1/plans/{PLAN}/work-points", params={"agency_id": str(agency_id_for("市林业局"))}
    )
    assert response.status_code == 200, response.text
    body = response.json()["items"]
    assert [wp["number"] for wp in body] == [35]
    assert body[0]["id"] == f"{PLAN}/35"
    assert body[0]["responsibilities"] == [
        {"agency_id": str(agency_id_for("市林业局")), "agency_name": "市林业局", "role": "lead"}
    ]


async def test_listing_all_work_points_returns_fifty_in_number_order(
    registry_http: httpx.AsyncClient,
) -> None:
    response = await registry_http.get(f"/v1/plans/{PLAN}/work-points")
    page = response.json()
    assert [wp["number"] for wp in page["items"]] == list(range(1, 51))
    assert page["total"] == 50


async def test_an_unknown_work_point_is_a_404_with_a_stable_code(
    registry_http: httpx.AsyncClient,
) -> None:
    response = await registry_http.get(f"/v1/plans/{PLAN}/work-points/99")
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_work_point"
    assert f"/v1/plans/{PLAN}/work-points" in response.json()["message"]


async def test_an_agency_without_work_points_gets_an_empty_list_not_an_error(
    registry_http: httpx.AsyncClient,
) -> None:
    response = await registry_http.get(
        f"/v1/plans/{PLAN}/work-points", params={"agency_id": str(uuid.uuid4())}
    )
    assert response.status_code == 200
    assert (response.json()["items"], response.json()["total"]) == ([], 0)

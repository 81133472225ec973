"""The three services wired together on real Kafka, PostgreSQL and SMTP, with one moved clock.

The services run in the test's process (their background tasks on its event loop) and talk only
through Kafka, as in production; each has its own database and its own TracerProvider.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime

import httpx
import pytest
from duban_shared.clock import ManualClock
from notifier.main import NotifierService
from notifier.main import build as build_notifier
from notifier.main import create_app as notifier_app
from notifier.settings import NotifierSettings
from progress.cli import create_api_key
from progress.main import ProgressService
from progress.main import build as build_progress
from progress.main import create_app as progress_app
from progress.models import WorkPointView
from progress.settings import ProgressSettings
from registry.main import RegistryService
from registry.main import build as build_registry
from registry.main import create_app as registry_app
from registry.plan_parser import parse_plan
from registry.settings import RegistrySettings
from registry.store import Defaults, agency_id_for, import_plan, sha256_text
from sqlmodel import func, select

from tests.harness import PLAN_PATH, SmtpSink, Spans, wait_for

PLAN = "zhaoqing-digital-2024"
FORESTRY = "市林业局"
FORESTRY_MAIL = "linye@zhaoqing.example.cn"
# Monday 2 September 2024, 09:00 in Zhaoqing.
START = datetime.fromisoformat("2024-09-02T09:00:00+08:00")


@dataclass
class Stack:
    """Handles on the running system."""

    clock: ManualClock
    registry: RegistryService
    progress: ProgressService
    notifier: NotifierService
    registry_http: httpx.AsyncClient
    progress_http: httpx.AsyncClient
    notifier_http: httpx.AsyncClient
    smtp: SmtpSink
    spans: Spans
    kafka_bootstrap: str
    topic_prefix: str
    forestry_key: str

    @property
    def forestry_id(self) -> uuid.UUID:
        """The registry id of 市林业局."""
        return agency_id_for(FORESTRY)

    async def key_for(self, agency_name: str) -> str:
        """Issue an API key to an agency of the plan."""
        return await create_api_key(
            self.progress.settings.database_url, agency_id_for(agency_name), "test"
        )

    async def post_event(
        self, key: str, number: int, status: str, **extra: object
    ) -> httpx.Response:
        """Post a status report as an agency system would."""
        body = {
            "event_id": str(extra.pop("event_id", uuid.uuid4())),
            "work_point_id": f"{PLAN}/{number}",
            "status": status,
            "occurred_at": extra.pop("occurred_at", self.clock.now().isoformat()),
            **extra,
        }
        return await self.progress_http.post("/v1/events", json=body, headers={"X-API-Key": key})


async def _import_plan(registry: RegistryService) -> None:
    text = PLAN_PATH.read_text(encoding="utf-8")
    async with registry.sessions() as session, session.begin():
        await import_plan(
            session,
            parse_plan(text),
            slug=PLAN,
            source_sha256=sha256_text(text),
            now=registry.clock.now(),
            defaults=Defaults(),
        )
    registry.relay.wake()


async def _tracked(progress: ProgressService) -> int:
    async with progress.sessions() as session:
        return int((await session.exec(select(func.count()).select_from(WorkPointView))).one())


@pytest.fixture
async def stack(
    kafka_bootstrap: str,
    topic_prefix: str,
    make_database: Callable[[str], str],
    smtp: SmtpSink,
    spans: Spans,
) -> AsyncIterator[Stack]:
    """Start registry, progress and notifier; import the plan; wait until progress has it."""
    clock = ManualClock(START)
    common = {
        "kafka_bootstrap_servers": kafka_bootstrap,
        "topic_prefix": topic_prefix,
        "outbox_poll_seconds": 0.2,
        "environment": "test",
    }
    registry = build_registry(
        RegistrySettings(database_url=make_database("registry"), **common),  # type: ignore[arg-type]
        clock=clock,
        tracer_provider=spans.provider("duban-registry"),
    )
    progress = build_progress(
        ProgressSettings(database_url=make_database("progress"), run_sweeper=False, **common),  # type: ignore[arg-type]
        clock=clock,
        tracer_provider=spans.provider("duban-progress"),
    )
    notifier = build_notifier(
        NotifierSettings(
            database_url=make_database("notifier"),
            smtp_port=smtp.port,
            admin_token="test-operator-token",
            retry_seconds=0.2,
            **common,  # type: ignore[arg-type]
        ),
        clock=clock,
        tracer_provider=spans.provider("duban-notifier"),
    )
    services = [registry, progress, notifier]
    started = []
    try:
        for service in services:
            await service.start()
            started.append(service)
        await _import_plan(registry)
        await wait_for(
            lambda: _has_all(progress), within=60, what="progress to learn the 50 work points"
        )
        clients = [
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
            for app in (registry_app(registry), progress_app(progress), notifier_app(notifier))
        ]
        st = Stack(
            clock=clock,
            registry=registry,
            progress=progress,
            notifier=notifier,
            registry_http=clients[0],
            progress_http=clients[1],
            notifier_http=clients[2],
            smtp=smtp,
            spans=spans,
            kafka_bootstrap=kafka_bootstrap,
            topic_prefix=topic_prefix,
            forestry_key="",
        )
        st.forestry_key = await st.key_for(FORESTRY)
        response = await st.notifier_http.put(
            f"/v1/agencies/{st.forestry_id}/contacts/email",
            json={"addresses": [FORESTRY_MAIL]},
            headers={"Authorization": "Bearer test-operator-token"},
        )
        assert response.status_code == 200, response.text
        yield st
        for client in clients:
            await client.aclose()
    finally:
        for service in reversed(started):
            await service.close()


async def _has_all(progress: ProgressService) -> bool:
    return await _tracked(progress) == 50

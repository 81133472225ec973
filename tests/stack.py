"""The three services wired together on real Kafka, PostgreSQL and SMTP, with one moved clock.

The services run in the test's process (their background tasks on its event loop) and talk only
through Kafka, as in production; each has its own database and its own TracerProvider. Callers
authenticate as production clients do: API clients are created in the registry, tokens come from
its `POST /oauth/token`, and progress and the notifier fetch the registry's JWKS over HTTP (to
the registry app through `RegistryLink`, which a test can cut to play a registry that is down).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import jwt
import pytest
from duban_shared.audit import Actor
from duban_shared.auth import Role
from duban_shared.clock import ManualClock
from notifier.main import build as build_notifier
from notifier.main import create_app as notifier_app
from notifier.service import NotifierService
from notifier.settings import NotifierSettings
from notifier.store.models import AgencyView
from opentelemetry.sdk.trace import TracerProvider
from progress.main import build as build_progress
from progress.main import create_app as progress_app
from progress.service import ProgressService
from progress.settings import ProgressSettings
from progress.store.models import StatusReport, WorkPointView
from registry.domain.agency_identity import agency_id_for
from registry.domain.plan_import import Defaults, sha256_text
from registry.domain.plan_parser import parse_plan
from registry.main import build as build_registry
from registry.main import create_app as registry_app
from registry.service import RegistryService
from registry.settings import RegistrySettings
from registry.store import clients as client_store
from registry.use_cases import accounts
from registry.use_cases.context import Context
from registry.use_cases.plans import import_plan
from sqlmodel import col, func, select

from tests.harness import PLAN_PATH, ROOT, SmtpSink, Spans, wait_for

PLAN = "zhaoqing-digital-2024"
FORESTRY = "市林业局"
FORESTRY_MAIL = "linye@zhaoqing.example.cn"
LEADERS_MAIL = "leaders@zhaoqing.example.cn"  # circulars' recipients
OFFICE_MAIL = "duban-office@zhaoqing.example.cn"
# Monday 2 September 2024, 09:00 in Zhaoqing.
START = datetime.fromisoformat("2024-09-02T09:00:00+08:00")


@dataclass
class Client:
    """An API client of the registry, as an agency system or the office keeps it."""

    client_id: str
    secret: str
    role: Role
    agency_id: uuid.UUID | None = None
    token: str | None = None  # the last access token and when it expires
    expires_at: datetime | None = None


class RegistryLink(httpx.AsyncBaseTransport):
    """HTTP from progress and the notifier to the registry app; `up = False` cuts it."""

    def __init__(self, app: object) -> None:
        self._app = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        self.up = True
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Pass the request to the registry app, or fail as an unreachable host does."""
        self.requests += 1
        if not self.up:
            raise httpx.ConnectError("registry unreachable (cut by the test)", request=request)
        return await self._app.handle_async_request(request)


async def create_client(
    registry: RegistryService, role: Role, agency_name: str | None = None, label: str = "test"
) -> Client:
    """Create an API client in the registry, as `duban-registry create-client` does."""
    async with registry.sessions() as session, session.begin():
        agency = (
            await client_store.resolve_agency(session, agency_name=agency_name)
            if agency_name
            else None
        )
        issued = await client_store.create_client(
            session, role=role, agency=agency, label=label, now=registry.clock.now()
        )
    return Client(issued.client.client_id, issued.secret, role, issued.client.agency_id)


PERSON_PASSWORD = "correct horse 2024"


@dataclass
class Person:
    """A personal account of the registry: someone who logs in to the board."""

    username: str
    password: str
    role: Role
    agency_id: uuid.UUID | None = None
    display_name: str = ""


async def create_person(
    registry: RegistryService,
    username: str,
    role: Role,
    agency_name: str | None = None,
    *,
    display_name: str = "",
    password: str | None = PERSON_PASSWORD,
) -> tuple[Person, str | None]:
    """Create a personal account, as `duban-registry create-account` does: with `password`
    (kept), or with None a one-time password (returned) to be replaced at the first login."""
    async with registry.sessions() as session:
        ctx = Context(
            session,
            registry.settings,
            registry.clock,
            registry.wall_clock,
            wake=registry.relay.wake,
            actor=Actor("cli:test", "operator"),
        )
        made = await accounts.create_account(
            ctx,
            username=username,
            display_name=display_name or username,
            role=role,
            agency_name=agency_name,
            password=password,
        )
    person = Person(
        made.account.username,
        password or str(made.one_time_password),
        role,
        made.account.agency_id,
        made.account.display_name,
    )
    return person, made.one_time_password


async def bearer(
    registry: RegistryService, role: Role = "coordinator", agency_name: str | None = None
) -> dict[str, str]:
    """An Authorization header for a new client of the registry (token signed directly)."""
    client = await create_client(registry, role, agency_name)
    async with registry.sessions() as session:
        row = await client_store.get_client(session, client.client_id)
    token = await registry.issuer.issue(row)
    return {"Authorization": f"Bearer {token.token}"}


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
    registry_link: RegistryLink
    forestry: Client  # the agency system of 市林业局
    office: Client  # a coordinator of the coordinating office
    operator: Client
    office_person: Person  # 李督办 (li.duban), a coordinator's personal account
    forestry_person: Person  # 林小森 (lin.forest), staff of 市林业局

    @property
    def forestry_id(self) -> uuid.UUID:
        """The registry id of 市林业局."""
        return agency_id_for(FORESTRY)

    async def client_for(self, agency_name: str) -> Client:
        """Create an agency client for an agency of the plan."""
        return await create_client(self.registry, "agency", agency_name)

    async def request_token(self, client_id: str, secret: str) -> httpx.Response:
        """Ask the registry for a token (client credentials in the form)."""
        return await self.registry_http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
            },
        )

    async def token(self, client: Client) -> str:
        """A valid access token of a client: the cached one, or a new one from the registry."""
        now = self.clock.now()
        if client.token and client.expires_at and now < client.expires_at - timedelta(minutes=1):
            return client.token
        response = await self.request_token(client.client_id, client.secret)
        assert response.status_code == 200, response.text
        client.token = str(response.json()["access_token"])
        client.expires_at = now + timedelta(seconds=response.json()["expires_in"])
        return client.token

    async def person_token(self, client: Client, person: str) -> str:
        """A token of `client` that names a person (claim `person`), signed with the
        registry's current key as the registry signs its tokens: the client's own token's
        claims, with the person added. (Until the registry issues tokens to personal
        accounts, this stands for a person's login.)"""
        claims = jwt.decode(await self.token(client), options={"verify_signature": False})
        claims["person"] = person
        claims["jti"] = uuid.uuid4().hex
        signer = await self.registry.keys.signer()
        return jwt.encode(
            claims,
            signer.private_key,
            algorithm=signer.algorithm,
            headers={"kid": signer.kid, "typ": "at+jwt"},
        )

    async def auth(self, who: Client | str) -> dict[str, str]:
        """The Authorization header of a client (or of a raw token string)."""
        token = who if isinstance(who, str) else await self.token(who)
        return {"Authorization": f"Bearer {token}"}

    async def get_progress(
        self, who: Client | str, code: int | str, plan: str = PLAN
    ) -> httpx.Response:
        """Read a work point's progress (by its code: 35 or '3.2') as a client."""
        return await self.progress_http.get(
            f"/v1/work-points/{plan}/{code}/progress", headers=await self.auth(who)
        )

    async def post_event(
        self, who: Client | str, code: int | str, status: str, plan: str = PLAN, **extra: object
    ) -> httpx.Response:
        """Post a status report (on a work point by code: 35 or '3.2') as an agency system
        would (a client, or a raw token)."""
        body = {
            "event_id": str(extra.pop("event_id", uuid.uuid4())),
            "work_point_id": f"{plan}/{code}",
            "status": status,
            "occurred_at": extra.pop("occurred_at", self.clock.now().isoformat()),
            **extra,
        }
        return await self.progress_http.post("/v1/events", json=body, headers=await self.auth(who))

    async def until_applied(self, *responses: httpx.Response) -> None:
        """Wait until progress has applied the events these 202 answers accepted."""
        ids = [uuid.UUID(r.json()["event_id"]) for r in responses]
        for r in responses:
            assert r.status_code == 202, r.text

        async def applied() -> bool:
            async with self.progress.sessions() as session:
                query = select(func.count()).where(col(StatusReport.event_id).in_(ids))
                return int((await session.exec(query)).one()) == len(ids)

        await wait_for(applied, what=f"progress to apply {len(ids)} event(s)")

    async def add_plan(self, text: str, slug: str, work_points: int = 50) -> None:
        """Import another plan and wait until progress tracks its work points."""
        await import_plan_into(self.registry, text, slug)

        async def tracked() -> bool:
            async with self.progress.sessions() as session:
                query = select(func.count()).where(col(WorkPointView.plan_slug) == slug)
                return int((await session.exec(query)).one()) == work_points

        await wait_for(tracked, within=60, what=f"progress to learn the plan {slug}")

    async def office_get(self, path: str, **params: object) -> httpx.Response:
        """GET a progress path as the coordinating office."""
        return await self.progress_http.get(
            path, params=params, headers=await self.auth(self.office)
        )


def plan_2025_text() -> str:
    """A second plan for tests of several plans: the 2024 text with its year made 2025 (the
    same 50 work points and 52 agencies, each agency shared by both plans)."""
    return PLAN_PATH.read_text(encoding="utf-8").replace("2024", "2025")


async def import_plan_into(
    registry: RegistryService, text: str | None = None, slug: str = PLAN
) -> None:
    """Import a plan text (the 2024 plan's by default) as `duban-registry import-plan` does."""
    text = PLAN_PATH.read_text(encoding="utf-8") if text is None else text
    async with registry.sessions() as session, session.begin():
        await import_plan(
            session,
            parse_plan(text),
            slug=slug,
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
    async with running_stack(kafka_bootstrap, topic_prefix, make_database, smtp, spans) as st:
        yield st


ProviderFactory = Callable[[str], TracerProvider]  # service name -> that service's provider


@dataclass
class Services:
    """The three services built on given databases (not started), and the registry link."""

    registry: RegistryService
    progress: ProgressService
    notifier: NotifierService
    registry_asgi: object
    link: RegistryLink
    jwks_http: httpx.AsyncClient

    @property
    def all(self) -> list[RegistryService | ProgressService | NotifierService]:
        """In start order."""
        return [self.registry, self.progress, self.notifier]


def build_services(
    kafka_bootstrap: str,
    topic_prefix: str,
    database: Callable[[str], str],
    smtp: SmtpSink,
    provider: ProviderFactory,
    clock: ManualClock,
) -> Services:
    """Build registry, progress and the notifier as the `stack` fixture runs them, each on the
    database `database(service)` names (e.g. a restored one)."""
    common: dict[str, object] = {
        "kafka_bootstrap_servers": kafka_bootstrap,
        "topic_prefix": topic_prefix,
        "outbox_poll_seconds": 0.2,
        "consumer_retry_seconds": 0.1,
        "environment": "test",
    }
    registry = build_registry(
        RegistrySettings(database_url=database("registry"), **common),  # type: ignore[arg-type]
        clock=clock,
        tracer_provider=provider("duban-registry"),
    )
    registry_asgi = registry_app(registry)
    link = RegistryLink(registry_asgi)
    jwks_http = httpx.AsyncClient(transport=link, base_url="http://registry")
    common["auth_jwks_url"] = "http://registry/.well-known/jwks.json"
    progress = build_progress(
        ProgressSettings(database_url=database("progress"), run_sweeper=False, **common),  # type: ignore[arg-type]
        clock=clock,
        tracer_provider=provider("duban-progress"),
        jwks_http=jwks_http,
    )
    notifier = build_notifier(
        NotifierSettings(
            database_url=database("notifier"),
            smtp_port=smtp.port,
            retry_seconds=0.2,
            escalation_dir=ROOT / "tests" / "data" / "escalation",
            dispatch_interval_seconds=0.2,
            circular_recipients=f"{LEADERS_MAIL}, {OFFICE_MAIL}",
            **common,  # type: ignore[arg-type]
        ),
        clock=clock,
        tracer_provider=provider("duban-notifier"),
        jwks_http=jwks_http,
    )
    return Services(registry, progress, notifier, registry_asgi, link, jwks_http)


@asynccontextmanager
async def running_stack(
    kafka_bootstrap: str,
    topic_prefix: str,
    make_database: Callable[[str], str],
    smtp: SmtpSink,
    spans: Spans,
    *,
    tracer_provider: ProviderFactory | None = None,
) -> AsyncIterator[Stack]:
    """The `stack` fixture's system; `tracer_provider` makes each service's provider (by
    default `spans.provider`: in memory only), e.g. one that also exports to a trace backend."""
    provider = tracer_provider or spans.provider
    clock = ManualClock(START)
    built = build_services(kafka_bootstrap, topic_prefix, make_database, smtp, provider, clock)
    registry, progress, notifier = built.registry, built.progress, built.notifier
    registry_asgi, link, jwks_http = built.registry_asgi, built.link, built.jwks_http
    services = [registry, progress, notifier]
    started = []
    try:
        for service in services:
            await service.start()
            started.append(service)
            await service.background.started()
        await import_plan_into(registry)
        await wait_for(
            lambda: _has_all(progress), within=60, what="progress to learn the 50 work points"
        )
        await wait_for(
            lambda: _knows_agencies(notifier),
            within=60,
            what="the notifier to learn the 52 agencies",
        )
        clients = [
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
            for app in (registry_asgi, progress_app(progress), notifier_app(notifier))
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
            registry_link=link,
            forestry=await create_client(registry, "agency", FORESTRY),
            office=await create_client(registry, "coordinator"),
            operator=await create_client(registry, "operator"),
            office_person=(
                await create_person(registry, "li.duban", "coordinator", display_name="李督办")
            )[0],
            forestry_person=(
                await create_person(
                    registry, "lin.forest", "agency", FORESTRY, display_name="林小森"
                )
            )[0],
        )
        response = await st.notifier_http.put(
            f"/v1/agencies/{st.forestry_id}/contacts/email",
            json={"addresses": [FORESTRY_MAIL]},
            headers=await st.auth(st.operator),
        )
        assert response.status_code == 200, response.text
        yield st
        for client in clients:
            await client.aclose()
    finally:
        for service in reversed(started):
            await service.close()
        await jwks_http.aclose()


async def _knows_agencies(notifier: NotifierService) -> bool:
    async with notifier.sessions() as session:
        count = (await session.exec(select(func.count()).select_from(AgencyView))).one()
    return int(count) >= 52


async def _has_all(progress: ProgressService) -> bool:
    return await _tracked(progress) == 50


@pytest.fixture
async def board(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A browser on the board: progress reaches the registry as it does in production (HTTP)."""
    await stack.progress.board_http.aclose()
    stack.progress.board_http = httpx.AsyncClient(
        transport=stack.registry_link, base_url="http://registry"
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=progress_app(stack.progress)), base_url="http://test"
    ) as browser:
        yield browser


async def board_login(board: httpx.AsyncClient, person: Person, **fields: str) -> httpx.Response:
    """Fill in the login form as a person does: the page first (its CSRF token), then post
    the username and password (and any other `fields`, e.g. totp)."""
    page = await board.get("/board/login")
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert csrf is not None, page.text
    return await board.post(
        "/board/login",
        data={
            "csrf": csrf.group(1),
            "username": person.username,
            "password": person.password,
            "next": "/board",
            **fields,
        },
    )


def plan_data_2025_text() -> str:
    """The invented 2025 plan of data/plans/ in another layout than the 2024 plan (numbered per
    section, ids like 2.3; 牵头单位/配合单位 lines), naming the 2024 plan's agencies: 13 work
    points, 市林业局 the lead of 2.3."""
    return (PLAN_PATH.parent / "zhaoqing-data-2025.txt").read_text(encoding="utf-8")

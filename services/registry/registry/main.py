"""Registry wiring: engine, producer, outbox relay and the HTTP app."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from duban_shared.app import service_app
from duban_shared.auth import JwtVerifier
from duban_shared.clock import Clock, SystemClock
from duban_shared.db import is_sqlite
from duban_shared.outbox import OutboxRelay
from duban_shared.revocations import REVOCATIONS, RevocationFeed, revocation_feed
from duban_shared.runtime import PRODUCER
from duban_shared.service import ServiceCore, build_core
from duban_shared.throttle import LoginThrottle
from fastapi import APIRouter, FastAPI
from opentelemetry.sdk.trace import TracerProvider

from registry.keys import KeyRing
from registry.models import OutboxMessage
from registry.settings import RegistrySettings
from registry.tokens import TokenIssuer

SERVICE = "duban-registry"


@dataclass(kw_only=True)
class RegistryService(ServiceCore):
    """Everything the registry runs, built once and closed once."""

    settings: RegistrySettings
    clock: Clock  # domain time (plan edits); may be simulated (DUBAN_SIM_CLOCK_*)
    wall_clock: Clock  # real seconds: tokens, signing keys, clients, the outbox
    relay: OutboxRelay
    keys: KeyRing
    issuer: TokenIssuer
    verifier: JwtVerifier
    revocation_feed: RevocationFeed
    throttle: LoginThrottle  # failed token requests per client id and source address

    async def start(self) -> None:
        """Load the signing keys (making the first) and connect to Kafka, then relay the
        outbox, and follow the revocations; in the background, retried until the database and
        the broker answer."""
        self.background.start_soon("signing keys", self.keys.load)
        self.background.start_soon(
            PRODUCER, self.producer.start, then=lambda: self.relay.run(self.background.stop)
        )
        feed = self.revocation_feed
        self.background.follow("registry-revocations", feed.consumer, feed.run, name=REVOCATIONS)


def build(
    settings: RegistrySettings,
    *,
    clock: Clock | None = None,
    wall_clock: Clock | None = None,
    tracer_provider: TracerProvider | None = None,
) -> RegistryService:
    """Wire the registry from its settings; nothing connects until start().

    `clock` tells domain time, `wall_clock` real time (see docs/architecture.md, Clocks); a
    test that injects only `clock` moves both.
    """
    wall_clock = wall_clock or clock or SystemClock()
    clock = clock or settings.domain_clock(wall_clock)
    core = build_core(settings, SERVICE, "duban.registry", tracer_provider=tracer_provider)
    relay = OutboxRelay(
        OutboxMessage,
        core.sessions,
        core.producer,
        core.tracer,
        wall_clock,
        poll_seconds=settings.outbox_poll_seconds,
        skip_locked=not is_sqlite(settings.database_url),
        topic_prefix=settings.topic_prefix,
    )
    keys = KeyRing(
        core.sessions,
        wall_clock,
        retention=timedelta(seconds=settings.retired_key_retention_seconds),
    )
    verifier = JwtVerifier(
        keys,
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        clock=wall_clock,
        leeway_seconds=settings.auth_leeway_seconds,
    )
    return RegistryService(
        **core.parts(),
        settings=settings,
        clock=clock,
        wall_clock=wall_clock,
        relay=relay,
        keys=keys,
        issuer=TokenIssuer(
            keys,
            wall_clock,
            issuer=settings.auth_issuer,
            audience=settings.auth_audience,
            lifetime=timedelta(seconds=settings.token_lifetime_seconds),
        ),
        verifier=verifier,
        throttle=settings.login_throttle(wall_clock),
        revocation_feed=revocation_feed(settings, SERVICE, verifier.revocations),
    )


def create_app(service: RegistryService | None = None) -> FastAPI:
    """Build the HTTP app; with no service given it builds and runs its own from settings."""
    from registry import api, auth_api

    router = APIRouter()
    router.include_router(auth_api.router)
    router.include_router(api.router)
    owned = service is None
    service = service or build(RegistrySettings())
    return service_app(
        "Duban registry",
        service,
        router,
        owned=owned,
        max_body_bytes=4 * 1024 * 1024,  # a plan text (the 2024 plan is 30 KB)
        trusted_proxies=service.settings.trusted_proxy_list,
    )

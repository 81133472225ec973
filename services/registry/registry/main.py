"""Registry wiring: the service built from its settings, and the HTTP app."""

from __future__ import annotations

from datetime import timedelta

from duban_shared.app import service_app
from duban_shared.auth import JwtVerifier
from duban_shared.clock import Clock, SystemClock
from duban_shared.db import is_sqlite
from duban_shared.outbox import OutboxRelay
from duban_shared.revocations import revocation_feed
from duban_shared.service import build_core
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider

from registry.api import answer_refusals, router
from registry.service import RegistryService
from registry.settings import RegistrySettings
from registry.store.models import OutboxMessage
from registry.store.retention import pruner
from registry.use_cases.keys import KeyRing
from registry.use_cases.tokens import TokenIssuer

SERVICE = "duban-registry"


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
        pruner=pruner(settings, core.sessions, core.tracer, wall_clock, core.metrics),
    )


def create_app(service: RegistryService | None = None) -> FastAPI:
    """Build the HTTP app; with no service given it builds and runs its own from settings."""
    owned = service is None
    service = service or build(RegistrySettings())
    app = service_app(
        "Duban registry",
        service,
        router,
        owned=owned,
        max_body_bytes=4 * 1024 * 1024,  # a plan text (the 2024 plan is 30 KB)
        trusted_proxies=service.settings.trusted_proxy_list,
    )
    answer_refusals(app)
    return app

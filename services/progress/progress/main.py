"""Progress wiring: build the service from its settings, and the HTTP apps around it."""

from __future__ import annotations

import logging
from datetime import timedelta

import httpx
from duban_shared.app import LargerBody, service_app
from duban_shared.auth import jwks_verifier
from duban_shared.clock import Clock, SystemClock
from duban_shared.db import is_sqlite
from duban_shared.failures import OutageLog
from duban_shared.outbox import OutboxRelay
from duban_shared.ratelimit import RateLimiter
from duban_shared.revocations import revocation_feed
from duban_shared.service import build_core
from duban_shared.workdays import WorkingCalendar
from fastapi import APIRouter, FastAPI
from opentelemetry.sdk.trace import TracerProvider

from progress.api import router
from progress.api.board.reports import REPORT_FORM_PATH, too_large_page
from progress.consumers import AlertConsumer, StatusConsumer, WorkPointConsumer
from progress.domain.circulars import Kind
from progress.service import SERVICE, ProgressService, dead_letter_sink
from progress.settings import ProgressSettings
from progress.store.gauges import register_open_stalls, register_provisional_judgements
from progress.store.ingest import IngestStore
from progress.store.models import OutboxMessage
from progress.store.retention import pruner
from progress.use_cases.alert_acks import AlertTransitions
from progress.use_cases.circulars import Circulars
from progress.use_cases.closure import ClosureReview
from progress.use_cases.ingestion import Ingestion
from progress.use_cases.notices import Notices
from progress.use_cases.reports import ApplyReports
from progress.use_cases.sweep import Sweeper
from progress.use_cases.work_points import ApplySnapshots


def build(
    settings: ProgressSettings,
    *,
    clock: Clock | None = None,
    wall_clock: Clock | None = None,
    tracer_provider: TracerProvider | None = None,
    jwks_http: httpx.AsyncClient | None = None,
) -> ProgressService:
    """Wire progress from its settings; nothing connects until start().

    `jwks_http` fetches the registry's JWKS (tests route it to the registry app); by default
    build() makes a client of its own, closed with the service. `clock` tells domain time,
    `wall_clock` real time (docs/architecture.md, Clocks); a test that injects only `clock`
    moves both.
    """
    wall_clock = wall_clock or clock or SystemClock()
    clock = clock or settings.domain_clock(wall_clock)
    core = build_core(settings, SERVICE, "duban.progress", tracer_provider=tracer_provider)
    tracer, metrics, engine, sessions = core.tracer, core.metrics, core.engine, core.sessions
    producer, background = core.producer, core.background
    register_open_stalls(metrics, sessions, max_age_seconds=settings.metrics_cache_seconds)
    register_provisional_judgements(
        metrics, sessions, max_age_seconds=settings.metrics_cache_seconds
    )
    skip_locked = not is_sqlite(settings.database_url)
    relay = OutboxRelay(
        OutboxMessage,
        sessions,
        producer,
        tracer,
        wall_clock,
        poll_seconds=settings.outbox_poll_seconds,
        skip_locked=skip_locked,
        topic_prefix=settings.topic_prefix,
    )
    # Read now, not at import: a broken year file stops the service here, naming the file.
    calendar = WorkingCalendar.from_folder(settings.calendar_dir)
    sweeper = Sweeper(
        sessions,
        clock,
        tracer,
        relay,
        batch_size=settings.sweep_batch_size,
        skip_locked=skip_locked,
        calendar=calendar,
        metrics=metrics,
    )
    ingest = IngestStore(engine, tracer)
    broker_outage = OutageLog(logging.getLogger("progress.ingest"), "broker")
    owned_http = None
    if jwks_http is None:
        jwks_http = owned_http = httpx.AsyncClient(timeout=settings.auth_jwks_timeout_seconds)
    verifier = jwks_verifier(settings, wall_clock, jwks_http)
    return ProgressService(
        **core.parts(),
        settings=settings,
        clock=clock,
        wall_clock=wall_clock,
        relay=relay,
        sweeper=sweeper,
        status_consumer=StatusConsumer(
            ApplyReports(
                sessions,
                clock,
                relay,
                calendar=calendar,
                late_after=timedelta(days=settings.late_after_days),
                earliest_before_plan=timedelta(days=settings.earliest_report_days_before_plan),
            ),
            dead_letter_sink(settings, producer, tracer, metrics, "status"),
            tracer,
            metrics=metrics,
        ),
        work_point_consumer=WorkPointConsumer(
            ApplySnapshots(sessions, clock, calendar),
            tracer,
            latest_due_years_after_plan=settings.latest_due_years_after_plan,
        ),
        alert_consumer=AlertConsumer(AlertTransitions(sessions, clock), tracer),
        verifier=verifier,
        revocation_feed=revocation_feed(settings, SERVICE, verifier.revocations),
        rate_limiter=RateLimiter(wall_clock, settings.rate_per_second, settings.rate_burst),
        login_throttle=settings.login_throttle(wall_clock),
        calendar=calendar,
        ingest=ingest,
        ingestion=Ingestion(
            settings, clock, tracer, producer, background, broker_outage, ingest, engine
        ),
        closure=ClosureReview(sessions, clock, relay, calendar),
        circulars=Circulars(
            sessions,
            clock,
            tracer,
            relay,
            metrics,
            calendar,
            settings.circular_number_prefix,
            tuple(Kind(k) for k in settings.circular_kinds),
            settings.circular_issuer,
        ),
        notices=Notices(sessions, clock, relay, tracer, metrics, calendar),
        pruner=pruner(settings, sessions, tracer, clock, wall_clock, metrics),
        owned_http=owned_http,
        broker_outage=broker_outage,
    )


def create_app(service: ProgressService | None = None) -> FastAPI:
    """Build the HTTP app; with no service given it builds and runs its own from settings."""
    owned = service is None
    service = service or build(ProgressSettings())
    return service_app(
        "Duban progress",
        service,
        router,
        owned=owned,
        max_body_bytes=service.settings.max_body_bytes,
        larger_bodies=[
            LargerBody(
                REPORT_FORM_PATH,
                service.settings.report_form_max_bytes,
                too_large_page(service.settings),
            )
        ],
        trusted_proxies=service.settings.trusted_proxy_list,
    )


def create_worker_app() -> FastAPI:
    """`duban-progress worker`: the consumers, the outbox relay and the sweeper, with only
    /healthz and /metrics over HTTP (the API runs in `serve` processes with background off)."""
    settings = ProgressSettings().model_copy(update={"background": True})
    return service_app(
        "Duban progress worker",
        build(settings),
        APIRouter(),
        owned=True,
        trusted_proxies=settings.trusted_proxy_list,
    )

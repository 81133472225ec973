"""The HTTP app every service builds the same way: lifespan, errors, health, tracing."""

from __future__ import annotations

import gc
import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from duban_shared.api import ERROR_STATUSES, ApiError, ErrorBody, install_error_handlers, refuse
from duban_shared.auth import TokenVerifier
from duban_shared.inputs import StrictJsonBody
from duban_shared.metrics import PROMETHEUS_CONTENT_TYPE, ServiceMetrics
from duban_shared.runtime import Background


class Service(Protocol):
    """What a service's wiring offers its HTTP app."""

    tracer_provider: TracerProvider
    metrics: ServiceMetrics
    sessions: async_sessionmaker[AsyncSession]
    background: Background

    @property
    def verifier(self) -> TokenVerifier:
        """Checks the bearer tokens of requests (see duban_shared.auth)."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


def running_service(request: Request) -> Service:
    """The service the request's app runs: the shared routes' only reader of `app.state`
    (each service's own routes read it through their typed `api.deps.ServiceDep`)."""
    service: Service = request.app.state.service
    return service


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with running_service(request).sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(_request_session)]
"""A database session of the app's service, closed after the request."""

_health = APIRouter()


@_health.get("/healthz", include_in_schema=False)
async def healthz(request: Request) -> dict[str, str]:
    """Readiness, and the truth about the process's background work: 503 while a dependency it
    needs to start is unreachable (`not_ready`), once a background task died
    (`background_task_died`), or while a consumer has records waiting and does not advance
    (`consumer_stuck`, naming the group and partition)."""
    service = running_service(request)
    _raise_if_died(service.background)
    pending = service.background.pending
    if pending:
        raise ApiError(
            503,
            "not_ready",
            f"Waiting for {', '.join(pending)}: the broker or the database does not answer yet. "
            "The process keeps trying and becomes ready by itself once it does.",
            details=pending,
        )
    stuck = service.metrics.consumer_lag.stuck()
    if stuck:
        raise ApiError(
            503,
            "consumer_stuck",
            f"{len(stuck)} partition(s) have records waiting and their consumer has not advanced "
            f"for {service.metrics.consumer_lag.stuck_after_seconds:.0f}s or more: "
            f"{stuck[0].describe()}. Look at the service's log for the cause (a dependency down "
            "is logged as unavailable).",
            details=[s.describe() for s in stuck],
        )
    return {"status": "ok"}


@_health.get("/livez", include_in_schema=False)
async def livez(request: Request) -> dict[str, str]:
    """Liveness: the process answers and none of its background tasks (consumers, relay,
    sweeper) has died; one that did makes this 503 until the process is restarted. An outage of
    a dependency does not fail it: a restart would not help."""
    _raise_if_died(running_service(request).background)
    return {"status": "ok"}


def _raise_if_died(background: Background) -> None:
    failures = background.failures
    if failures:
        raise ApiError(
            503,
            "background_task_died",
            f"{len(failures)} background task(s) of this process died (see its log); restart "
            "the process: what they had not committed is consumed again.",
            details=failures,
        )


@_health.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """This service's metrics for Prometheus to scrape (no other service's)."""
    service_metrics = running_service(request).metrics
    return Response(await service_metrics.exposition(), media_type=PROMETHEUS_CONTENT_TYPE)


@dataclass(frozen=True)
class LargerBody:
    """A route whose bodies may be larger than the service's limit (e.g. a form with files),
    and, for a page people see, how its 413 is answered (by default the JSON error)."""

    path: str  # a pattern the whole path matches
    max_bytes: int
    refusal: Callable[[ApiError], Response] | None = None


class BodyLimit:
    """Refuse request bodies over a size before they are read (413), or of unknown size (411).

    `larger` raises the limit for paths that match a pattern."""

    def __init__(self, app: ASGIApp, max_bytes: int, larger: Sequence[LargerBody] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = [(re.compile(rule.path), rule) for rule in larger]

    def rule(self, path: str) -> LargerBody | None:
        """The larger limit a path has, if any."""
        return next((rule for pattern, rule in self.larger if pattern.fullmatch(path)), None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length of a request with a body, then pass it on."""
        if scope["type"] == "http" and scope["method"] in {"POST", "PUT", "PATCH"}:
            headers = dict(scope["headers"])
            declared = headers.get(b"content-length")
            if declared is None and b"transfer-encoding" in headers:
                await refuse(
                    send, ApiError(411, "length_required", "Send the body with a Content-Length.")
                )
                return
            if declared is not None and not declared.isdigit():
                await refuse(
                    send,
                    ApiError(
                        400,
                        "invalid_content_length",
                        "The Content-Length header is not a number of bytes.",
                    ),
                )
                return
            rule = self.rule(scope["path"])
            limit = rule.max_bytes if rule is not None else self.max_bytes
            if declared is not None and int(declared) > limit:
                error = ApiError(
                    413,
                    "body_too_large",
                    f"The body has {int(declared)} bytes; this service accepts at most "
                    f"{limit}. Split it into smaller requests.",
                )
                if rule is not None and rule.refusal is not None:
                    await rule.refusal(error)(scope, receive, send)
                    return
                await refuse(send, error)
                return
        await self.app(scope, receive, send)


def _error_ref(status: int) -> dict[str, Any]:
    return {
        "description": ERROR_STATUSES[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }


FASTAPI_422 = "Validation Error"
"""The description FastAPI gives the 422 it adds to every operation with input."""


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Add to every operation of an OpenAPI document the errors any operation of its kind
    answers, each with the ErrorBody schema: 401 and 403 with a bearer token, 404 with path
    parameters, 411 and 413 with a body, 422 with any input, 503 always (the database).
    What only some operations answer (409, 429...) their routes declare with
    `duban_shared.api.error_responses`."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["ErrorBody"] = ErrorBody.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    for path, item in schema.get("paths", {}).items():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            statuses = {503}
            if operation.get("security"):
                statuses |= {401, 403}
            if "{" in path:
                statuses.add(404)
            if "requestBody" in operation:
                statuses |= {411, 413, 422}
            if operation.get("parameters"):
                statuses.add(422)
            responses = operation["responses"]
            for status in sorted(statuses):
                if status == 422:  # FastAPI's own 422 schema is not what the handler answers
                    declared = responses.get("422", {}).get("description")
                    responses["422"] = _error_ref(422)
                    if declared and declared != FASTAPI_422:  # the route's own codes, kept
                        responses["422"]["description"] = declared
                else:
                    responses.setdefault(str(status), _error_ref(status))
            for status, response in responses.items():
                if status[0] in "45" and "content" not in response:  # declared bare
                    response["content"] = _error_ref(int(status))["content"]
    return schema


def settle_heap() -> None:
    """Leave what startup built (modules, schemas, compiled statements, clients) out of every
    later garbage collection, once a process's service has started.

    A full collection walks every tracked object: with startup's ~170,000 objects among them,
    each full pass stalled the event loop for 120-160 ms, every second or two at 500 reports/s,
    and made the tail of the ingestion latency. The collector never looks at frozen objects
    again (reference counting still frees them, but a cycle among them stays for the process's
    life), so only a process that runs one service for its whole life calls this.
    """
    gc.collect()
    gc.freeze()


def service_app(
    title: str,
    service: Service,
    router: APIRouter,
    *,
    owned: bool,
    max_body_bytes: int = 64 * 1024,
    larger_bodies: Sequence[LargerBody] = (),
    trusted_proxies: list[str] | None = None,
) -> FastAPI:
    """Build a service's app; an owned service is started and closed with the app, and is then
    its process's service (`settle_heap` after it started). `larger_bodies`: the routes that
    take more than `max_body_bytes`. `X-Forwarded-Proto` and
    `X-Forwarded-For` are believed from `trusted_proxies` only (DUBAN_TRUSTED_PROXIES)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if owned:
            await service.start()
            settle_heap()
        try:
            yield
        finally:
            if owned:
                await service.close()

    app = FastAPI(title=title, version="0.1.0", lifespan=lifespan)
    app.state.service = service
    install_error_handlers(app)
    app.include_router(_health)
    app.include_router(router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    openapi_version=app.openapi_version,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    # Outermost first: the size is checked before the body is read, and JSON is checked strictly
    # (duban_shared.inputs) before any route parses it.
    app.add_middleware(StrictJsonBody)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes, larger=larger_bodies)
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=service.tracer_provider,
        meter_provider=service.metrics.provider,
        excluded_urls="/metrics",
        # One server span per request; spans per ASGI message cost more than they tell.
        exclude_spans=["receive", "send"],
    )
    if trusted_proxies:
        # Outermost: the scheme (https behind a TLS-terminating proxy) and the client address
        # are the proxy's word only when the connection comes from a proxy we trust.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=trusted_proxies)
    return app

"""The HTTP app every service builds the same way: lifespan, errors, health, tracing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Protocol

from fastapi import APIRouter, Depends, FastAPI, Request
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from duban_shared.api import install_error_handlers
from duban_shared.auth import TokenVerifier


class Service(Protocol):
    """What a service's wiring offers its HTTP app."""

    tracer_provider: TracerProvider
    sessions: async_sessionmaker[AsyncSession]

    @property
    def verifier(self) -> TokenVerifier:
        """Checks the bearer tokens of requests (see duban_shared.auth)."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.service.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(_request_session)]
"""A database session of the app's service, closed after the request."""

_health = APIRouter()


@_health.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    """Liveness."""
    return {"status": "ok"}


def service_app(title: str, service: Service, router: APIRouter, *, owned: bool) -> FastAPI:
    """Build a service's app; an owned service is started and closed with the app."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if owned:
            await service.start()
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
    FastAPIInstrumentor.instrument_app(app, tracer_provider=service.tracer_provider)
    return app

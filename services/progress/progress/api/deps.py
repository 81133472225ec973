"""Typed dependencies of progress's routes: the service, a database session, the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, cast

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.service import ProgressService


def service(request: Request) -> ProgressService:
    """The progress service the app runs (the only reader of `app.state.service`)."""
    return cast(ProgressService, request.app.state.service)


async def _service(request: Request) -> ProgressService:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hand-off per
    # request that cost ingestion more than the rest of its dependencies together
    return service(request)


ServiceDep = Annotated[ProgressService, Depends(_service)]
"""The progress service of the request's app."""


async def session(svc: ServiceDep) -> AsyncIterator[AsyncSession]:
    """A database session of the service, closed after the request."""
    async with svc.sessions() as opened:
        yield opened


SessionDep = Annotated[AsyncSession, Depends(session)]
"""A database session, closed after the request."""

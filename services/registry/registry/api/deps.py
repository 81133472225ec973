"""The registry API's dependencies: its service, and the context its use cases run in."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from duban_shared.app import SessionDep
from duban_shared.audit import Actor
from duban_shared.auth import PrincipalDep
from fastapi import Depends, Request

from registry.service import RegistryService
from registry.use_cases.context import Context


def service(request: Request) -> RegistryService:
    """The registry service this app runs (the only reader of app.state.service here)."""
    running: RegistryService = request.app.state.service
    return running


ServiceDep = Annotated[RegistryService, Depends(service)]


def context(registry: ServiceDep, session: SessionDep) -> Context:
    """The request's session with the registry's clocks, settings and outbox relay."""
    return Context(
        session=session,
        settings=registry.settings,
        clock=registry.clock,
        wall_clock=registry.wall_clock,
        wake=registry.relay.wake,
    )


ContextDep = Annotated[Context, Depends(context)]


def acting_context(ctx: ContextDep, principal: PrincipalDep) -> Context:
    """The context of a request whose caller acts: what it changes is audited as theirs."""
    return replace(ctx, actor=Actor.of(principal))


ActingContextDep = Annotated[Context, Depends(acting_context)]

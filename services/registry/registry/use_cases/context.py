"""What a use case runs with: a session to open its transaction on, the clocks, the settings,
and the outbox relay to wake once what it queued is committed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from duban_shared.audit import Actor, record_audit
from duban_shared.clock import Clock
from sqlmodel.ext.asyncio.session import AsyncSession

from registry.settings import RegistrySettings
from registry.store.models import AuditLog


def _nothing() -> None:
    """No relay runs in this process (the command line): the running registry relays."""


@dataclass(frozen=True)
class Context:
    """A use case's dependencies: the HTTP request's (api.deps) or the command's (cli.common)."""

    session: AsyncSession
    settings: RegistrySettings
    clock: Clock  # domain time: plan, work point and agency changes
    wall_clock: Clock  # real seconds: clients, tokens, signing keys
    wake: Callable[[], None] = _nothing
    actor: Actor | None = None  # who acts: the request's principal, or the command's operator

    @asynccontextmanager
    async def transaction(self, *, wall: bool = False) -> AsyncIterator[datetime]:
        """One transaction, yielding the time it records (domain time, or with `wall` real
        time); after the commit the outbox relay is woken for what it queued."""
        async with self.session.begin():
            yield (self.wall_clock if wall else self.clock).now()
        self.wake()

    def audit(
        self,
        action: str,
        subject: str,
        at: datetime,
        *,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
    ) -> None:
        """Record an office action in the audit trail, in the transaction that makes it."""
        if self.actor is None:
            raise RuntimeError(f"{action} on {subject}: the context names no actor to audit")
        record_audit(
            self.session,
            AuditLog,
            actor=self.actor,
            action=action,
            subject=subject,
            at=at,
            before=before,
            after=after,
        )

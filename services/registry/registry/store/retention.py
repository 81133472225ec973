"""What the registry's retention prunes, and what it never prunes (duban_shared.retention)."""

from __future__ import annotations

from duban_shared.clock import Clock
from duban_shared.db import is_sqlite
from duban_shared.metrics import ServiceMetrics
from duban_shared.retention import Pruner, PruneTarget, kept_for
from opentelemetry.trace import Tracer
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from registry.settings import RegistrySettings
from registry.store.models import OutboxMessage

NEVER_PRUNED = {
    "plan_version": "every version of a plan as imported",
    "agency_history": "agencies' renames and merges",
    "extension_request": "extension requests (延期申请) and their decisions",
    "audit_log": "the audit trail",
}
"""Tables that only grow but are kept: the record of what happened (table -> what it is).
Retired signing keys are deleted by key rotation, past
DUBAN_REGISTRY_RETIRED_KEY_RETENTION_SECONDS."""


def prune_targets(settings: RegistrySettings, wall_clock: Clock) -> list[PruneTarget]:
    """The tables the registry prunes: published outbox rows (stamped by the relay's wall
    clock)."""
    return [
        PruneTarget(
            "outbox",
            OutboxMessage,
            col(OutboxMessage.id),
            col(OutboxMessage.published_at),
            kept_for(settings.retention_outbox_days),
            wall_clock,
            setting="DUBAN_REGISTRY_RETENTION_OUTBOX_DAYS",
        )
    ]


def pruner(
    settings: RegistrySettings,
    sessions: async_sessionmaker[AsyncSession],
    tracer: Tracer,
    wall_clock: Clock,
    metrics: ServiceMetrics | None = None,
) -> Pruner:
    """The registry's retention (the background task and `duban-registry prune`)."""
    return Pruner(
        prune_targets(settings, wall_clock),
        sessions,
        tracer,
        metrics,
        batch_size=settings.retention_batch_size,
        pause_seconds=settings.retention_pause_seconds,
        skip_locked=not is_sqlite(settings.database_url),
    )

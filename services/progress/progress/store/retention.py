"""What progress's retention prunes, and what it never prunes (duban_shared.retention)."""

from __future__ import annotations

from duban_shared.clock import Clock
from duban_shared.db import is_sqlite
from duban_shared.metrics import ServiceMetrics
from duban_shared.retention import Pruner, PruneTarget, kept_for
from opentelemetry.trace import Tracer
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.settings import ProgressSettings
from progress.store.models import Inbox, IngestedEvent, OutboxMessage

NEVER_PRUNED = {
    "status_report": "the report history and its hash chain (archived by plan year, never deleted)",
    "stall_transition": "the work points' timelines",
    "closure_decision": "the office's decisions",
    "supervision_notice": "the notices (督办单) issued",
    "supervision_notice_history": "who changed a notice, when",
    "circular": "the circulars (通报) issued, with their files",
    "audit_log": "the audit trail",
    "alert_ack": "each alert's firing and acknowledgement (the circulars' acknowledgement times)",
    "consumer_offset": "where each consumer group is (one row per partition, never grows)",
}
"""Tables that only grow but are kept: the record of what happened (table -> what it is)."""


def prune_targets(settings: ProgressSettings, clock: Clock, wall_clock: Clock) -> list[PruneTarget]:
    """The tables progress prunes: `clock` is domain time (the inbox, ingested events),
    `wall_clock` real time (the outbox relay stamps published rows with it)."""
    return [
        PruneTarget(
            "inbox",
            Inbox,
            col(Inbox.event_id),
            col(Inbox.processed_at),
            kept_for(settings.retention_inbox_days),
            clock,
            real_time=True,
            setting="DUBAN_PROGRESS_RETENTION_INBOX_DAYS",
        ),
        PruneTarget(
            "outbox",
            OutboxMessage,
            col(OutboxMessage.id),
            col(OutboxMessage.published_at),
            kept_for(settings.retention_outbox_days),
            wall_clock,
            setting="DUBAN_PROGRESS_RETENTION_OUTBOX_DAYS",
        ),
        PruneTarget(
            "ingested_event",
            IngestedEvent,
            col(IngestedEvent.event_id),
            col(IngestedEvent.accepted_at),
            kept_for(settings.retention_ingested_days),
            clock,
            real_time=True,
            setting="DUBAN_PROGRESS_RETENTION_INGESTED_DAYS",
        ),
    ]


def pruner(
    settings: ProgressSettings,
    sessions: async_sessionmaker[AsyncSession],
    tracer: Tracer,
    clock: Clock,
    wall_clock: Clock,
    metrics: ServiceMetrics | None = None,
) -> Pruner:
    """Progress's retention (the background task and `duban-progress prune`)."""
    return Pruner(
        prune_targets(settings, clock, wall_clock),
        sessions,
        tracer,
        metrics,
        batch_size=settings.retention_batch_size,
        pause_seconds=settings.retention_pause_seconds,
        skip_locked=not is_sqlite(settings.database_url),
    )

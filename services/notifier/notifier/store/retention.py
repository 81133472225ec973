"""What the notifier's retention prunes, and what it never prunes (duban_shared.retention)."""

from __future__ import annotations

from duban_shared.clock import Clock
from duban_shared.db import is_sqlite
from duban_shared.metrics import ServiceMetrics
from duban_shared.retention import Pruner, PruneTarget, kept_for
from opentelemetry.trace import Tracer
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.domain.alerts import RESOLVED
from notifier.domain.delivery import FAILED, NO_CONTACT, SENT, SUPERSEDED
from notifier.settings import NotifierSettings
from notifier.store.models import (
    AckCode,
    Alert,
    DeliveryRecord,
    Inbox,
    NotificationLog,
    OutboxMessage,
)

NEVER_PRUNED = {
    "alert": "the alerts (one per stall episode or notice) and when they were acknowledged",
    "audit_log": "the audit trail",
    "consumer_offset": "where each consumer group is (one row per partition, never grows)",
}
"""Tables that only grow but are kept: the record of what happened (table -> what it is)."""

FINISHED = (SENT, FAILED, SUPERSEDED, NO_CONTACT)
"""Deliveries that will never be tried again."""


def prune_targets(
    settings: NotifierSettings, clock: Clock, wall_clock: Clock | None = None
) -> list[PruneTarget]:
    """The tables the notifier prunes: `clock` is domain time, `wall_clock` real time (the
    outbox relay stamps published rows with it; `clock` when not given).

    A delivery goes only once finished and its alert resolved: while an alert is open its log
    is what keeps a step from being sent twice (the unique cause of each delivery). A delivery
    record (read from the compacted deliveries topic) goes with the log's retention, by when
    it was sent: the topic keeps every record, and a restore reads again those after the
    backup's position.
    """
    alert_open = exists(
        select(col(Alert.id)).where(
            col(Alert.id) == col(NotificationLog.alert_id), col(Alert.state) != RESOLVED
        )
    )
    return [
        PruneTarget(
            "inbox",
            Inbox,
            col(Inbox.event_id),
            col(Inbox.processed_at),
            kept_for(settings.retention_inbox_days),
            clock,
            real_time=True,
            setting="DUBAN_NOTIFIER_RETENTION_INBOX_DAYS",
        ),
        PruneTarget(
            "outbox",
            OutboxMessage,
            col(OutboxMessage.id),
            col(OutboxMessage.published_at),
            kept_for(settings.retention_outbox_days),
            wall_clock or clock,
            setting="DUBAN_NOTIFIER_RETENTION_OUTBOX_DAYS",
        ),
        PruneTarget(
            "notification_log",
            NotificationLog,
            col(NotificationLog.id),
            col(NotificationLog.created_at),
            kept_for(settings.retention_notification_log_days),
            clock,
            where=(col(NotificationLog.status).in_(FINISHED), ~alert_open),
            setting="DUBAN_NOTIFIER_RETENTION_NOTIFICATION_LOG_DAYS",
        ),
        PruneTarget(
            "delivery_record",
            DeliveryRecord,
            col(DeliveryRecord.delivery_key),
            col(DeliveryRecord.sent_at),
            kept_for(settings.retention_notification_log_days),
            clock,
            setting="DUBAN_NOTIFIER_RETENTION_NOTIFICATION_LOG_DAYS",
        ),
        PruneTarget(
            "ack_code",
            AckCode,
            col(AckCode.code),
            col(AckCode.expires_at),
            kept_for(settings.retention_ack_code_days),
            clock,
            setting="DUBAN_NOTIFIER_RETENTION_ACK_CODE_DAYS",
        ),
    ]


def pruner(
    settings: NotifierSettings,
    sessions: async_sessionmaker[AsyncSession],
    tracer: Tracer,
    clock: Clock,
    metrics: ServiceMetrics | None = None,
    wall_clock: Clock | None = None,
) -> Pruner:
    """The notifier's retention (the background task and `duban-notifier prune`)."""
    return Pruner(
        prune_targets(settings, clock, wall_clock),
        sessions,
        tracer,
        metrics,
        batch_size=settings.retention_batch_size,
        pause_seconds=settings.retention_pause_seconds,
        skip_locked=not is_sqlite(settings.database_url),
    )

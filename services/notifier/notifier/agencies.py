"""The notifier's read model of agencies, kept from the registry's agencies topic."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiokafka import ConsumerRecord
from duban_shared.events import AgencySnapshot
from duban_shared.failures import RecordRejected
from duban_shared.kafka import process_span
from opentelemetry.trace import Tracer
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.models import AgencyView

log = logging.getLogger(__name__)


async def apply_snapshot(session: AsyncSession, snap: AgencySnapshot) -> None:
    """Upsert an agency; an older snapshot redelivered after a newer one changes nothing."""
    view = await session.get(AgencyView, snap.agency_id)
    if view is not None and view.snapshot_at > snap.occurred_at:
        return
    if view is None:
        view = AgencyView(
            id=snap.agency_id, name=snap.name, kind=snap.kind, snapshot_at=snap.occurred_at
        )
    view.name, view.kind, view.merged_into_id = snap.name, snap.kind, snap.merged_into
    view.snapshot_at = snap.occurred_at
    session.add(view)


@dataclass
class AgencyConsumer:
    """Applies batches of agency snapshots in one transaction."""

    sessions: async_sessionmaker[AsyncSession]
    tracer: Tracer

    async def handle_batch(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Upsert every snapshot of the batch."""
        async with self.sessions() as session, session.begin():
            for record in records:
                with process_span(self.tracer, record):
                    if record.value is None:
                        continue
                    try:
                        snap = AgencySnapshot.model_validate_json(record.value)
                    except ValidationError as exc:
                        # Written by the registry, so a bug there: the consumer loop parks it
                        # as a dead letter and the other agencies go on.
                        raise RecordRejected("invalid_snapshot", str(exc)) from exc
                    await apply_snapshot(session, snap)

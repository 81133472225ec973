"""Deliveries known as sent from the deliveries topic (`delivery_record`)."""

from __future__ import annotations

from collections.abc import Iterable

from duban_shared.events import DeliverySent
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.store.models import DeliveryRecord


async def recorded(session: AsyncSession, keys: Iterable[str]) -> dict[str, DeliveryRecord]:
    """The records among these delivery keys."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = await session.exec(
        select(DeliveryRecord).where(col(DeliveryRecord.delivery_key).in_(wanted))
    )
    return {r.delivery_key: r for r in rows.all()}


async def keep(session: AsyncSession, events: Iterable[DeliverySent]) -> int:
    """Keep these deliveries as sent (a key kept already is left as it is); return how many
    were given."""
    rows = {
        e.delivery_key: {
            "delivery_key": e.delivery_key,
            "cause_id": e.cause_id,
            "channel": e.channel,
            "message_ref": e.message_ref,
            "provider_id": e.provider_id,
            "sent_at": e.occurred_at,
        }
        for e in events
    }
    if not rows:
        return 0
    dialect = (await session.connection()).dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(DeliveryRecord).values(list(rows.values()))
    await session.exec(statement.on_conflict_do_nothing(index_elements=["delivery_key"]))
    return len(rows)

"""Contacts and the agencies they belong to, in the database."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.domain.contacts import ContactIn
from notifier.store.models import AgencyView, Contact


async def agency(session: AsyncSession, agency_id: uuid.UUID) -> AgencyView | None:
    """The agency as the registry last published it, if it did."""
    return await session.get(AgencyView, agency_id)


async def all_agencies(session: AsyncSession) -> list[AgencyView]:
    """Every agency the registry published."""
    return list((await session.exec(select(AgencyView))).all())


async def replace_contacts(
    session: AsyncSession,
    agency_id: uuid.UUID,
    contacts: Iterable[ContactIn],
    now: datetime,
    *,
    channel: str | None = None,
) -> list[Contact]:
    """Make `contacts` (already normalized) the agency's, in order: the order is the order they
    are tried. With `channel`, only that channel's contacts are replaced."""
    query = select(Contact).where(Contact.agency_id == agency_id)
    if channel is not None:
        query = query.where(Contact.channel == channel)
    for row in (await session.exec(query)).all():
        await session.delete(row)
    await session.flush()
    rows = []
    seen: set[tuple[str, str]] = set()
    for position, c in enumerate(contacts):
        if (c.channel, c.address) in seen:
            continue
        seen.add((c.channel, c.address))
        row = Contact(
            agency_id=agency_id,
            channel=c.channel,
            address=c.address,
            label=c.label,
            position=position,
            created_at=now,
        )
        session.add(row)
        rows.append(row)
    await session.flush()
    return rows


async def agency_contacts(
    session: AsyncSession, agency_id: uuid.UUID, *, channel: str | None = None
) -> list[Contact]:
    """An agency's contacts (of one channel, when given) in the order they are tried."""
    query = select(Contact).where(Contact.agency_id == agency_id)
    if channel is not None:
        query = query.where(Contact.channel == channel)
    rows = await session.exec(query.order_by(col(Contact.position), col(Contact.id)))
    return list(rows.all())


async def first_active_contact(
    session: AsyncSession, agency_id: uuid.UUID, skip: Sequence[int]
) -> Contact | None:
    """The agency's first active contact not in `skip`."""
    query = (
        select(Contact)
        .where(Contact.agency_id == agency_id, Contact.status == "active")
        .order_by(col(Contact.position), col(Contact.id))
    )
    for contact in (await session.exec(query)).all():
        if contact.id not in skip:
            return contact
    return None


async def mark_failed(session: AsyncSession, contact_id: int, reason: str, now: datetime) -> None:
    """Mark a contact `failed` (a provider refused the address itself)."""
    contact = await session.get(Contact, contact_id)
    if contact is not None:
        contact.status, contact.failed_at = "failed", now
        contact.failed_reason = reason[:500]
        session.add(contact)

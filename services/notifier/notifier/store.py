"""Notifier queries shared by the API and the CLI."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.models import Contact


async def replace_email_contacts(
    session: AsyncSession, agency_id: uuid.UUID, addresses: list[str], now: datetime
) -> None:
    """Make `addresses` the agency's email contacts, in that order."""
    old = await session.exec(
        select(Contact).where(Contact.agency_id == agency_id, Contact.channel == "email")
    )
    for row in old.all():
        await session.delete(row)
    await session.flush()
    for address in dict.fromkeys(addresses):
        session.add(Contact(agency_id=agency_id, channel="email", address=address, created_at=now))

"""Notifier queries shared by the API and the CLI."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.contacts import ContactIn, replace_contacts


async def replace_email_contacts(
    session: AsyncSession, agency_id: uuid.UUID, addresses: list[str], now: datetime
) -> None:
    """Make `addresses` the agency's email contacts, in that order (other channels stay)."""
    contacts = [ContactIn("email", a) for a in addresses]
    await replace_contacts(session, agency_id, contacts, now, channel="email")

"""Agency contacts (the coordinating office's): replace them per agency, or many from CSV."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from duban_shared.audit import Actor, record_audit
from duban_shared.clock import Clock
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from notifier.domain.contacts import (
    ContactIn,
    CsvError,
    normalize_all,
    parse_csv,
    published,
)
from notifier.store import contacts as contact_store
from notifier.store.models import AuditLog, Contact


class InvalidContacts(ValueError):
    """Contacts refused before any was kept: one problem (index, code, message) per contact."""

    def __init__(self, problems: list[dict[str, object]]) -> None:
        super().__init__(str(problems[0]["message"]))
        self.problems = problems


class InvalidCsv(ValueError):
    """A CSV file refused as a whole: every problem with its line number."""

    def __init__(self, errors: list[CsvError]) -> None:
        super().__init__(f"{len(errors)} problem(s) in the file")
        self.errors = errors


def _listed(rows: Sequence[Contact]) -> list[dict[str, object]]:
    return [
        {"channel": c.channel, "address": c.address, "label": c.label, "status": c.status}
        for c in rows
    ]


async def _replace_audited(
    session: AsyncSession,
    actor: Actor,
    agency_id: uuid.UUID,
    contacts: Sequence[ContactIn],
    now: datetime,
    channel: str | None,
) -> list[Contact]:
    """Replace an agency's contacts and record it (before and after) in the same transaction."""
    before = _listed(await contact_store.agency_contacts(session, agency_id, channel=channel))
    rows = await contact_store.replace_contacts(session, agency_id, contacts, now, channel=channel)
    if before != _listed(rows):
        record_audit(
            session,
            AuditLog,
            actor=actor,
            action="contacts.replaced",
            subject=str(agency_id),
            at=now,
            before={"channel": channel, "contacts": before},
            after={"channel": channel, "contacts": _listed(rows)},
        )
    return rows


@dataclass(frozen=True)
class Imported:
    """What an import replaced."""

    agencies: int
    contacts: int


@dataclass
class Contacts:
    """The contact use cases."""

    sessions: async_sessionmaker[AsyncSession]
    clock: Clock
    wecom_robots: Collection[str]

    async def replace(
        self,
        actor: Actor,
        agency_id: uuid.UUID,
        contacts: Sequence[ContactIn],
        *,
        channel: str | None = None,
    ) -> list[Contact]:
        """Replace an agency's contacts (of one channel, when given); every one is checked
        before any is kept (InvalidContacts), and the agency must be one the registry published
        (ContactProblem)."""
        normalized, problems = normalize_all(contacts, wecom_robots=self.wecom_robots)
        if problems:
            raise InvalidContacts(problems)
        async with self.sessions() as session, session.begin():
            published(await contact_store.agency(session, agency_id), agency_id)
            now = self.clock.now()
            return await _replace_audited(session, actor, agency_id, normalized, now, channel)

    async def set_as_given(
        self,
        actor: Actor,
        agency_id: uuid.UUID,
        contacts: Sequence[ContactIn],
        *,
        channel: str | None = None,
    ) -> list[Contact]:
        """Replace an agency's contacts as given, for the command line: an operator sets them
        before the registry's agencies have arrived (so the agency is not looked up), and the
        caller checked the addresses."""
        async with self.sessions() as session, session.begin():
            now = self.clock.now()
            return await _replace_audited(session, actor, agency_id, contacts, now, channel)

    async def of(self, agency_id: uuid.UUID, *, channel: str | None = None) -> list[Contact]:
        """An agency's contacts (of one channel, when given) in the order they are tried."""
        async with self.sessions() as session:
            return await contact_store.agency_contacts(session, agency_id, channel=channel)

    async def import_csv(self, actor: Actor, text: str) -> Imported:
        """Import `agency,channel,address,label` rows, all or nothing (InvalidCsv): agencies the
        file names get exactly its contacts, in file order; others keep theirs."""
        async with self.sessions() as session, session.begin():
            agencies = await contact_store.all_agencies(session)
            found, errors = parse_csv(text, agencies, wecom_robots=self.wecom_robots)
            if errors:
                raise InvalidCsv(errors)
            now = self.clock.now()
            total = 0
            for agency_id, contacts in found.items():
                total += len(await _replace_audited(session, actor, agency_id, contacts, now, None))
        return Imported(agencies=len(found), contacts=total)

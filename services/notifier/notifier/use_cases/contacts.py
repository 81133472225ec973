"""Agency contacts (the coordinating office's): replace them per agency, or many from CSV."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass

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
from notifier.store.models import Contact


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
        self, agency_id: uuid.UUID, contacts: Sequence[ContactIn], *, channel: str | None = None
    ) -> list[Contact]:
        """Replace an agency's contacts (of one channel, when given); every one is checked
        before any is kept (InvalidContacts), and the agency must be one the registry published
        (ContactProblem)."""
        normalized, problems = normalize_all(contacts, wecom_robots=self.wecom_robots)
        if problems:
            raise InvalidContacts(problems)
        async with self.sessions() as session, session.begin():
            published(await contact_store.agency(session, agency_id), agency_id)
            return await contact_store.replace_contacts(
                session, agency_id, normalized, self.clock.now(), channel=channel
            )

    async def set_as_given(
        self, agency_id: uuid.UUID, contacts: Sequence[ContactIn], *, channel: str | None = None
    ) -> list[Contact]:
        """Replace an agency's contacts as given, for the command line: an operator sets them
        before the registry's agencies have arrived (so the agency is not looked up), and the
        caller checked the addresses."""
        async with self.sessions() as session, session.begin():
            return await contact_store.replace_contacts(
                session, agency_id, contacts, self.clock.now(), channel=channel
            )

    async def of(self, agency_id: uuid.UUID, *, channel: str | None = None) -> list[Contact]:
        """An agency's contacts (of one channel, when given) in the order they are tried."""
        async with self.sessions() as session:
            return await contact_store.agency_contacts(session, agency_id, channel=channel)

    async def import_csv(self, text: str) -> Imported:
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
                total += len(
                    await contact_store.replace_contacts(session, agency_id, contacts, now)
                )
        return Imported(agencies=len(found), contacts=total)

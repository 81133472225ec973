"""Contacts over HTTP (the coordinating office only): per agency, or a CSV file for many.

`/contacts/email` is the email-only form of `/contacts`: both go through the same use case
(`notifier.use_cases.contacts`); it replaces only the agency's email contacts.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from duban_shared.api import ApiError, error_responses
from duban_shared.audit import Actor
from duban_shared.auth import Principal
from fastapi import APIRouter, Body

from notifier.api.deps import OfficeDep, ServiceDep
from notifier.api.schemas import (
    ContactOut,
    ContactsBody,
    EmailContacts,
    ImportOut,
    contact_out,
)
from notifier.domain.contacts import CSV_COLUMNS, ContactIn, ContactProblem
from notifier.store.models import Contact
from notifier.use_cases.contacts import InvalidContacts, InvalidCsv

router = APIRouter(tags=["contacts"])

STATUS = {
    "unknown_agency": 404,
    "agency_merged": 409,
}


async def _replace(
    service: ServiceDep,
    office: Principal,
    agency_id: uuid.UUID,
    contacts: list[ContactIn],
    *,
    channel: str | None = None,
    with_details: bool = False,
) -> list[Contact]:
    """Replace an agency's contacts, each refusal as the API tells it."""
    try:
        return await service.contacts.replace(
            Actor.of(office), agency_id, contacts, channel=channel
        )
    except InvalidContacts as exc:
        first = exc.problems[0]
        raise ApiError(422, str(first["code"]), str(first["message"]), exc.problems) from exc
    except ContactProblem as problem:
        details = problem.details if with_details else None
        status = STATUS.get(problem.code, 422)
        raise ApiError(status, problem.code, problem.message, details) from problem


@router.put("/v1/agencies/{agency_id}/contacts", responses=error_responses(409))
async def put_contacts(
    agency_id: uuid.UUID, body: ContactsBody, service: ServiceDep, office: OfficeDep
) -> list[ContactOut]:
    """Replace an agency's contacts; every one is checked before any is kept."""
    contacts = [ContactIn(c.channel, c.address, c.label) for c in body.contacts]
    return [contact_out(r) for r in await _replace(service, office, agency_id, contacts)]


@router.get("/v1/agencies/{agency_id}/contacts")
async def get_contacts(
    agency_id: uuid.UUID, service: ServiceDep, _office: OfficeDep
) -> list[ContactOut]:
    """An agency's contacts in the order they are tried."""
    return [contact_out(r) for r in await service.contacts.of(agency_id)]


@router.put("/v1/agencies/{agency_id}/contacts/email", responses=error_responses(409))
async def put_email_contacts(
    agency_id: uuid.UUID, contacts: EmailContacts, service: ServiceDep, office: OfficeDep
) -> EmailContacts:
    """Replace an agency's email contacts (its other channels stay); the agency must be one the
    registry published. `PUT /v1/agencies/{agency_id}/contacts` sets every channel."""
    emails = [ContactIn("email", str(a)) for a in contacts.addresses]
    await _replace(service, office, agency_id, emails, channel="email", with_details=True)
    return contacts


@router.get("/v1/agencies/{agency_id}/contacts/email")
async def get_email_contacts(
    agency_id: uuid.UUID, service: ServiceDep, _office: OfficeDep
) -> EmailContacts:
    """Show an agency's email contacts."""
    rows = await service.contacts.of(agency_id, channel="email")
    return EmailContacts(addresses=[r.address for r in rows])


@router.post("/v1/contacts/import")
async def import_contacts(
    service: ServiceDep,
    office: OfficeDep,
    text: Annotated[
        str,
        Body(
            media_type="text/csv",
            examples=["agency,channel,address,label\n市林业局,sms,13800138000,值班\n"],
        ),
    ],
) -> ImportOut:
    """Import contacts from CSV (`agency,channel,address,label`, UTF-8, agency by name or id).

    All or nothing: any bad line refuses the whole file (422 `invalid_csv`, every problem with
    its line number). Agencies the file names get exactly its contacts, in file order; others
    keep theirs.
    """
    try:
        imported = await service.contacts.import_csv(Actor.of(office), text)
    except InvalidCsv as exc:
        raise ApiError(
            422,
            "invalid_csv",
            f"{len(exc.errors)} problem(s) in the file; nothing was imported. Columns: "
            f"{','.join(CSV_COLUMNS)}.",
            [{"line": e.line, "code": e.code, "message": e.message} for e in exc.errors],
        ) from exc
    return ImportOut(agencies=imported.agencies, contacts=imported.contacts)

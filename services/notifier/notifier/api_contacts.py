"""Contacts over HTTP (the coordinating office only): per agency, or a CSV file for many."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from duban_shared.api import ApiError, error_responses
from duban_shared.app import SessionDep
from duban_shared.auth import Principal, PrincipalDep, require_office
from duban_shared.inputs import Line
from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, Field

from notifier.contacts import (
    CSV_COLUMNS,
    MAX_PER_AGENCY,
    ContactIn,
    ContactProblem,
    agency_contacts,
    normalize,
    parse_csv,
    published_agency,
    replace_contacts,
)
from notifier.models import Contact

router = APIRouter(tags=["contacts"])


def _office(principal: PrincipalDep) -> Principal:
    """Contacts are the coordinating office's (coordinator or operator)."""
    require_office(principal)
    return principal


OfficeDep = Annotated[Principal, Depends(_office)]

STATUS = {
    "unknown_agency": 404,
    "agency_merged": 409,
}


class ContactBody(BaseModel):
    """One way to reach an agency."""

    channel: Literal["email", "sms", "wecom"]
    address: Line = Field(
        min_length=1,
        max_length=320,
        description="An email address, a mobile number (13800138000 or +8613800138000), or "
        "the name of a configured WeCom robot.",
    )
    label: Line | None = Field(default=None, max_length=60, examples=["办公室"])


class ContactOut(ContactBody):
    """A stored contact: numbers in E.164; `failed` once a provider refused it for good."""

    status: str
    failed_reason: str | None


class ContactsBody(BaseModel):
    """An agency's contacts, in the order they are tried (the next one when one fails)."""

    contacts: list[ContactBody] = Field(max_length=MAX_PER_AGENCY)


def _out(row: Contact) -> ContactOut:
    return ContactOut(
        channel=row.channel,
        address=row.address,
        label=row.label,
        status=row.status,
        failed_reason=row.failed_reason,
    )


@router.put("/v1/agencies/{agency_id}/contacts", responses=error_responses(409))
async def put_contacts(
    agency_id: uuid.UUID,
    body: ContactsBody,
    request: Request,
    session: SessionDep,
    _office: OfficeDep,
) -> list[ContactOut]:
    """Replace an agency's contacts; every one is checked before any is kept."""
    service = request.app.state.service
    robots = service.settings.wecom_robots()
    problems = []
    normalized = []
    for index, c in enumerate(body.contacts):
        try:
            normalized.append(
                normalize(ContactIn(c.channel, c.address, c.label), wecom_robots=robots)
            )
        except ContactProblem as problem:
            problems.append({"index": index, "code": problem.code, "message": problem.message})
    if problems:
        first = problems[0]
        raise ApiError(422, str(first["code"]), str(first["message"]), problems)
    async with session.begin():
        try:
            await published_agency(session, agency_id)
        except ContactProblem as problem:
            raise ApiError(
                STATUS.get(problem.code, 422), problem.code, problem.message
            ) from problem
        rows = await replace_contacts(session, agency_id, normalized, service.clock.now())
    return [_out(r) for r in rows]


@router.get("/v1/agencies/{agency_id}/contacts")
async def get_contacts(
    agency_id: uuid.UUID, session: SessionDep, _office: OfficeDep
) -> list[ContactOut]:
    """An agency's contacts in the order they are tried."""
    return [_out(r) for r in await agency_contacts(session, agency_id)]


class ImportOut(BaseModel):
    """What an import replaced: agencies named in the file get exactly the file's contacts."""

    agencies: int
    contacts: int


@router.post("/v1/contacts/import")
async def import_contacts(
    request: Request,
    session: SessionDep,
    _office: OfficeDep,
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
    service = request.app.state.service
    async with session.begin():
        found, errors = await parse_csv(session, text, wecom_robots=service.settings.wecom_robots())
        if errors:
            raise ApiError(
                422,
                "invalid_csv",
                f"{len(errors)} problem(s) in the file; nothing was imported. Columns: "
                f"{','.join(CSV_COLUMNS)}.",
                [{"line": e.line, "code": e.code, "message": e.message} for e in errors],
            )
        now = service.clock.now()
        total = 0
        for agency_id, contacts in found.items():
            total += len(await replace_contacts(session, agency_id, contacts, now))
    return ImportOut(agencies=len(found), contacts=total)

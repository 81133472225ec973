"""The office's read of a service's audit trail over HTTP: `GET /v1/audit` (filters, pages)
and `GET /v1/audit.xlsx` (the same entries as a workbook). See duban_shared.audit."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import AfterValidator, AwareDatetime, BeforeValidator

from duban_shared.api import Limit, Offset, Page, error_responses
from duban_shared.app import SessionDep
from duban_shared.audit import (
    XLSX_MAX_ROWS,
    XLSX_MEDIA_TYPE,
    AuditEntry,
    AuditFilter,
    audit_page,
    audit_xlsx,
    entry_out,
)
from duban_shared.auth import PrincipalDep, require_office
from duban_shared.inputs import Line

_FILTER_DOCS = {
    "action": "Only this action (e.g. policy.changed)",
    "subject": "Only this subject (e.g. a work point id 2024/35)",
    "actor": "Only this API client id",
    "from": "From this time (inclusive, ISO 8601 with zone)",
    "to": "Before this time (exclusive, ISO 8601 with zone)",
}


_ISO_8601 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_text(value: object) -> object:
    """Refuse what is not ISO 8601 text (a number would be read as seconds since 1970)."""
    if not isinstance(value, str) or not _ISO_8601.match(value):
        raise ValueError("must be an ISO 8601 time with its offset, e.g. 2024-09-02T09:00:00+08:00")
    return value


def _in_utc(moment: datetime) -> datetime:
    """The moment in UTC; one that UTC cannot hold (year 1 at +14:00) is the first or last
    moment UTC has, which compares the same with every stored entry."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        first, last = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
        return first if moment.year == 1 else last


Moment = Annotated[AwareDatetime, BeforeValidator(_iso_text), AfterValidator(_in_utc)]

ActionQ = Annotated[Line | None, Query(max_length=80, description=_FILTER_DOCS["action"])]
SubjectQ = Annotated[Line | None, Query(max_length=300, description=_FILTER_DOCS["subject"])]
ActorQ = Annotated[Line | None, Query(max_length=200, description=_FILTER_DOCS["actor"])]
FromQ = Annotated[Moment | None, Query(alias="from", description=_FILTER_DOCS["from"])]
ToQ = Annotated[Moment | None, Query(alias="to", description=_FILTER_DOCS["to"])]


def audit_router(model: type[Any]) -> APIRouter:
    """The office's read of a service's audit trail: `GET /v1/audit` and `/v1/audit.xlsx`."""
    router = APIRouter(tags=["audit"])

    @router.get("/v1/audit", responses=error_responses(403, 422))
    async def list_audit(
        session: SessionDep,
        principal: PrincipalDep,
        action: ActionQ = None,
        subject: SubjectQ = None,
        actor: ActorQ = None,
        since: FromQ = None,
        until: ToQ = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Page[AuditEntry]:
        """The audit trail (office only), newest first, filtered by action, subject, actor
        and time."""
        require_office(principal)
        where = AuditFilter(action, subject, actor, since, until)
        rows, total = await audit_page(session, model, where, limit, offset)
        return Page(items=[entry_out(r) for r in rows], total=total, limit=limit, offset=offset)

    @router.get(
        "/v1/audit.xlsx",
        response_class=Response,
        responses={
            200: {
                "description": "The matching entries as an Excel workbook, newest first.",
                "content": {XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
            },
            **error_responses(403, 422),
        },
    )
    async def export_audit(
        session: SessionDep,
        principal: PrincipalDep,
        action: ActionQ = None,
        subject: SubjectQ = None,
        actor: ActorQ = None,
        since: FromQ = None,
        until: ToQ = None,
    ) -> Response:
        """The audit trail as `.xlsx` (office only), with the same filters as the list; at
        most 50,000 rows (narrow the filters for more)."""
        require_office(principal)
        where = AuditFilter(action, subject, actor, since, until)
        rows, _ = await audit_page(session, model, where, XLSX_MAX_ROWS, 0)
        body = audit_xlsx([entry_out(r) for r in rows])
        return Response(
            body,
            media_type=XLSX_MEDIA_TYPE,
            headers={"Content-Disposition": 'attachment; filename="audit.xlsx"'},
        )

    return router

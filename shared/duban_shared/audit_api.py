"""The office's read of a service's audit trail over HTTP: `GET /v1/audit` (filters, pages)
and `GET /v1/audit.xlsx` (the same entries as a workbook). See duban_shared.audit."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import AfterValidator, AwareDatetime

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


def _plausible(moment: datetime) -> datetime:
    """Refuse a time no audit entry can have (it would overflow on the way to UTC)."""
    if not 1900 <= moment.year <= 2199:
        raise ValueError("must be a time between the years 1900 and 2199")
    return moment


Moment = Annotated[AwareDatetime, AfterValidator(_plausible)]

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

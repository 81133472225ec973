"""Circulars (通报) of a plan: made on demand by the office, listed, downloaded as .docx/.xlsx.

Scheduled circulars are made by progress's background loop (`progress.use_cases.circulars`);
these routes make one now, list a plan's and serve their files. Office only: circulars rank the
agencies and go to the leaders.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

from duban_shared.api import ApiError, Limit, Offset, Page, error_responses
from duban_shared.audit import Actor
from duban_shared.auth import PrincipalDep, require_office
from duban_shared.inputs import PlanSlug
from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from progress.api.deps import ServiceDep, SessionDep
from progress.domain.circulars import Kind
from progress.store import circulars as store
from progress.store.models import Circular
from progress.use_cases.circulars import UnknownPlan

router = APIRouter(tags=["circulars"])

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class CircularIn(BaseModel):
    """Make a circular of the plan now: the next version of the current week's or month's."""

    kind: Literal["weekly", "monthly"] = "weekly"


class CircularOut(BaseModel):
    """A stored circular; its files at `docx_url` and `xlsx_url`."""

    id: uuid.UUID
    plan_slug: str
    kind: Literal["weekly", "monthly"]
    period: str = Field(description="2024-W36 (ISO week) or 2024-09 (month).")
    version: int = Field(description="1, 2, ... within the plan and period.")
    number: str = Field(description="The 文号, e.g. 肇数督通〔2024〕3号.")
    trigger: Literal["scheduled", "on_demand"]
    created_at: datetime
    created_by: str | None = Field(description="The office client that asked; null if scheduled.")
    docx_url: str
    xlsx_url: str


class CircularDetailOut(CircularOut):
    """A circular with what it says (the figures in its files)."""

    summary: dict[str, Any] = Field(
        description="The circular's content: totals (as GET /v1/plans/{slug}/summary), agencies "
        "(from the scorecards, each with its acknowledgement figures: alerts_fired, "
        "alerts_acknowledged, median_ack_hours (wall-clock hours, null without any), "
        "alerts_unacknowledged, counted from alerts_since, the period's first moment, by "
        "ack_rule), red_list, yellow_list, honour_list (agency ids in rank order), "
        "red_points, changes since the previous circular, colours, rules."
    )


def circular_out(row: Circular) -> CircularOut:
    """A circular as the list answers it."""
    return CircularOut(
        id=row.id,
        plan_slug=row.plan_slug,
        kind=Kind(row.kind).value,
        period=row.period,
        version=row.version,
        number=row.number,
        trigger="scheduled" if row.trigger == "scheduled" else "on_demand",
        created_at=row.created_at,
        created_by=row.created_by,
        docx_url=f"/v1/circulars/{row.id}.docx",
        xlsx_url=f"/v1/circulars/{row.id}.xlsx",
    )


@router.post("/v1/plans/{plan_slug}/circulars", status_code=201, responses=error_responses(404))
async def make_circular(
    plan_slug: PlanSlug, body: CircularIn, svc: ServiceDep, principal: PrincipalDep
) -> CircularDetailOut:
    """Make a circular of the plan now (office only), store it and mail it to the configured
    list; a second one in the same period is its next version."""
    require_office(principal)
    try:
        row = await svc.circulars.issue(plan_slug, Kind(body.kind), actor=Actor.of(principal))
    except UnknownPlan:
        raise ApiError(
            404, "unknown_plan", f"No plan '{plan_slug}' is tracked; import it in the registry."
        ) from None
    return CircularDetailOut(**circular_out(row).model_dump(), summary=row.summary)


@router.get("/v1/plans/{plan_slug}/circulars")
async def list_circulars(
    plan_slug: PlanSlug,
    session: SessionDep,
    principal: PrincipalDep,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[CircularOut]:
    """The plan's circulars, newest first (office only)."""
    require_office(principal)
    rows, total = await store.of_plan(session, plan_slug, limit, offset)
    return Page(items=[circular_out(r) for r in rows], total=total, limit=limit, offset=offset)


async def _circular(session: SessionDep, circular_id: uuid.UUID) -> Circular:
    row = await store.get(session, circular_id)
    if row is None:
        raise ApiError(
            404,
            "unknown_circular",
            f"No circular {circular_id}; list a plan's with GET /v1/plans/{{slug}}/circulars.",
        )
    return row


def download(row: Circular, suffix: str) -> Response:
    """A circular's file as an attachment named by its 文号."""
    content, media = (row.docx, DOCX) if suffix == "docx" else (row.xlsx, XLSX)
    name = f"{row.number}.{suffix}"
    ascii_name = f"circular-{row.plan_slug}-{row.period}-v{row.version}.{suffix}"
    return Response(
        content,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="{ascii_name}"; '
            f"filename*=UTF-8''{quote(name)}"
        },
    )


@router.get(
    "/v1/circulars/{circular_id}.docx",
    response_class=Response,
    responses={
        200: {"content": {DOCX: {}}, "description": "The circular as Word."},
        **error_responses(404),
    },
)
async def circular_docx(
    circular_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> Response:
    """The circular as a Word document (office only)."""
    require_office(principal)
    return download(await _circular(session, circular_id), "docx")


@router.get(
    "/v1/circulars/{circular_id}.xlsx",
    response_class=Response,
    responses={
        200: {"content": {XLSX: {}}, "description": "The circular's detail workbook."},
        **error_responses(404),
    },
)
async def circular_xlsx(
    circular_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> Response:
    """The circular's detail as an Excel workbook (office only)."""
    require_office(principal)
    return download(await _circular(session, circular_id), "xlsx")


# After the .docx and .xlsx routes: "{id}.docx" also matches this path.
@router.get("/v1/circulars/{circular_id}", responses=error_responses(404))
async def get_circular(
    circular_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> CircularDetailOut:
    """One circular with its content (office only)."""
    require_office(principal)
    row = await _circular(session, circular_id)
    return CircularDetailOut(**circular_out(row).model_dump(), summary=row.summary)

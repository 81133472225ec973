"""Supervision notices (督办单): the office issues, the lead agency replies, the office closes or
withdraws; everyone reads the notices they may see, with their history, and prints one."""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import quote

from duban_shared.api import ApiError, Limit, Offset, Page, error_responses
from duban_shared.auth import PrincipalDep
from duban_shared.inputs import PlanSlug, WorkPointCode
from fastapi import APIRouter, Query, Response

from progress.api.deps import ServiceDep
from progress.api.notice_docx import DOCX_MEDIA_TYPE, notice_docx
from progress.api.schemas import (
    NoticeDetailOut,
    NoticeIn,
    NoticeNoteIn,
    NoticeOut,
    NoticeReplyIn,
    NoticeState,
    notice_detail_out,
    notice_out,
)
from progress.domain.notices import NoticeRefused

router = APIRouter(tags=["notices"])


def refused(refusal: NoticeRefused) -> ApiError:
    """409: the notice's state does not allow the change."""
    return ApiError(409, refusal.code, refusal.message)


@router.post(
    "/v1/work-points/{plan_slug}/{code}/notices",
    status_code=201,
    responses=error_responses(403, 404),
)
async def issue_notice(
    plan_slug: PlanSlug,
    code: WorkPointCode,
    body: NoticeIn,
    svc: ServiceDep,
    principal: PrincipalDep,
) -> NoticeOut:
    """Issue a supervision notice (督办单) on a work point (the office only): numbered per year,
    the reply due `reply_within_working_days` working days after today; the lead is told."""
    notice = await svc.notices.issue(
        principal,
        plan_slug,
        code,
        reason=body.reason,
        required_action=body.required_action,
        reply_within_working_days=body.reply_within_working_days,
    )
    return notice_out(notice)


@router.get("/v1/notices")
async def list_notices(
    svc: ServiceDep,
    principal: PrincipalDep,
    plan: Annotated[
        str | None, Query(max_length=80, pattern=r"^[a-z0-9][a-z0-9-]*$", description="Plan slug")
    ] = None,
    status: NoticeState | None = None,
    agency: Annotated[uuid.UUID | None, Query(description="A lead agency (office only)")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[NoticeOut]:
    """Notices newest first; an agency sees those of the work points it leads."""
    rows, total = await svc.notices.page(
        principal, plan=plan, status=status, agency=agency, limit=limit, offset=offset
    )
    return Page(items=[notice_out(n) for n in rows], total=total, limit=limit, offset=offset)


@router.get(
    "/v1/notices/{notice_id}.docx",
    response_class=Response,
    responses={
        200: {
            "description": "The notice printed as a Word document (督办通知单).",
            "content": {DOCX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        },
        **error_responses(404),
    },
)
async def print_notice(notice_id: uuid.UUID, svc: ServiceDep, principal: PrincipalDep) -> Response:
    """The notice as .docx: title, number, date, work point, reason, required action, reply
    deadline and the reply if any."""
    found = await svc.notices.one(principal, notice_id)
    filename = quote(f"督办通知单-{found.notice.number}.docx")
    return Response(
        notice_docx(found.notice),
        media_type=DOCX_MEDIA_TYPE,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{filename}"},
    )


@router.get("/v1/notices/{notice_id}", responses=error_responses(404))
async def get_notice(
    notice_id: uuid.UUID, svc: ServiceDep, principal: PrincipalDep
) -> NoticeDetailOut:
    """A notice with every state change (who, when, note)."""
    found = await svc.notices.one(principal, notice_id)
    return notice_detail_out(found.notice, found.history)


@router.post("/v1/notices/{notice_id}/reply", responses=error_responses(403, 404, 409))
async def reply_to_notice(
    notice_id: uuid.UUID, body: NoticeReplyIn, svc: ServiceDep, principal: PrincipalDep
) -> NoticeOut:
    """The lead agency's reply (反馈), on time or late; 409 once the notice is not open."""
    try:
        notice = await svc.notices.reply(
            principal, notice_id, text=body.text, evidence_url=body.evidence_url
        )
    except NoticeRefused as refusal:
        raise refused(refusal) from refusal
    return notice_out(notice)


@router.post("/v1/notices/{notice_id}/close", responses=error_responses(403, 404, 409))
async def close_notice(
    notice_id: uuid.UUID, body: NoticeNoteIn, svc: ServiceDep, principal: PrincipalDep
) -> NoticeOut:
    """Close a notice (办结; the office only); any escalation stops."""
    try:
        notice = await svc.notices.close(principal, notice_id, note=body.note)
    except NoticeRefused as refusal:
        raise refused(refusal) from refusal
    return notice_out(notice)


@router.post("/v1/notices/{notice_id}/withdraw", responses=error_responses(403, 404, 409))
async def withdraw_notice(
    notice_id: uuid.UUID, body: NoticeNoteIn, svc: ServiceDep, principal: PrincipalDep
) -> NoticeOut:
    """Withdraw an open notice (撤回; the office only); any escalation stops."""
    try:
        notice = await svc.notices.withdraw(principal, notice_id, note=body.note)
    except NoticeRefused as refusal:
        raise refused(refusal) from refusal
    return notice_out(notice)

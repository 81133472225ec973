"""Supervision notices (督办单) on the board: the office issues one from the work point page, the
lead agency replies there, and anyone who may see a notice downloads it printed (.docx).

The forms go through the API's request models and use cases, so the board refuses what the API
refuses, in Chinese, on the work point page with the form refilled."""

from __future__ import annotations

import uuid
from urllib.parse import quote

from duban_shared.api import ApiError
from duban_shared.inputs import WorkPointCode
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from progress.api.board.pages import work_point_page
from progress.api.board.render import CSRF_MESSAGE, refusal, render
from progress.api.board.session import UserDep, form_fields
from progress.api.deps import ServiceDep, SessionDep
from progress.api.notice_docx import DOCX_MEDIA_TYPE, notice_docx
from progress.api.schemas import NoticeIn, NoticeReplyIn
from progress.domain.notices import NoticeRefused

router = APIRouter(prefix="/board", include_in_schema=False)

ISSUE_INVALID = "请填写督办事由和整改要求(各至少2个字),反馈期限为1至30个工作日。"
REPLY_INVALID = "请填写反馈内容(至少2个字);佐证材料须为以 http:// 或 https:// 开头的链接。"


@router.post("/work-points/{plan_slug}/{code}/notices")
async def issue_notice(
    plan_slug: str,
    code: WorkPointCode,
    request: Request,
    session: SessionDep,
    user: UserDep,
    svc: ServiceDep,
) -> Response:
    """The office issues a notice from the work point page."""
    fields = await form_fields(request)
    if not user.csrf_ok(fields.get("csrf")):
        return render(
            "error.html.j2", status=403, user=user, plan_slug=plan_slug, message=CSRF_MESSAGE
        )
    try:
        days = int(fields.get("reply_within_working_days", "").strip() or "0")
        body = NoticeIn(
            reason=fields.get("reason", "").strip(),
            required_action=fields.get("required_action", "").strip(),
            reply_within_working_days=days,
        )
        await svc.notices.issue(
            user.principal,
            plan_slug,
            code,
            reason=body.reason,
            required_action=body.required_action,
            reply_within_working_days=body.reply_within_working_days,
        )
    except (ValidationError, ValueError):
        error, status = ISSUE_INVALID, 422
    except ApiError as exc:
        if exc.code == "office_only":
            error, status = "只有督办协调部门可以下发督办单。", 403
        else:
            return refusal(user, exc, plan_slug)
    else:
        return RedirectResponse(f"/board/work-points/{plan_slug}/{code}", status_code=303)
    return await work_point_page(
        request, session, user, plan_slug, code, error=error, status=status, form=fields
    )


@router.post("/notices/{notice_id}/reply")
async def reply_to_notice(
    notice_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    user: UserDep,
    svc: ServiceDep,
) -> Response:
    """The lead agency replies to a notice from the work point page."""
    fields = await form_fields(request)
    if not user.csrf_ok(fields.get("csrf")):
        return render("error.html.j2", status=403, user=user, plan_slug=None, message=CSRF_MESSAGE)
    try:
        found = await svc.notices.one(user.principal, notice_id)
    except ApiError as exc:
        return refusal(user, exc, None)
    notice = found.notice
    try:
        body = NoticeReplyIn(
            text=fields.get("text", "").strip(),
            evidence_url=fields.get("evidence_url", "").strip() or None,
        )
        await svc.notices.reply(
            user.principal, notice_id, text=body.text, evidence_url=body.evidence_url
        )
    except ValidationError:
        error, status = REPLY_INVALID, 422
    except NoticeRefused as refused:
        error, status = refused.message, 409
    except ApiError as exc:
        if exc.code != "not_lead_agency":
            return refusal(user, exc, notice.plan_slug)
        error, status = exc.message, 403
    else:
        return RedirectResponse(
            f"/board/work-points/{notice.plan_slug}/{notice.code}", status_code=303
        )
    return await work_point_page(
        request,
        session,
        user,
        notice.plan_slug,
        notice.code,
        error=error,
        status=status,
        form=fields,
    )


@router.get("/notices/{notice_id}.docx")
async def print_notice(notice_id: uuid.UUID, user: UserDep, svc: ServiceDep) -> Response:
    """The notice printed (.docx), for whoever may see it."""
    try:
        found = await svc.notices.one(user.principal, notice_id)
    except ApiError as exc:
        return refusal(user, exc, None)
    filename = quote(f"督办通知单-{found.notice.number}.docx")
    return Response(
        notice_docx(found.notice),
        media_type=DOCX_MEDIA_TYPE,
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{filename}"},
    )

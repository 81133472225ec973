"""Extension requests (延期申请) on the board: the lead agency requests (or withdraws) one on
the work point page, which shows every request and decision; the office approves or rejects
there or on the plan's page of pending requests (`/board/plans/{plan}/extensions`).

Every change goes to the registry's API with the user's own token (`board.registry`), so the
board refuses exactly what the registry refuses, said in Chinese, with the form refilled."""

from __future__ import annotations

from typing import Annotated

from duban_shared.api import ApiError
from duban_shared.inputs import WorkPointCode
from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.api.board.pages import work_point_page
from progress.api.board.registry import Refused, change, pending_of
from progress.api.board.render import CSRF_MESSAGE, refusal, render
from progress.api.board.session import BoardUser, UserDep, form_fields
from progress.api.deps import ServiceDep, SessionDep
from progress.service import ProgressService
from progress.store import queries

router = APIRouter(prefix="/board", include_in_schema=False)

ExtensionId = Annotated[int, Path(ge=1, le=2**31 - 1)]

DECISIONS = {"approve": "approve", "reject": "reject", "withdraw": "withdraw"}
REJECT_WITHOUT_REASON = "驳回时请填写驳回理由(1至2000字)。"
OFFICE_ONLY = "延期申请审批仅向督办协调部门开放。"


def _text(fields: dict[str, str], name: str) -> str | None:
    return fields.get(name, "").strip() or None


async def pending_page(
    session: AsyncSession,
    svc: ProgressService,
    user: BoardUser,
    plan_slug: str,
    *,
    error: str | None = None,
    status: int = 200,
    decided: str | None = None,
) -> HTMLResponse:
    """The plan's extension requests waiting for the office's decision, oldest first."""
    if not user.principal.is_office():
        return render(
            "error.html.j2", status=403, user=user, plan_slug=plan_slug, message=OFFICE_ONLY
        )
    lines = await queries.board_lines(session, plan_slug)
    if not lines:
        return refusal(user, ApiError(404, "unknown_plan", plan_slug), None)
    leads = {
        line.code: "、".join(name for _, name, role in line.responsible if role == "lead")
        for line in lines
    }
    pending = await pending_of(
        svc.board_http, svc.settings.registry_base_url, user.token, plan_slug
    )
    return render(
        "extensions.html.j2",
        status=status,
        user=user,
        plan_slug=plan_slug,
        pending=pending or [],
        leads=leads,
        registry_unavailable=pending is None,
        error=error,
        decided=decided,
    )


@router.get("/plans/{plan_slug}/extensions")
async def pending_extensions(
    plan_slug: str, session: SessionDep, user: UserDep, svc: ServiceDep, decided: str | None = None
) -> HTMLResponse:
    """The office's list of pending extension requests of the plan, each with its decision form."""
    said = {"approve": "已批准该延期申请。", "reject": "已驳回该延期申请。"}.get(decided or "")
    return await pending_page(session, svc, user, plan_slug, decided=said)


@router.post("/work-points/{plan_slug}/{code}/extensions")
async def request_extension(
    plan_slug: str,
    code: WorkPointCode,
    request: Request,
    session: SessionDep,
    user: UserDep,
    svc: ServiceDep,
) -> Response:
    """The lead agency asks for a later due date (new date and reason)."""
    fields = await form_fields(request)
    if not user.csrf_ok(fields.get("csrf")):
        return render(
            "error.html.j2", status=403, user=user, plan_slug=plan_slug, message=CSRF_MESSAGE
        )
    body = {"due_on": _text(fields, "ext_due_on"), "reason": _text(fields, "ext_reason")}
    try:
        await change(
            svc.board_http, svc.settings.registry_base_url, user.token, plan_slug, code, "", body
        )
    except Refused as refused:
        return await work_point_page(
            request,
            session,
            user,
            plan_slug,
            code,
            error=refused.message,
            status=refused.status,
            form=fields,
        )
    return RedirectResponse(f"/board/work-points/{plan_slug}/{code}#extensions", status_code=303)


@router.post("/work-points/{plan_slug}/{code}/extensions/{extension_id}")
async def decide_extension(
    plan_slug: str,
    code: WorkPointCode,
    extension_id: ExtensionId,
    request: Request,
    session: SessionDep,
    user: UserDep,
    svc: ServiceDep,
) -> Response:
    """The office approves or rejects a request (with a note or the reason); the lead agency
    withdraws its own. `back=pending` returns to the plan's pending requests."""
    fields = await form_fields(request)
    if not user.csrf_ok(fields.get("csrf")):
        return render(
            "error.html.j2", status=403, user=user, plan_slug=plan_slug, message=CSRF_MESSAGE
        )
    decision = DECISIONS.get(fields.get("decision", ""))
    back_to_pending = fields.get("back") == "pending"
    note = _text(fields, "ext_note")
    body: dict[str, str | None] = {}
    if decision == "approve":
        body = {"note": note}
    elif decision == "reject":
        body = {"reason": note}
    try:
        if decision is None:
            raise Refused(422, "invalid_request", "请选择批准、驳回或撤回。")
        await change(
            svc.board_http,
            svc.settings.registry_base_url,
            user.token,
            plan_slug,
            code,
            f"{extension_id}/{decision}",
            body,
        )
    except Refused as refused:
        message = refused.message
        if refused.code == "invalid_request" and decision == "reject":
            message = REJECT_WITHOUT_REASON
        if back_to_pending:
            return await pending_page(
                session, svc, user, plan_slug, error=message, status=refused.status
            )
        return await work_point_page(
            request,
            session,
            user,
            plan_slug,
            code,
            error=message,
            status=refused.status,
            form=fields,
        )
    if back_to_pending:
        return RedirectResponse(
            f"/board/plans/{plan_slug}/extensions?decided={decision}", status_code=303
        )
    return RedirectResponse(f"/board/work-points/{plan_slug}/{code}#extensions", status_code=303)

"""Circulars (通报) on the board (office only): the plan's circulars, newest first, with their
.docx and .xlsx, and the office's button to make one now (the same use case as the API's
`POST /v1/plans/{plan}/circulars`: the next version of the current week's or month's, stored,
mailed and recorded in the audit trail as the user's)."""

from __future__ import annotations

import math

from duban_shared.api import ApiError
from duban_shared.audit import Actor
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from progress.api.board.render import CSRF_MESSAGE, refusal, render
from progress.api.board.session import BoardUser, UserDep, form_fields
from progress.api.deps import ServiceDep, SessionDep
from progress.domain.circulars import Kind
from progress.store import circulars as circular_store
from progress.store import queries
from progress.use_cases.circulars import UnknownPlan

router = APIRouter(prefix="/board", include_in_schema=False)

PER_PAGE = 20
OFFICE_ONLY = "通报仅向督办协调部门开放。"
KINDS = {"weekly": "周通报", "monthly": "月通报"}


def _office_only(user: BoardUser, plan_slug: str) -> HTMLResponse:
    return render("error.html.j2", status=403, user=user, plan_slug=plan_slug, message=OFFICE_ONLY)


@router.get("/plans/{plan_slug}/circulars")
async def circulars(
    plan_slug: str,
    session: SessionDep,
    user: UserDep,
    page: int = 1,
    made: str | None = None,
) -> HTMLResponse:
    """The plan's circulars, newest first, a page at a time (office only)."""
    if not user.principal.is_office():
        return _office_only(user, plan_slug)
    if plan_slug not in await queries.plan_slugs(session):
        return refusal(user, ApiError(404, "unknown_plan", plan_slug), None)
    page = max(1, min(page, 10_000))
    rows, total = await circular_store.of_plan(session, plan_slug, PER_PAGE, (page - 1) * PER_PAGE)
    just_made = next((r for r in rows if str(r.id) == made), None) if made else None
    return render(
        "circulars.html.j2",
        user=user,
        plan_slug=plan_slug,
        circulars=rows,
        total=total,
        page=page,
        pages=max(1, math.ceil(total / PER_PAGE)),
        kinds=KINDS,
        made=just_made,
    )


@router.post("/plans/{plan_slug}/circulars")
async def make_circular(
    plan_slug: str, request: Request, user: UserDep, svc: ServiceDep
) -> Response:
    """The office makes a circular now (立即生成通报), then sees it at the top of the list."""
    fields = await form_fields(request)
    if not user.csrf_ok(fields.get("csrf")):
        return render(
            "error.html.j2", status=403, user=user, plan_slug=plan_slug, message=CSRF_MESSAGE
        )
    if not user.principal.is_office():
        return _office_only(user, plan_slug)
    kind = Kind.MONTHLY if fields.get("kind") == "monthly" else Kind.WEEKLY
    try:
        row = await svc.circulars.issue(plan_slug, kind, actor=Actor.of(user.principal))
    except UnknownPlan:
        return refusal(user, ApiError(404, "unknown_plan", plan_slug), None)
    return RedirectResponse(f"/board/plans/{plan_slug}/circulars?made={row.id}", status_code=303)

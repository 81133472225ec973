"""The supervision board's pages (督办看板), rendered on the server with Jinja2.

- `/board/plans/{plan}`: the plan's work points as a colour board by section, counts by colour,
  filters by agency and colour, a legend;
- `/board/work-points/{plan}/{code}`: one work point (by its code, '35' or '3.2'): agencies,
  targets and actuals, pace, and its timeline (reports, stall transitions and closure
  decisions from progress; alerts and their acknowledgements from the notifier), newest first;
  closure review buttons for the office; its supervision notices (督办单), with the office's
  form to issue one and the lead agency's form to reply (`board.notices`);
- `/board/plans/{plan}/scorecards`: agency scorecards; `/board/plans/{plan}/alerts`: open alerts,
  each linked to its trace; `/board/traces/{id}`: a trace as a span tree;
- `/board/circulars/{id}.docx|.xlsx`: a circular's files (office only; the plan's board lists
  its latest circulars for the office, `board.circulars` all of them);
- the work point page shows its extension requests (延期申请) and decisions, read from the
  registry with the user's token (`board.registry`); their forms and the office's list of
  pending requests are `board.extensions`; the audit trail of the three services (office
  only) is `board.audit`;
- `/board`: the only plan's board, or every plan with its counts by colour;
  `/board/scorecards`: agency scorecards on every plan, a line per plan and the totals.

Everything is read through the same queries and use cases as the API's (`store.queries`,
`use_cases.reading`, `use_cases.closure`), with the logged-in client's principal, so the board
shows exactly what the API would: the office everything, an agency the work points it is
responsible for. Pages work without JavaScript.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from duban_shared.api import ApiError
from duban_shared.inputs import WorkPointCode
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup, escape
from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.api.board import words
from progress.api.board.alerts import fetch_alerts
from progress.api.board.registry import extensions_of
from progress.api.board.render import CSRF_MESSAGE, refusal, render
from progress.api.board.session import BoardUser, UserDep, form_fields
from progress.api.board.timeline import ORDER, alert_items, progress_items
from progress.api.board.traces import TRACE_ID, TraceUnavailable, fetch_trace, trace_link
from progress.api.circulars import download
from progress.api.deps import ServiceDep, SessionDep, service
from progress.api.schemas import (
    ApproveIn,
    RejectIn,
    across_plans_out,
    notice_out,
    progress_out,
    scorecard_out,
)
from progress.domain.counts import Counts, plan_counts
from progress.domain.notices import STATE_NAMES
from progress.store import circulars as circular_store
from progress.store import queries
from progress.store.models import Circular
from progress.use_cases import reading
from progress.use_cases.closure import ClosureConflict
from progress.use_cases.reading import own

router = APIRouter(prefix="/board", include_in_schema=False)

TIMELINE_LIMIT = 200
CIRCULARS_SHOWN = 10


@dataclass(frozen=True)
class PlanEntry:
    """A plan on the board's index: its slug, title and counts by colour (the caller's)."""

    slug: str
    title: str
    totals: Counts


@router.get("")
async def home(session: SessionDep, user: UserDep) -> Response:
    """The only plan's board, or every plan with its counts by colour (an agency: the plans
    it has work points in, counted over its own) and the link to the scorecards across
    plans."""
    slugs = await queries.plan_slugs(session)
    if len(slugs) == 1:
        return RedirectResponse(f"/board/plans/{slugs[0]}", status_code=303)
    plans = []
    for slug in slugs:
        lines = await queries.board_lines(session, slug, own(user.principal))
        if lines or user.principal.is_office():
            totals, _ = plan_counts([(line, line) for line in lines])
            title, _ = await queries.plan_titles(session, slug)
            plans.append(PlanEntry(slug, title, totals))
    return render("plans.html.j2", user=user, plans=plans, plan_slug=None)


def _cell(href: str, line: queries.BoardLine, key: str) -> str:
    """One work point's cell as HTML, written here rather than in a template loop (a plan of
    thousands of work points renders many times faster: docs/benchmarks.md). Every value that
    is not ours (the title, the plan slug in `href`) is escaped."""
    mark, name, meaning = words.COLOURS[key]
    label = f"第{line.code}项 {line.title}:{name}({meaning})"
    if line.reasons and line.closure is None:
        label += f",原因:{words.reasons(line.reasons)}"
    provisional = ""
    if line.provisional:
        label += f";{words.PROVISIONAL}"
        provisional = f'<span class="p" title="{words.PROVISIONAL}">{words.PROVISIONAL_MARK}</span>'
    return (
        f'<li><a class="cell c-{key}" data-number="{line.number}" data-code="{line.code}" '
        f'data-colour="{key}" href="{href}/{line.code}" title="{escape(label)}">'
        f'<span class="n">{line.code}'
        f'{provisional}</span><span class="m">{mark}</span><span class="t">'
        f"{escape(words.short(line.title))}</span></a></li>"
    )


@router.get("/plans/{plan_slug}")
async def plan_board(
    plan_slug: str,
    session: SessionDep,
    user: UserDep,
    agency: str | None = None,
    colour: str | None = None,
) -> HTMLResponse:
    """The plan as a colour board: sections as groups, each work point a cell."""
    principal = user.principal
    lines = await queries.board_lines(session, plan_slug, own(principal))
    plan_title, section_titles = await queries.plan_titles(session, plan_slug)
    if not lines and principal.is_office():
        return refusal(user, ApiError(404, "unknown_plan", plan_slug), None)
    totals, sections = plan_counts([(line, line) for line in lines])
    agencies: dict[str, str] = {}
    for line in lines:
        for agency_id, name, _ in line.responsible:
            agencies.setdefault(agency_id, name)
    colour = colour if colour in words.COLOURS else None
    agency = agency if agency in agencies else None
    grid: dict[int, list[str]] = {}
    href = f"/board/work-points/{escape(plan_slug)}"
    shown = 0
    for line in lines:
        key = words.colour_key(line.level, line.closure)
        if colour is not None and key != colour:
            continue
        if agency is not None and all(a != agency for a, _, _ in line.responsible):
            continue
        grid.setdefault(line.section, []).append(_cell(href, line, key))
        shown += 1
    own_name = agencies.get(str(principal.agency_id)) if principal.agency_id else None
    circulars: list[Circular] = []
    if principal.is_office():
        circulars, _ = await circular_store.of_plan(session, plan_slug, CIRCULARS_SHOWN, 0)
    return render(
        "board.html.j2",
        circulars=circulars,
        user=user,
        own_name=own_name,
        plan_slug=plan_slug,
        plan_title=plan_title,
        section_titles=section_titles,
        totals=totals,
        sections=sections,
        # Cells are HTML with every value escaped by _cell().
        grid={n: Markup("\n".join(cells)) for n, cells in sorted(grid.items())},  # noqa: S704
        shown=shown,
        agencies=sorted(agencies.items(), key=lambda kv: kv[1]),
        agency=agency,
        colour=colour,
        provisional=sum(line.provisional for line in lines),
    )


async def work_point_page(
    request: Request,
    session: AsyncSession,
    user: BoardUser,
    plan_slug: str,
    code: str,
    *,
    error: str | None = None,
    status: int = 200,
    form: dict[str, str] | None = None,
    reported: bool = False,
) -> HTMLResponse:
    """The work point page (with `error` said at the top and `form` refilled after a refused
    form)."""
    svc = service(request)
    try:
        progress = progress_out(*await reading.work_point(session, user.principal, plan_slug, code))
    except ApiError as exc:
        return refusal(user, exc, plan_slug)
    entries, total = await queries.timeline(session, progress.work_point_id, TIMELINE_LIMIT, 0)
    names = {str(a.agency_id): a.name for a in progress.agencies}
    items = progress_items(entries, names)
    alerts = await fetch_alerts(
        svc.board_http,
        svc.settings.notifier_url,
        user.token,
        work_point_id=progress.work_point_id,
    )
    if alerts is not None:
        items += alert_items(alerts, svc.settings)
    items.sort(key=lambda i: (i.at, ORDER[i.kind]), reverse=True)
    notices, _ = await svc.notices.page(
        user.principal,
        plan=None,
        status=None,
        agency=None,
        work_point_id=progress.work_point_id,
        limit=50,
        offset=0,
    )
    lead = user.principal.agency_id is not None and any(
        a.role == "lead" and a.agency_id == user.principal.agency_id for a in progress.agencies
    )
    extensions = await extensions_of(
        svc.board_http, svc.settings.registry_base_url, user.token, plan_slug, progress.code
    )
    return render(
        "work_point.html.j2",
        extensions=list(reversed(extensions or [])),
        extensions_unavailable=extensions is None,
        notices=[notice_out(n) for n in notices],
        notice_states=STATE_NAMES,
        may_reply=lead,
        form=form or {},
        status=status,
        user=user,
        plan_slug=plan_slug,
        p=progress,
        colour=words.colour_key(progress.level, progress.closure),
        items=items,
        truncated=total > TIMELINE_LIMIT,
        alerts_unavailable=alerts is None,
        error=error,
        reported=reported,
    )


@router.get("/work-points/{plan_slug}/{code}")
async def work_point(
    plan_slug: str,
    code: WorkPointCode,
    request: Request,
    session: SessionDep,
    user: UserDep,
    reported: str | None = None,
) -> HTMLResponse:
    """One work point: header, targets, pace and its timeline (`reported`: a report from the
    form was just accepted)."""
    return await work_point_page(
        request, session, user, plan_slug, code, reported=reported is not None
    )


@router.post("/work-points/{plan_slug}/{code}/closure")
async def decide_closure(
    plan_slug: str,
    code: WorkPointCode,
    request: Request,
    session: SessionDep,
    user: UserDep,
    svc: ServiceDep,
) -> Response:
    """The office approves or rejects a closure request (办结销号) from the work point page."""
    fields = await form_fields(request)
    if not user.csrf_ok(fields.get("csrf")):
        return render(
            "error.html.j2", status=403, user=user, plan_slug=plan_slug, message=CSRF_MESSAGE
        )
    text = fields.get("text", "").strip() or None
    approve = fields.get("decision") == "approve"
    try:
        # the API's request models check the text as the API would
        reason = ApproveIn(note=text).note if approve else RejectIn(reason=text or "").reason
        await svc.closure.decide(user.principal, plan_slug, code, approve=approve, reason=reason)
    except ValidationError:
        error, status = "退回时请填写理由(至少2个字)。", 422
    except ClosureConflict:
        error, status = "该项工作当前不在办结审核中。", 409
    except ApiError as exc:
        return refusal(user, exc, plan_slug)
    else:
        return RedirectResponse(f"/board/work-points/{plan_slug}/{code}", status_code=303)
    # the page again, saying why the decision was not taken
    return await work_point_page(
        request, session, user, plan_slug, code, error=error, status=status
    )


@router.get("/plans/{plan_slug}/scorecards")
async def scorecards(plan_slug: str, session: SessionDep, user: UserDep) -> HTMLResponse:
    """Agency scorecards: the office sees every agency, an agency its own."""
    principal = user.principal
    if principal.is_office():
        cards = await queries.plan_scorecards(session, plan_slug)
    else:
        assert principal.agency_id is not None
        card = await queries.agency_scorecard(session, plan_slug, principal.agency_id)
        cards = [card] if card is not None else []
    return render(
        "scorecards.html.j2",
        user=user,
        plan_slug=plan_slug,
        cards=[scorecard_out(c) for c in cards],
    )


@router.get("/scorecards")
async def scorecards_across_plans(session: SessionDep, user: UserDep) -> HTMLResponse:
    """Agency scorecards on every plan, each agency once with a line per plan and its totals:
    the office sees every agency, an agency its own."""
    rows = await queries.scorecards_across_plans(session, own(user.principal))
    return render(
        "all_scorecards.html.j2",
        user=user,
        plan_slug=None,
        rows=[across_plans_out(row) for row in rows],
    )


@router.get("/plans/{plan_slug}/alerts")
async def open_alerts(plan_slug: str, request: Request, user: UserDep) -> HTMLResponse:
    """The plan's open alerts (firing or acknowledged), newest first, each with its trace."""
    svc = service(request)
    alerts = await fetch_alerts(svc.board_http, svc.settings.notifier_url, user.token, state="open")
    settings = svc.settings
    rows = [
        (a, trace_link(settings.trace_ui_url, settings.trace_query_url, a.trace_id))
        for a in alerts or []
        if a.work_point_id.startswith(f"{plan_slug}/")
    ]
    return render(
        "alerts.html.j2",
        user=user,
        plan_slug=plan_slug,
        rows=rows,
        alerts_unavailable=alerts is None,
    )


# ---------------------------------------------------------------- an alert's trace


@router.get("/traces/{trace_id}")
async def trace_page(trace_id: str, request: Request, user: UserDep) -> HTMLResponse:
    """A trace from the trace backend's query API as a span tree (the office's operators)."""
    svc = service(request)
    settings = svc.settings
    if not user.principal.is_office():
        return render("error.html.j2", status=403, user=user, message="调用链路仅向协调部门开放。")
    if not TRACE_ID.fullmatch(trace_id):
        return render(
            "error.html.j2",
            status=404,
            user=user,
            message="链路编号应为32位十六进制数字(小写)。",
        )
    if not settings.trace_query_url:
        return render(
            "error.html.j2",
            status=404,
            user=user,
            message="未配置链路查询服务(DUBAN_PROGRESS_TRACE_QUERY_URL)。",
        )
    try:
        spans = await fetch_trace(svc.board_http, settings.trace_query_url, trace_id)
    except TraceUnavailable:
        return render(
            "trace.html.j2", status=502, user=user, trace_id=trace_id, spans=[], unavailable=True
        )
    services = sorted({s.service for s in spans})
    return render(
        "trace.html.j2",
        status=200 if spans else 404,
        user=user,
        trace_id=trace_id,
        spans=spans,
        services=services,
        unavailable=False,
    )


@router.get("/circulars/{circular_id}.{suffix}")
async def circular_file(
    circular_id: str, suffix: str, session: SessionDep, user: UserDep
) -> Response:
    """A circular's .docx or .xlsx (office only), as the API serves it."""
    if not user.principal.is_office():
        return refusal(user, ApiError(403, "office_only", "office only"), None)
    try:
        wanted = uuid.UUID(circular_id)
    except ValueError:
        wanted = None
    row = await circular_store.get(session, wanted) if wanted is not None else None
    if row is None or suffix not in ("docx", "xlsx"):
        return refusal(user, ApiError(404, "unknown_circular", circular_id), None)
    return download(row, suffix)

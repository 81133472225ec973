"""The supervision board's pages (督办看板), rendered on the server with Jinja2.

- `/board/plans/{plan}`: the plan's work points as a colour board by section, counts by colour,
  filters by agency and colour, a legend;
- `/board/work-points/{plan}/{n}`: one work point: agencies, targets and actuals, pace, and its
  timeline (reports, stall transitions and closure decisions from progress; alerts and their
  acknowledgements from the notifier), newest first; closure review buttons for the office;
- `/board/plans/{plan}/scorecards`: agency scorecards; `/board/plans/{plan}/alerts`: open alerts,
  each linked to its trace.

Everything is read through the read API's functions and queries (`api_read`, `queries`), with
the logged-in client's principal, so the board shows exactly what the API would: the office
everything, an agency the work points it is responsible for. Pages work without JavaScript.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from typing import Any

from duban_shared.api import ApiError
from duban_shared.app import SessionDep
from duban_shared.auth import AuthError, Principal
from duban_shared.numerals import chinese_number
from duban_shared.throttle import LoginThrottle, address_key, client_key
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader
from markupsafe import Markup, escape
from pydantic import ValidationError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from progress import api_read, queries
from progress.board import words
from progress.board.alerts import BoardAlert, fetch_alerts
from progress.board.session import (
    LOGIN_COOKIE,
    WHY,
    BoardUser,
    LoginFailed,
    LoginThrottled,
    UserDep,
    csrf_ok,
    csrf_token,
    end_login_cookie,
    end_session,
    exchange,
    form_fields,
    is_https,
    login_secret,
    revoke,
    safe_next,
    set_login_cookie,
    set_session,
)
from progress.board.traces import TRACE_ID, TraceUnavailable, fetch_trace, trace_link
from progress.models import WorkPointView
from progress.settings import ProgressSettings

router = APIRouter(prefix="/board", include_in_schema=False)

TIMELINE_LIMIT = 200

_env = Environment(
    loader=PackageLoader("progress.board", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.globals.update(
    colours=words.COLOURS,
    colour_order=words.COLOUR_ORDER,
    reason_words=words.REASONS,
    status_words=words.STATUSES,
    role_words=words.ROLES,
    principal_words=words.PRINCIPALS,
    alert_state_words=words.ALERT_STATES,
    resolution_words=words.RESOLUTIONS,
    provisional_words=words.PROVISIONAL,
    provisional_mark=words.PROVISIONAL_MARK,
)
_env.filters.update(
    when=words.when,
    day=words.day,
    cn=chinese_number,
    reasons=words.reasons,
)
_CSS = (files("progress.board") / "static" / "board.css").read_text(encoding="utf-8")
_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def render(template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """A page of the board."""
    html = _env.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=_SECURITY_HEADERS)


def _secure(request: Request) -> bool:
    """Whether cookies get the Secure flag: over HTTPS, and always in production."""
    return is_https(request) or request.app.state.service.settings.environment == "production"


def _own(principal: Principal) -> uuid.UUID | None:
    return None if principal.is_office() else principal.agency_id


def _refusal(user: BoardUser, exc: ApiError, plan_slug: str | None) -> HTMLResponse:
    if exc.status == 403:
        message = "您所在单位不负责该项工作,无权查看。"
    elif exc.status == 404:
        message = "没有找到该工作计划或工作要点。"
    else:
        message = "暂时无法显示该页面,请稍后再试。"
    return render(
        "error.html.j2", status=exc.status, user=user, plan_slug=plan_slug, message=message
    )


# ---------------------------------------------------------------- static, login, logout


@router.get("/static/board.css")
async def stylesheet() -> Response:
    """The board's stylesheet."""
    return Response(_CSS, media_type="text/css", headers={"Cache-Control": "max-age=300"})


_QUERY_SECRETS = frozenset({"client_secret", "access_token", "token"})


def _secret_in_query(request: Request) -> bool:
    return any(name.lower() in _QUERY_SECRETS for name in request.query_params)


def _login_form(
    request: Request,
    *,
    status: int = 200,
    next: str | None = None,
    client_id: str = "",
    notice: str | None = None,
    error: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The login page, with the CSRF token of its login cookie (set when new)."""
    secret = login_secret(request)
    response = render(
        "login.html.j2",
        status=status,
        notice=notice,
        error=error,
        code=code,
        next=safe_next(next),
        client_id=client_id,
        csrf=csrf_token(secret),
    )
    response.headers.update(headers or {})
    set_login_cookie(response, secret, secure=_secure(request))
    return response


_QUERY_MESSAGE = (
    "客户端密钥不能放在网址中(网址会被记录在日志和浏览器历史里)。请在登录表单中填写,"
    "并请系统管理员为该客户端更换密钥。"
)


@router.get("/login")
async def login_page(
    request: Request, why: str | None = None, next: str | None = None
) -> HTMLResponse:
    """The login form: an API client's id and secret."""
    if _secret_in_query(request):
        return _login_form(request, status=400, error=_QUERY_MESSAGE, code="credentials_in_query")
    return _login_form(request, notice=WHY.get(why or ""), next=next)


@router.post("/login")
async def login(request: Request) -> Response:
    """Exchange the client's credentials for a token at the registry; keep it in the cookie.

    Refused before the registry is asked: credentials in the URL (400 credentials_in_query), a
    form without its CSRF token (403 csrf_failed), and, after repeated failures, a client id or
    browser address that must wait (429 too_many_attempts with Retry-After)."""
    service = request.app.state.service
    fields = await form_fields(request)
    client_id = fields.get("client_id", "").strip()
    secret = fields.get("client_secret", "").strip()
    target = safe_next(fields.get("next"))

    def failed(
        message: str, status: int, code: str, headers: dict[str, str] | None = None
    ) -> HTMLResponse:
        return _login_form(
            request,
            status=status,
            error=message,
            code=code,
            next=target,
            client_id=client_id,
            headers=headers,
        )

    if _secret_in_query(request):
        return failed(_QUERY_MESSAGE, 400, "credentials_in_query")
    if not csrf_ok(request.cookies.get(LOGIN_COOKIE), fields.get("csrf")):
        return failed(_CSRF_MESSAGE, 403, "csrf_failed")
    if not client_id or not secret:
        return failed("请填写客户端编号和客户端密钥。", 400, "credentials_missing")
    throttle: LoginThrottle = service.login_throttle
    source = request.client.host if request.client else None
    keys = (client_key(client_id), address_key(source))
    wait = throttle.wait(*keys)
    if wait > 0:
        return _too_many(failed, wait)
    try:
        token, seconds = await exchange(
            service.board_http,
            service.settings.registry_base_url,
            client_id,
            secret,
            source=source,
        )
        await service.verifier.verify(token)
    except LoginThrottled as exc:
        return _too_many(failed, exc.seconds)
    except LoginFailed as exc:
        if exc.refused:
            throttle.failed(*keys)
        return failed(str(exc), 401, "login_failed")
    except AuthError:
        return failed("登录令牌未通过校验,请联系系统管理员。", 401, "invalid_token")
    throttle.succeeded(keys[0])
    response = RedirectResponse(target, status_code=303)
    set_session(response, token, seconds, secure=_secure(request))
    end_login_cookie(response, secure=_secure(request))
    return response


def _too_many(
    failed: Callable[[str, int, str, dict[str, str] | None], HTMLResponse], seconds: float
) -> HTMLResponse:
    wait = max(1, math.ceil(seconds))
    return failed(
        f"登录失败次数过多,请在{wait}秒后再试。",
        429,
        "too_many_attempts",
        {"Retry-After": str(wait)},
    )


@router.post("/logout")
async def logout(request: Request, user: UserDep) -> Response:
    """Revoke the session's token (the form carries the CSRF token): refused here at once, and
    by every service once the registry's revocation reached it (seconds)."""
    if not user.csrf_ok((await form_fields(request)).get("csrf")):
        return render("error.html.j2", status=403, user=user, message=_CSRF_MESSAGE)
    service = request.app.state.service
    service.verifier.revoke(user.token)
    await revoke(service.board_http, service.settings.registry_base_url, user.token)
    response = RedirectResponse("/board/login?why=logout", status_code=303)
    end_session(response, secure=_secure(request))
    return response


_CSRF_MESSAGE = "表单已失效(可能来自其他页面或已重新登录),请返回后重试。"


# ---------------------------------------------------------------- the board


@router.get("")
async def home(session: SessionDep, user: UserDep) -> Response:
    """The only plan's board, or the list of plans."""
    slugs = list(
        (
            await session.exec(
                select(WorkPointView.plan_slug)
                .where(col(WorkPointView.deleted).is_(False))
                .distinct()
                .order_by(col(WorkPointView.plan_slug))
            )
        ).all()
    )
    if len(slugs) == 1:
        return RedirectResponse(f"/board/plans/{slugs[0]}", status_code=303)
    return render("plans.html.j2", user=user, plans=slugs, plan_slug=None)


def _cell(href: str, line: queries.BoardLine, key: str) -> str:
    """One work point's cell as HTML, written here rather than in a template loop (a plan of
    thousands of work points renders many times faster: docs/benchmarks.md). Every value that
    is not ours (the title, the plan slug in `href`) is escaped."""
    mark, name, meaning = words.COLOURS[key]
    label = f"第{line.number}项 {line.title}:{name}({meaning})"
    if line.reasons and line.closure is None:
        label += f",原因:{words.reasons(line.reasons)}"
    provisional = ""
    if line.provisional:
        label += f";{words.PROVISIONAL}"
        provisional = f'<span class="p" title="{words.PROVISIONAL}">{words.PROVISIONAL_MARK}</span>'
    return (
        f'<li><a class="cell c-{key}" data-number="{line.number}" data-colour="{key}" '
        f'href="{href}/{line.number}" title="{escape(label)}"><span class="n">{line.number}'
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
    lines = await queries.board_lines(session, plan_slug, _own(principal))
    plan_title, section_titles = await queries.plan_titles(session, plan_slug)
    if not lines and principal.is_office():
        return _refusal(user, ApiError(404, "unknown_plan", plan_slug), None)
    totals, sections = queries.plan_counts([(line, line) for line in lines])
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
    return render(
        "board.html.j2",
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


# ---------------------------------------------------------------- a work point


@dataclass(frozen=True)
class TimelineItem:
    """One line of a work point's timeline on the page."""

    at: datetime
    kind: str  # report, transition, closure_decision, alert
    colour: str | None
    title: str
    text: str
    link: str | None = None


def _progress_items(entries: list[queries.Entry], names: dict[str, str]) -> list[TimelineItem]:
    items = []
    for e in entries:
        d = e.detail
        if e.kind == "report":
            status = words.STATUSES.get(d["status"], d["status"])
            title = f"{names.get(d['agency_id'], '责任单位')}报送:{status}"
            parts = [f"进度 {d['percent']}%"] if d["percent"] is not None else []
            parts += [f"{k} {v:g}" for k, v in (d.get("kpis") or {}).items()]
            if d.get("note"):
                parts.append(f"说明:{d['note']}")
            if d.get("late"):
                parts.append("补报")
            if d.get("out_of_order"):
                parts.append("晚于后续报送到达,不改变状态")
            items.append(TimelineItem(e.at, "report", None, title, ";".join(parts)))
        elif e.kind == "transition":
            level = d.get("level")
            name = words.COLOURS.get(level or "", ("", level or "", ""))[1]
            previous = words.COLOURS.get(d.get("previous_level") or "", ("", "", ""))[1]
            kind = d["transition"]
            title = {
                "opened": f"进入{name}督办",
                "level_changed": f"由{previous}转为{name}",
                "recovered": "恢复正常",
                "closed": "办结销号",
            }.get(kind, kind)
            text = f"原因:{words.reasons(d['reasons'])}" if d.get("reasons") else ""
            items.append(TimelineItem(e.at, "transition", level, title, text))
        else:
            approved = d["decision"] == "approved"
            title = "办结审核通过" if approved else "办结申请退回"
            text = (("意见:" if approved else "理由:") + d["reason"]) if d.get("reason") else ""
            items.append(TimelineItem(e.at, "closure_decision", None, title, text))
    return items


def _alert_items(alerts: list[BoardAlert], settings: ProgressSettings) -> list[TimelineItem]:
    items = []
    for a in alerts:
        link = trace_link(settings.trace_ui_url, settings.trace_query_url, a.trace_id)
        name = words.COLOURS.get(a.level, ("", a.level, ""))[1]
        items.append(
            TimelineItem(
                a.fired_at,
                "alert",
                a.level,
                f"发出{name}督办提醒",
                f"原因:{words.reasons(a.reasons)}" if a.reasons else "",
                link,
            )
        )
        if a.acknowledged_at is not None:
            who = a.acknowledged_by or ""
            by = "通过提醒链接" if who.startswith("link:") else (f"由 {who} " if who else "")
            items.append(
                TimelineItem(a.acknowledged_at, "ack", None, "督办提醒已确认知悉", f"{by}确认")
            )
        if a.resolved_at is not None:
            items.append(
                TimelineItem(
                    a.resolved_at,
                    "resolved",
                    None,
                    "督办提醒解除",
                    words.RESOLUTIONS.get(a.resolution or "", ""),
                )
            )
    return items


_ORDER = {"report": 0, "closure_decision": 1, "transition": 2, "alert": 3, "ack": 4, "resolved": 5}


async def _work_point_page(
    request: Request,
    session: AsyncSession,
    user: BoardUser,
    plan_slug: str,
    number: int,
    *,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    service = request.app.state.service
    try:
        progress = await api_read.work_point_progress(plan_slug, number, session, user.principal)
    except ApiError as exc:
        return _refusal(user, exc, plan_slug)
    entries, total = await queries.timeline(session, progress.work_point_id, TIMELINE_LIMIT, 0)
    names = {str(a.agency_id): a.name for a in progress.agencies}
    items = _progress_items(entries, names)
    alerts = await fetch_alerts(
        service.board_http,
        service.settings.notifier_url,
        user.token,
        work_point_id=progress.work_point_id,
    )
    if alerts is not None:
        items += _alert_items(alerts, service.settings)
    items.sort(key=lambda i: (i.at, _ORDER[i.kind]), reverse=True)
    return render(
        "work_point.html.j2",
        status=status,
        user=user,
        plan_slug=plan_slug,
        p=progress,
        colour=words.colour_key(progress.level, progress.closure),
        items=items,
        truncated=total > TIMELINE_LIMIT,
        alerts_unavailable=alerts is None,
        error=error,
    )


@router.get("/work-points/{plan_slug}/{number}")
async def work_point(
    plan_slug: str, number: int, request: Request, session: SessionDep, user: UserDep
) -> HTMLResponse:
    """One work point: header, targets, pace and its timeline."""
    return await _work_point_page(request, session, user, plan_slug, number)


@router.post("/work-points/{plan_slug}/{number}/closure")
async def decide_closure(
    plan_slug: str, number: int, request: Request, session: SessionDep, user: UserDep
) -> Response:
    """The office approves or rejects a closure request (办结销号) from the work point page."""
    fields = await form_fields(request)
    if not user.csrf_ok(fields.get("csrf")):
        return render(
            "error.html.j2", status=403, user=user, plan_slug=plan_slug, message=_CSRF_MESSAGE
        )
    text = fields.get("text", "").strip() or None
    try:
        if fields.get("decision") == "approve":
            body = api_read.ApproveIn(note=text)
            await api_read.approve_closure(
                plan_slug, number, body, request, session, user.principal
            )
        else:
            refusal = api_read.RejectIn(reason=text or "")
            await api_read.reject_closure(
                plan_slug, number, refusal, request, session, user.principal
            )
    except ValidationError:
        error, status = "退回时请填写理由(至少2个字)。", 422
    except ApiError as exc:
        if exc.status != 409:
            return _refusal(user, exc, plan_slug)
        error, status = "该项工作当前不在办结审核中。", 409
    else:
        return RedirectResponse(f"/board/work-points/{plan_slug}/{number}", status_code=303)
    # the page again, saying why the decision was not taken
    return await _work_point_page(
        request, session, user, plan_slug, number, error=error, status=status
    )


# ---------------------------------------------------------------- scorecards, alerts


@router.get("/plans/{plan_slug}/scorecards")
async def scorecards(plan_slug: str, session: SessionDep, user: UserDep) -> HTMLResponse:
    """Agency scorecards: the office sees every agency, an agency its own."""
    principal = user.principal
    try:
        if principal.is_office():
            cards = await api_read.plan_scorecards(plan_slug, session, principal)
        else:
            assert principal.agency_id is not None
            cards = [
                await api_read.agency_scorecard(plan_slug, principal.agency_id, session, principal)
            ]
    except ApiError as exc:
        if exc.status != 404:
            return _refusal(user, exc, plan_slug)
        cards = []
    return render("scorecards.html.j2", user=user, plan_slug=plan_slug, cards=cards)


@router.get("/plans/{plan_slug}/alerts")
async def open_alerts(plan_slug: str, request: Request, user: UserDep) -> HTMLResponse:
    """The plan's open alerts (firing or acknowledged), newest first, each with its trace."""
    service = request.app.state.service
    alerts = await fetch_alerts(
        service.board_http, service.settings.notifier_url, user.token, state="open"
    )
    settings = service.settings
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
    settings = request.app.state.service.settings
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
        spans = await fetch_trace(
            request.app.state.service.board_http, settings.trace_query_url, trace_id
        )
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

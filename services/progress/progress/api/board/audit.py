"""The audit trail on the board (office only): the entries of the three services, newest first,
filtered by service, action, actor and days, a page at a time, each with its trace, and the
`.xlsx` export of what the filters keep.

Progress's own trail is read from its database (`duban_shared.audit.audit_page`, as its
`GET /v1/audit` does); the registry's and the notifier's through their `GET /v1/audit` and
`/v1/audit.xlsx` with the user's own token. A service that does not answer is named on the
page, which shows the others'.

All services together: each is asked for its newest `offset + page` entries and the answers are
merged by time, so the first pages of up to `MERGED_LIMIT` entries can be paged through; further
back, choose one service (or narrow the days).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
from duban_shared.audit import (
    XLSX_MAX_ROWS,
    XLSX_MEDIA_TYPE,
    AuditEntry,
    AuditFilter,
    audit_page,
    audit_xlsx,
    entry_out,
)
from fastapi import APIRouter, Query, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from progress.api.board.render import render
from progress.api.board.session import BoardUser, UserDep
from progress.api.board.traces import trace_link
from progress.api.board.words import ZHAOQING
from progress.api.deps import ServiceDep, SessionDep
from progress.service import ProgressService
from progress.store.models import AuditLog

log = logging.getLogger(__name__)

router = APIRouter(prefix="/board", include_in_schema=False)

PER_PAGE = 50
MERGED_LIMIT = 500
"""How far back all services together can be paged (the services' largest page)."""
OFFICE_ONLY = "审计日志仅向督办协调部门开放。"

SERVICES = {"registry": "注册中心", "progress": "进展服务", "notifier": "通知服务"}
ACTIONS = {
    "plan.imported": "导入工作计划",
    "plan.changed": "修改工作计划",
    "plan.policy_changed": "修改计划督办规则",
    "section.retitled": "修改部分标题",
    "policy.changed": "修改督办规则(完成时限等)",
    "target.added": "新增量化指标",
    "target.removed": "删除量化指标",
    "shares.changed": "修改指标分解",
    "responsibilities.changed": "调整责任单位",
    "work_point.changed": "修改工作要点",
    "agency.created": "新增单位",
    "agency.renamed": "单位更名",
    "agency.kind_changed": "修改单位类型",
    "agency.alias_added": "新增单位别名",
    "agency.merged": "合并单位",
    "agency.aliases_loaded": "导入单位别名",
    "client.created": "签发接口客户端",
    "client.rotated": "更换客户端密钥",
    "client.revoked": "停用接口客户端",
    "extension.requested": "申请延期",
    "extension.approved": "批准延期",
    "extension.rejected": "驳回延期",
    "extension.withdrawn": "撤回延期申请",
    "due_on.extended": "完成时限延期",
    "closure.approved": "办结审核通过",
    "closure.rejected": "办结审核退回",
    "notice.issued": "下发督办单",
    "notice.replied": "反馈督办单",
    "notice.closed": "办结督办单",
    "notice.withdrawn": "撤回督办单",
    "circular.issued": "生成通报",
    "contacts.replaced": "更新联系人",
}
"""Chinese labels of the actions (the filter and the list show the stable code beside them)."""
ROLES = {
    "coordinator": "协调人",
    "operator": "运维",
    "agency": "责任单位",
    "system": "系统",
}


@dataclass(frozen=True)
class Filters:
    """The page's filters as the user gave them (text), and what they mean."""

    service: str
    action: str
    actor: str
    day_from: str
    day_to: str
    page: int

    def where(self) -> AuditFilter:
        return AuditFilter(
            action=self.action or None,
            actor=self.actor or None,
            since=_start_of(self.day_from),
            until=_start_of(self.day_to, next_day=True),
        )

    def services(self) -> list[str]:
        return [self.service] if self.service in SERVICES else list(SERVICES)

    def link(self, **changes: Any) -> str:
        fields = {
            "service": self.service,
            "action": self.action,
            "actor": self.actor,
            "from": self.day_from,
            "to": self.day_to,
            "page": str(self.page),
        }
        fields.update({k: str(v) for k, v in changes.items()})
        kept = {k: v for k, v in fields.items() if v and not (k == "page" and v == "1")}
        return urlencode(kept)


def _start_of(day: str, *, next_day: bool = False) -> datetime | None:
    """The first moment (Zhaoqing's time) of a day given as 2024-09-02, or of the day after."""
    if not day:
        return None
    start = datetime.combine(date.fromisoformat(day), time(), tzinfo=ZHAOQING)
    return start + timedelta(days=1) if next_day else start


DayFrom = Annotated[str | None, Query(alias="from")]
DayTo = Annotated[str | None, Query(alias="to")]


@dataclass(frozen=True)
class Row:
    """An entry on the page: its service and trace link."""

    service: str
    entry: AuditEntry
    trace: str | None


class Unanswered(Exception):
    """A service that did not answer (or refused the filters: `refused`)."""

    def __init__(self, refused: bool = False) -> None:
        super().__init__("refused" if refused else "unavailable")
        self.refused = refused


def _params(where: AuditFilter, limit: int, offset: int) -> dict[str, str]:
    params = {"limit": str(limit), "offset": str(offset)}
    if where.action:
        params["action"] = where.action
    if where.actor:
        params["actor"] = where.actor
    if where.since:
        params["from"] = where.since.isoformat()
    if where.until:
        params["to"] = where.until.isoformat()
    return params


def _base_url(svc: ProgressService, service: str) -> str:
    settings = svc.settings
    return settings.registry_base_url if service == "registry" else settings.notifier_url


async def _entries(
    session: AsyncSession,
    svc: ProgressService,
    user: BoardUser,
    service: str,
    where: AuditFilter,
    limit: int,
    offset: int,
) -> tuple[list[AuditEntry], int]:
    """A page of one service's trail, newest first, and how many entries match."""
    if service == "progress":
        rows, total = await audit_page(session, AuditLog, where, limit, offset)
        return [entry_out(r) for r in rows], total
    url = f"{_base_url(svc, service).rstrip('/')}/v1/audit"
    try:
        response = await svc.board_http.get(
            url,
            params=_params(where, limit, offset),
            headers={"Authorization": f"Bearer {user.token}"},
        )
        if response.status_code == 422:
            raise Unanswered(refused=True)
        if response.status_code != 200:
            log.warning("board: %s answered %s to GET /v1/audit", service, response.status_code)
            raise Unanswered()
        body = response.json()
        return [AuditEntry.model_validate(i) for i in body["items"]], int(body["total"])
    except (httpx.HTTPError, ValueError, KeyError, ValidationError) as exc:
        log.warning("board: audit of %s unavailable: %r", service, exc)
        raise Unanswered() from None


def _query(
    service: str | None,
    action: str | None,
    actor: str | None,
    day_from: str | None,
    day_to: str | None,
    page: str | None,
) -> tuple[Filters, str | None]:
    """The filters, and what is wrong with them (said in Chinese) if anything."""
    query = Filters(
        service=service if service in SERVICES else "",
        action=(action or "").strip()[:80],
        actor=(actor or "").strip()[:200],
        day_from=(day_from or "").strip(),
        day_to=(day_to or "").strip(),
        page=max(1, min(int(page), 100_000)) if page and page.isdigit() else 1,
    )
    try:
        since, until = query.where().since, query.where().until
    except ValueError:
        return Filters(query.service, query.action, query.actor, "", "", 1), (
            "日期格式应为“年-月-日”,例如 2024-09-02。"
        )
    if since and until and since >= until:
        return query, "起始日期不能晚于截止日期。"
    return query, None


@router.get("/audit")
async def audit(
    session: SessionDep,
    user: UserDep,
    svc: ServiceDep,
    service: str | None = None,
    action: str | None = None,
    actor: str | None = None,
    day_from: DayFrom = None,
    day_to: DayTo = None,
    page: str | None = None,
) -> HTMLResponse:
    """The audit trail of the three services, newest first (office only)."""
    if not user.principal.is_office():
        return render("error.html.j2", status=403, user=user, message=OFFICE_ONLY)
    query, error = _query(service, action, actor, day_from, day_to, page)
    rows: list[Row] = []
    total = 0
    unavailable: list[str] = []
    refused = False
    too_far = False
    if error is None:
        where = query.where()
        offset = (query.page - 1) * PER_PAGE
        wanted = query.services()
        merged = len(wanted) > 1
        if merged and offset + PER_PAGE > MERGED_LIMIT:
            too_far = True
        else:
            found: list[Row] = []
            for name in wanted:
                limit, skip = (offset + PER_PAGE, 0) if merged else (PER_PAGE, offset)
                try:
                    entries, count = await _entries(session, svc, user, name, where, limit, skip)
                except Unanswered as exc:
                    if exc.refused:
                        refused = True
                    else:
                        unavailable.append(SERVICES[name])
                    continue
                total += count
                settings = svc.settings
                found += [
                    Row(
                        name,
                        e,
                        trace_link(settings.trace_ui_url, settings.trace_query_url, e.trace_id),
                    )
                    for e in entries
                ]
            found.sort(key=lambda r: (r.entry.at, r.entry.id), reverse=True)
            rows = found[offset : offset + PER_PAGE] if merged else found
    pages = max(1, math.ceil(total / PER_PAGE))
    return render(
        "audit.html.j2",
        status=422 if error else 200,
        user=user,
        plan_slug=None,
        q=query,
        rows=rows,
        total=total,
        pages=pages,
        error=error or ("筛选条件无效,请检查操作类别和操作客户端。" if refused else None),
        unavailable=unavailable,
        too_far=too_far,
        services=SERVICES,
        actions=ACTIONS,
        roles=ROLES,
        merged_limit=MERGED_LIMIT,
    )


@router.get("/audit.xlsx", response_model=None)
async def audit_export(
    session: SessionDep,
    user: UserDep,
    svc: ServiceDep,
    service: str | None = None,
    action: str | None = None,
    actor: str | None = None,
    day_from: DayFrom = None,
    day_to: DayTo = None,
) -> Response:
    """One service's entries that the filters keep, as the service's `.xlsx` export."""
    if not user.principal.is_office():
        return render("error.html.j2", status=403, user=user, message=OFFICE_ONLY)
    query, error = _query(service, action, actor, day_from, day_to, None)
    if error is None and not query.service:
        error = "请先选择一个服务,再导出该服务的审计日志。"
    if error is not None:
        return render("error.html.j2", status=422, user=user, message=error)
    where = query.where()
    name = f"audit-{query.service}.xlsx"
    if query.service == "progress":
        rows, _ = await audit_page(session, AuditLog, where, XLSX_MAX_ROWS, 0)
        body = audit_xlsx([entry_out(r) for r in rows])
    else:
        url = f"{_base_url(svc, query.service).rstrip('/')}/v1/audit.xlsx"
        params = {k: v for k, v in _params(where, 1, 0).items() if k not in ("limit", "offset")}
        try:
            response = await svc.board_http.get(
                url, params=params, headers={"Authorization": f"Bearer {user.token}"}
            )
        except httpx.HTTPError as exc:
            log.warning("board: audit export of %s unavailable: %r", query.service, exc)
            response = None
        if response is None or response.status_code != 200:
            message = f"{SERVICES[query.service]}暂不可用,无法导出审计日志,请稍后再试。"
            return render("error.html.j2", status=502, user=user, message=message)
        body = response.content
    return Response(
        body,
        media_type=XLSX_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )

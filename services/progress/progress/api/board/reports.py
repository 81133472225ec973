"""The reporting form (填报) on the board: agency staff report on their own work points.

`GET /board/work-points/{plan}/{code}/report` shows the form with the work point's colour,
reasons, pace line and last reports; `POST` to the same path takes it (multipart, with evidence
files). The form builds the API's request model (`StatusReportIn`) and goes through the same
use case as `POST /v1/events` (`use_cases.ingestion`), with the same rate limit and the same
counter, so validation, idempotency and tracing are the API's: the form carries its own
`event_id` and `occurred_at` from when it was shown, so submitting it twice is one report.
What is refused is said in Chinese next to its field, with the API's error code.

Evidence files are checked by content and kept by progress (`adapters.evidence_files`); they
become links to `GET /board/evidence/{agency}/{file}` in the report, served to the office and
to the uploading agency's staff only. The person who filed the report (the token's `person`)
is recorded with it as `reported_by`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from duban_shared.api import DATABASE_ERRORS, ApiError
from duban_shared.inputs import WorkPointCode
from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from progress.adapters.evidence_files import (
    ALLOWED_WORDS,
    EvidenceRefused,
    EvidenceStore,
    check,
    media_type,
)
from progress.api.board import words
from progress.api.board.render import CSRF_MESSAGE, refusal, render
from progress.api.board.session import BoardUser, UserDep
from progress.api.board.timeline import progress_items
from progress.api.deps import ServiceDep, SessionDep, service
from progress.api.events import ACCEPTED, REJECTED, REPLAYED, count_outcome, take_tokens
from progress.api.schemas import ProgressOut, StatusReportIn, progress_out
from progress.service import ProgressService
from progress.settings import ProgressSettings
from progress.store import queries
from progress.use_cases import reading

router = APIRouter(prefix="/board", include_in_schema=False)

REPORT_FORM_PATH = r"/board/work-points/[^/]+/[^/]+/report"
"""The form's path as a pattern: its body may be larger (the files; see main.py)."""
LAST_REPORTS = 5
MAX_FIELDS = 60
OFFICE_DOES_NOT_REPORT = "协调部门不填报进展:进展由责任单位的工作人员填报。"

FIELD_WORDS = {
    "status": "请选择本单位的工作状态。",
    "percent": "进度请填写0到100之间的整数。",
    "note": "情况说明不超过2000字,且不能包含控制字符。",
    "evidence_links": "佐证链接须以 http:// 或 https:// 开头,每行一个;链接和文件合计最多10个。",
    "kpi": "请填写数字,例如 8.2。",
}
GENERAL_WORDS = {
    "broker_unavailable": "报送暂时无法保存(消息服务无应答)。请稍后再次提交本表单,不会重复报送。",
    "database_unavailable": "报送暂时无法保存(数据库无应答)。请稍后再次提交本表单,不会重复报送。",
    "rate_limited": "提交过于频繁,请稍候片刻再提交本表单。",
    "event_id_reused": "这份表单已经提交过,内容与本次不同。已为您换成新表单,请核对后再提交。",
    "unknown_metric": "指标与该项工作的量化指标不符,请刷新页面后重新填写。",
    "occurred_at_in_future": "填报时间晚于服务器时间,请刷新页面后重新填写。",
    "occurred_at_before_plan": "填报时间早于计划开始时间太久,请刷新页面后重新填写。",
    "occurred_at_out_of_range": "填报时间不在允许的范围内,请刷新页面后重新填写。",
    "csrf_failed": CSRF_MESSAGE,
    "invalid_form": "表单无法读取(字段或文件过多),请刷新页面后重新填写。",
}


@dataclass
class Filled:
    """What the form says and what is wrong with it: field -> (message, code)."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, tuple[str, str]] = field(default_factory=dict)
    general: tuple[str, str] | None = None  # (message, code) said at the top


def too_large_page(settings: ProgressSettings) -> Callable[[ApiError], Response]:
    """The page a form too large for its route gets (413 `body_too_large`), in Chinese."""
    each = f"{settings.evidence_max_bytes / 1048576:g}"

    def page(error: ApiError) -> Response:
        return render(
            "error.html.j2",
            status=error.status,
            user=None,
            plan_slug=None,
            message=f"提交的内容过大:每份报送最多{settings.evidence_max_files}个文件,"
            f"每个不超过 {each} MiB。请返回上一页,压缩文件或改为填写链接后再提交。",
            code=error.code,
        )

    return page


def evidence_store(svc: ProgressService) -> EvidenceStore:
    """Where evidence files are kept (DUBAN_PROGRESS_EVIDENCE_DIR)."""
    return EvidenceStore(Path(svc.settings.evidence_dir))


def _office_refusal(user: BoardUser, plan_slug: str) -> HTMLResponse:
    return render(
        "error.html.j2",
        status=403,
        user=user,
        plan_slug=plan_slug,
        message=OFFICE_DOES_NOT_REPORT,
        code="office_does_not_report",
    )


async def _form_page(
    request: Request,
    session: AsyncSession,
    user: BoardUser,
    plan_slug: str,
    code: str,
    filled: Filled,
    status: int = 200,
) -> HTMLResponse:
    """The form (refilled with `filled`), with the work point's colour, pace and last reports."""
    svc = service(request)
    try:
        progress = progress_out(*await reading.work_point(session, user.principal, plan_slug, code))
    except ApiError as exc:
        return refusal(user, exc, plan_slug)
    entries, _ = await queries.timeline(session, progress.work_point_id, 50, 0)
    names = {str(a.agency_id): a.name for a in progress.agencies}
    last = [i for i in progress_items(entries, names) if i.kind == "report"][:LAST_REPORTS]
    values = dict(filled.values)
    values.setdefault("event_id", str(uuid.uuid4()))
    values.setdefault("occurred_at", svc.clock.now().isoformat())
    own = next((a for a in progress.agencies if a.agency_id == user.principal.agency_id), None)
    if own is not None and "status" not in values:  # start from the agency's latest report
        values["status"] = own.status or ""
        values["percent"] = "" if own.percent is None else str(own.percent)
        for index, target in enumerate(progress.targets):
            if target.metric in own.kpis:
                values[f"kpi-{index}"] = f"{own.kpis[target.metric]:g}"
    return render(
        "report.html.j2",
        status=status,
        user=user,
        plan_slug=plan_slug,
        p=progress,
        colour=words.colour_key(progress.level, progress.closure),
        last=last,
        values=values,
        errors=filled.errors,
        general=filled.general,
        statuses=words.STATUSES,
        max_files=svc.settings.evidence_max_files,
        max_mib=f"{svc.settings.evidence_max_bytes / 1048576:g}",
        allowed=ALLOWED_WORDS,
    )


@router.get("/work-points/{plan_slug}/{code}/report")
async def report_form(
    plan_slug: str, code: WorkPointCode, request: Request, session: SessionDep, user: UserDep
) -> HTMLResponse:
    """The reporting form of a work point (agency staff of a responsible agency)."""
    if user.principal.agency_id is None:
        return _office_refusal(user, plan_slug)
    return await _form_page(request, session, user, plan_slug, code, Filled())


async def _read_form(request: Request, max_files: int) -> tuple[dict[str, str], list[UploadFile]]:
    form = await request.form(max_files=max_files + 1, max_fields=MAX_FIELDS)
    values: dict[str, str] = {}
    files: list[UploadFile] = []
    for name, value in form.multi_items():
        if isinstance(value, str):
            values.setdefault(name, value)
        elif name == "evidence_files" and value.filename:
            files.append(value)
    return values, files


def _kpis(progress: ProgressOut, filled: Filled) -> dict[str, float]:
    kpis: dict[str, float] = {}
    for index, target in enumerate(progress.targets):
        raw = filled.values.get(f"kpi-{index}", "").strip().replace(",", "")
        if not raw:
            continue
        try:
            kpis[target.metric] = float(raw)
        except ValueError:
            filled.errors[f"kpi-{index}"] = (FIELD_WORDS["kpi"], "invalid_request")
    return kpis


async def _evidence_files(
    svc: ProgressService, agency_id: uuid.UUID, files: list[UploadFile], filled: Filled
) -> list[tuple[bytes, str]]:
    """The uploaded files checked: (content, suffix) each; what is wrong goes to `filled`."""
    settings = svc.settings
    if len(files) > settings.evidence_max_files:
        filled.errors["evidence_files"] = (
            f"每次最多上传{settings.evidence_max_files}个文件;更多材料请填写链接。",
            "too_many_evidence_files",
        )
        return []
    checked: list[tuple[bytes, str]] = []
    problems: list[str] = []
    code = ""
    for upload in files:
        content = await upload.read(settings.evidence_max_bytes + 1)
        try:
            checked.append(
                (content, check(content, upload.filename or "", settings.evidence_max_bytes))
            )
        except EvidenceRefused as refused:
            problems.append(refused.message)
            code = refused.code
    if problems:
        filled.errors["evidence_files"] = (" ".join(problems), code)
    return checked


def _validation_errors(exc: ValidationError, filled: Filled, kpi_index: dict[str, int]) -> None:
    for error in exc.errors():
        loc = error["loc"]
        name = str(loc[0]) if loc else ""
        if name == "kpis":
            metric = str(loc[1]) if len(loc) > 1 else ""
            key = f"kpi-{kpi_index.get(metric, 0)}"
            filled.errors.setdefault(key, (FIELD_WORDS["kpi"], "invalid_request"))
        elif name == "evidence":
            filled.errors.setdefault(
                "evidence_links", (FIELD_WORDS["evidence_links"], "invalid_request")
            )
        elif name in FIELD_WORDS:
            filled.errors.setdefault(name, (FIELD_WORDS[name], "invalid_request"))
        else:
            filled.general = (GENERAL_WORDS["invalid_form"], "invalid_request")


@router.post("/work-points/{plan_slug}/{code}/report")
async def submit_report(
    plan_slug: str,
    code: WorkPointCode,
    request: Request,
    session: SessionDep,
    user: UserDep,
    svc: ServiceDep,
) -> Response:
    """Take a report from the form: through the API's model and ingestion use case."""
    principal = user.principal
    if principal.agency_id is None:
        return _office_refusal(user, plan_slug)
    agency_id = principal.agency_id
    try:
        values, files = await _read_form(request, svc.settings.evidence_max_files)
    except (MultiPartException, StarletteHTTPException, UnicodeDecodeError):
        filled = Filled(general=(GENERAL_WORDS["invalid_form"], "invalid_form"))
        return await _form_page(request, session, user, plan_slug, code, filled, 400)
    filled = Filled(values=values)
    if not user.csrf_ok(values.get("csrf")):
        return render(
            "error.html.j2",
            status=403,
            user=user,
            plan_slug=plan_slug,
            message=CSRF_MESSAGE,
            code="csrf_failed",
        )
    try:
        progress = progress_out(*await reading.work_point(session, principal, plan_slug, code))
    except ApiError as exc:
        return refusal(user, exc, plan_slug)
    kpis = _kpis(progress, filled)
    percent = values.get("percent", "").strip()
    if percent and not re.fullmatch(r"[0-9]{1,3}", percent):
        filled.errors["percent"] = (FIELD_WORDS["percent"], "invalid_request")
    links = [line.strip() for line in values.get("evidence_links", "").splitlines() if line.strip()]
    checked = await _evidence_files(svc, agency_id, files, filled)
    if filled.errors:
        count_outcome(request, REJECTED, next(iter(filled.errors.values()))[1])
        return await _form_page(request, session, user, plan_slug, code, filled, 422)
    base = (svc.settings.public_url or str(request.base_url)).rstrip("/")
    store = evidence_store(svc)
    urls = [
        f"{base}/board/evidence/{agency_id}/{store.keep(agency_id, content, suffix)}"
        for content, suffix in checked
    ]
    data: dict[str, Any] = {
        "event_id": values.get("event_id", ""),
        "work_point_id": progress.work_point_id,
        "status": values.get("status", ""),
        "percent": int(percent) if percent else None,
        "kpis": kpis,
        "note": values.get("note", "").strip() or None,
        "evidence": links + urls,
        "occurred_at": values.get("occurred_at", ""),
    }
    try:
        report = StatusReportIn.model_validate(data)
    except ValidationError as exc:
        _validation_errors(exc, filled, {t.metric: i for i, t in enumerate(progress.targets)})
        count_outcome(request, REJECTED, "invalid_request")
        return await _form_page(request, session, user, plan_slug, code, filled, 422)
    try:
        take_tokens(svc, principal.client_id, 1)
        receipt, replayed = await svc.ingestion.accept(report, agency_id, principal.person)
    except ApiError as exc:
        count_outcome(request, REJECTED, exc.code)
        if exc.status in (403, 404):
            return refusal(user, exc, plan_slug)
        if exc.code == "event_id_reused":  # a new form for what is a new report
            filled.values.pop("event_id", None)
            filled.values.pop("occurred_at", None)
        filled.general = (GENERAL_WORDS.get(exc.code, exc.message), exc.code)
        return await _form_page(request, session, user, plan_slug, code, filled, exc.status)
    except DATABASE_ERRORS:
        count_outcome(request, REJECTED, "database_unavailable")
        filled.general = (GENERAL_WORDS["database_unavailable"], "database_unavailable")
        return await _form_page(request, session, user, plan_slug, code, filled, 503)
    count_outcome(request, REPLAYED if replayed else ACCEPTED)
    return RedirectResponse(
        f"/board/work-points/{plan_slug}/{code}?reported={receipt.event_id}#timeline",
        status_code=303,
    )


@router.get("/evidence/{agency_id}/{name}")
async def evidence_file(agency_id: str, name: str, user: UserDep, svc: ServiceDep) -> Response:
    """An evidence file: to the office and to the staff of the agency that uploaded it."""
    try:
        owner = uuid.UUID(agency_id)
    except ValueError:
        owner = None
    principal = user.principal
    if owner is not None and not principal.is_office() and principal.agency_id != owner:
        return refusal(
            user,
            ApiError(403, "evidence_not_yours", "not your agency's"),
            None,
            "佐证材料仅向协调部门和上传单位的工作人员开放。",
        )
    path = evidence_store(svc).path(owner, name) if owner is not None else None
    if path is None:
        return refusal(user, ApiError(404, "unknown_evidence", name), None, "没有找到该佐证材料。")
    suffix = name.rpartition(".")[2]
    inline = suffix in ("pdf", "png", "jpg", "webp")
    return FileResponse(
        path,
        media_type=media_type(name),
        content_disposition_type="inline" if inline else "attachment",
        filename=name,
        headers={
            "Cache-Control": "private, max-age=300",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )

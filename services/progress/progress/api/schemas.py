"""The request and response models of progress's HTTP API."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from duban_shared.events import ReportStatus, ReportTime, WorkPointCodeField, WorkPointId
from duban_shared.inputs import Line, Number, StrictInt, Text, text_only
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from progress.domain.chain import Verification
from progress.domain.counts import Counts
from progress.domain.scorecards import AcrossPlans, Scorecard
from progress.store.models import AgencyProgress, WorkPointState, WorkPointView

# ---------------------------------------------------------------- ingestion

EXAMPLE: dict[str, Any] = {  # valid, and accepted on the 2024 plan (tests/test_api_contract.py)
    "event_id": "5f0c6a4e-8f5e-4d1c-9d7a-0b1c2d3e4f50",
    "work_point_id": "zhaoqing-digital-2024/35",
    "status": "at_risk",
    "percent": 40,
    "kpis": {"林分优化": 5.2},
    "note": "林分优化用地审批未完成",
    "evidence": ["https://lyj.zhaoqing.gov.cn/reports/2024-09.pdf"],
    "occurred_at": "2024-09-02T09:30:00+08:00",
}


HttpEvidenceUrl = Annotated[
    str,
    Field(
        max_length=500,
        pattern=r"^https?://[^\s\x00-\x1F\x7F-\x9F]+$",
        description="A link to evidence: a document, a photo, a system page (http or https).",
    ),
]
"""An evidence link as ingestion takes it: also no control characters (the event's own
pattern only refuses white space)."""


class StatusReportIn(BaseModel):
    """A status report as an agency system posts it; the agency comes from the token."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE]})

    event_id: uuid.UUID = Field(description="Your idempotency key: resend with the same id.")
    work_point_id: WorkPointId
    status: ReportStatus
    percent: StrictInt | None = Field(default=None, ge=0, le=100)
    kpis: dict[Annotated[Line, Field(min_length=1, max_length=100)], Number] = Field(
        default_factory=dict,
        max_length=20,
        description="KPI actuals, metric -> value; metrics are the work point's target metrics "
        "(GET the registry's work point to see them).",
    )
    note: Text | None = Field(default=None, max_length=2000)
    evidence: list[HttpEvidenceUrl] = Field(default_factory=list, max_length=10)
    occurred_at: Annotated[ReportTime, BeforeValidator(text_only)]

    def body_digest(self, agency_id: uuid.UUID) -> str:
        """SHA-256 of the agency and the report, with occurred_at in UTC (one spelling per
        instant): the fingerprint a replay must match."""
        body = self.model_dump(mode="json")
        for later in ("kpis", "evidence"):  # fields added later count only when given, so
            if not body[later]:  # replays of reports accepted before them still match
                del body[later]
        body["occurred_at"] = self.occurred_at.astimezone(UTC).isoformat()
        body["agency_id"] = str(agency_id)
        canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class Accepted(BaseModel):
    """The broker has the event; progress applies it shortly."""

    event_id: uuid.UUID
    status: Literal["accepted"] = "accepted"
    partition: int
    offset: int
    late: bool = Field(
        default=False, description="Accepted, but marked late: it describes a moment long past."
    )


class ItemError(BaseModel):
    """Why one report of a batch was not accepted."""

    code: str
    message: str
    details: Any | None = None


class BatchItemOut(BaseModel):
    """The answer for one report of a batch, in the order sent."""

    index: int
    event_id: uuid.UUID | None
    status: Literal["accepted", "rejected"]
    http_status: int = Field(description="What POST /v1/events would have answered.")
    partition: int | None = None
    offset: int | None = None
    late: bool = False
    error: ItemError | None = None


class BatchOut(BaseModel):
    """Per-report answers: resend only the rejected ones that a retry can help (5xx, 429)."""

    accepted: int
    rejected: int
    results: list[BatchItemOut]


# ---------------------------------------------------------------- progress


class TargetProgressOut(BaseModel):
    """A quantitative target and how far it has come."""

    metric: str
    target: float
    unit: str
    comparator: str
    actual: float | None
    achieved_pct: float | None = Field(description="actual / target, in percent (not for <=).")


class AgencyReportOut(BaseModel):
    """One responsible agency's latest report."""

    agency_id: uuid.UUID
    name: str
    role: str
    status: str | None
    percent: int | None
    kpis: dict[str, float]
    last_report_at: datetime | None


class ProgressOut(BaseModel):
    """Progress of one work point now."""

    work_point_id: str
    code: WorkPointCodeField
    number: int = Field(description="The work point's ordinal in its plan (1..N), for ordering.")
    section: int
    title: str
    level: str = Field(description="green, blue (due soon), yellow (behind), red (stalled)")
    reasons: list[str]
    status: str | None
    percent: int | None
    expected_percent: float | None = Field(description="Where the straight line is today.")
    targets: list[TargetProgressOut]
    due_on: date | None
    closure: str | None = Field(description="in_review or closed; null while in progress")
    closure_requested_at: datetime | None
    closed_at: datetime | None
    stalled: bool = Field(description="An episode is open (any colour but green).")
    stall_reason: str | None
    stall_episode_id: uuid.UUID | None
    stalled_since: datetime | None
    last_lead_report_at: datetime | None
    next_check_at: datetime | None
    calendar: Literal["official", "provisional"] = Field(
        description="The working-day calendar the current judgement counted on: `provisional` "
        "when it used a year whose official holiday arrangement is not installed (weekends and "
        "statutory holidays, no 调休); it is judged again once the arrangement is added."
    )
    provisional_years: list[int] = Field(
        description="The years counted on the provisional calendar (empty when official)."
    )
    agencies: list[AgencyReportOut]


def progress_out(
    view: WorkPointView, state: WorkPointState, latest: dict[uuid.UUID, AgencyProgress]
) -> ProgressOut:
    """A work point's progress from its rows."""
    targets = []
    for t in view.targets:
        actual = state.kpis.get(t["metric"])
        paced = t["comparator"] != "<=" and t["value"]
        targets.append(
            TargetProgressOut(
                metric=t["metric"],
                target=t["value"],
                unit=t["unit"],
                comparator=t["comparator"],
                actual=actual,
                achieved_pct=round(100 * actual / t["value"], 1)
                if actual is not None and paced
                else None,
            )
        )
    agencies = []
    for r in view.responsibilities:
        report = latest.get(uuid.UUID(r["agency_id"]))
        agencies.append(
            AgencyReportOut(
                agency_id=r["agency_id"],
                name=r["name"],
                role=r["role"],
                status=report.status if report else None,
                percent=report.percent if report else None,
                kpis=report.kpis if report else {},
                last_report_at=report.last_report_at if report else None,
            )
        )
    return ProgressOut(
        work_point_id=view.id,
        code=view.code,
        number=view.number,
        section=view.section,
        title=view.title,
        level=state.level,
        reasons=state.reasons,
        status=state.status,
        percent=state.percent,
        expected_percent=(
            round(state.expected_percent, 1) if state.expected_percent is not None else None
        ),
        targets=targets,
        due_on=view.due_on,
        closure=state.closure,
        closure_requested_at=state.closure_requested_at,
        closed_at=state.closed_at,
        stalled=state.stall_episode_id is not None,
        stall_reason=state.stall_reason,
        stall_episode_id=state.stall_episode_id,
        stalled_since=state.stalled_since,
        last_lead_report_at=state.last_lead_report_at,
        next_check_at=state.next_check_at,
        calendar="provisional" if state.provisional_years else "official",
        provisional_years=list(state.provisional_years or []),
        agencies=agencies,
    )


class CountsOut(BaseModel):
    """Work points by colour; those in review or closed are counted apart."""

    work_points: int
    by_level: dict[str, int]
    by_reason: dict[str, int]
    in_review: int
    closed: int


class SectionCountsOut(CountsOut):
    """Counts of one section of the plan."""

    section: int


class PlanSummaryOut(BaseModel):
    """A plan at a glance."""

    plan_slug: str
    scope: Literal["all", "own"] = Field(description="own: an agency sees its work points only")
    totals: CountsOut
    sections: list[SectionCountsOut]


def counts_of(counts: Counts) -> dict[str, Any]:
    """The fields of CountsOut."""
    return counts.as_dict()


class ScorecardOut(BaseModel):
    """How an agency does on the work points it is responsible for."""

    agency_id: uuid.UUID
    name: str
    lead_of: int
    co_of: int
    reports: int = Field(description="In-order reports on these work points.")
    reports_on_time: int = Field(description="Within the report period after the previous one.")
    on_time_rate: float | None
    late_reports: int = Field(description="Reports marked late: sent long after the fact.")
    average_delay_working_days: float | None = Field(
        description="Working days past the report period, averaged over its reports."
    )
    open_stalls: dict[str, int] = Field(description="Open episodes on work points it leads.")
    silent_now: int


def scorecard_out(card: Scorecard) -> ScorecardOut:
    """An agency's scorecard as the API answers it."""
    return ScorecardOut(
        agency_id=card.agency_id,
        name=card.name,
        lead_of=card.lead_of,
        co_of=card.co_of,
        reports=card.reports,
        reports_on_time=card.reports_on_time,
        on_time_rate=round(card.on_time_rate, 3) if card.on_time_rate is not None else None,
        late_reports=card.late_reports,
        average_delay_working_days=card.average_delay_working_days,
        open_stalls=card.open_stalls,
        silent_now=card.silent_now,
    )


class PlanScorecardOut(ScorecardOut):
    """An agency's scorecard on one plan (as `/v1/plans/{plan_slug}/agencies/{id}/scorecard`
    answers it)."""

    plan_slug: str
    plan_title: str = Field(description="Empty until the registry's snapshots named it.")


class AcrossPlansOut(BaseModel):
    """An agency's scorecards on every tracked plan it is responsible in, and its totals."""

    agency_id: uuid.UUID
    name: str
    plans: list[PlanScorecardOut] = Field(description="One per plan, by plan slug.")
    totals: ScorecardOut = Field(
        description="Over all these work points at once: each count is the sum of the plans' "
        "(an agency shared by plans counts once here); the on-time rate and the average delay "
        "are over all its reports."
    )


def across_plans_out(row: AcrossPlans) -> AcrossPlansOut:
    """An agency's scorecards across plans as the API answers them."""
    return AcrossPlansOut(
        agency_id=row.total.agency_id,
        name=row.total.name,
        plans=[
            PlanScorecardOut(
                plan_slug=p.plan_slug,
                plan_title=p.plan_title,
                **scorecard_out(p.card).model_dump(),
            )
            for p in row.plans
        ],
        totals=scorecard_out(row.total),
    )


class TimelineEntryOut(BaseModel):
    """A report, a transition or a closure decision, at the time progress recorded it."""

    at: datetime
    kind: Literal["report", "transition", "closure_decision"]
    detail: dict[str, Any]


class ApproveIn(BaseModel):
    """Approve a closure request; the note reaches the lead agency."""

    note: Text | None = Field(default=None, max_length=2000)


class RejectIn(BaseModel):
    """Reject a closure request: say what is missing."""

    reason: Text = Field(min_length=2, max_length=2000, examples=["缺少验收材料,请补充后再报办结"])


class BrokenRowOut(BaseModel):
    """The first row where the report history does not hold."""

    work_point_id: str
    chain_seq: int
    event_id: str
    problem: str = Field(description="content_changed, link_broken or sequence_gap")


class VerificationOut(BaseModel):
    """Whether the hash-chained report history is intact."""

    ok: bool
    rows_checked: int
    first_broken: BrokenRowOut | None


def verification_out(result: Verification) -> VerificationOut:
    """A verification as the API answers it."""
    broken = result.first_broken
    return VerificationOut(
        ok=result.ok,
        rows_checked=result.rows_checked,
        first_broken=BrokenRowOut(**vars(broken)) if broken else None,
    )


# ---------------------------------------------------------------- supervision notices


NoticeState = Literal["issued", "replied", "overdue", "closed", "withdrawn"]


class NoticeIn(BaseModel):
    """A supervision notice (督办单) the office issues on a work point."""

    model_config = ConfigDict(extra="forbid")

    reason: Text = Field(
        min_length=2, max_length=2000, examples=["连续两个报送周期未报送进展,且已逾期"]
    )
    required_action: Text = Field(
        min_length=2, max_length=2000, examples=["说明滞后原因,提出整改措施和完成时限"]
    )
    reply_within_working_days: StrictInt = Field(
        ge=1, le=30, description="Working days (official calendar) the lead agency has to reply."
    )


class NoticeReplyIn(BaseModel):
    """The lead agency's reply (反馈) to a notice."""

    model_config = ConfigDict(extra="forbid")

    text: Text = Field(min_length=2, max_length=4000, examples=["已完成用地审批,预计月底完工"])
    evidence_url: HttpEvidenceUrl | None = None


class NoticeNoteIn(BaseModel):
    """The office's note when closing or withdrawing a notice."""

    model_config = ConfigDict(extra="forbid")

    note: Text | None = Field(default=None, max_length=2000)


class NoticeOut(BaseModel):
    """A supervision notice and its reply, if any."""

    id: uuid.UUID
    number: str = Field(description="督办〔2024〕7号: the year of issue and its sequence.")
    status: NoticeState
    work_point_id: WorkPointId
    work_point_code: WorkPointCodeField
    work_point_title: str
    plan_slug: str
    lead_agencies: list[dict[str, str]]
    reason: str
    required_action: str
    reply_within_working_days: int
    issued_at: datetime
    issued_by: str
    reply_due_on: date = Field(description="The last day a reply is on time (a working day).")
    reply_due: datetime = Field(description="When the reply becomes late (the end of that day).")
    reply_text: str | None
    evidence_url: str | None
    replied_at: datetime | None
    replied_by: str | None


class NoticeHistoryOut(BaseModel):
    """One state change of a notice."""

    status: NoticeState
    by: str = Field(description="The client that acted, or `sweeper` for `overdue`.")
    at: datetime
    note: str | None


class NoticeDetailOut(NoticeOut):
    """A notice with every state change, oldest first."""

    history: list[NoticeHistoryOut]


def notice_out(notice: Any) -> NoticeOut:
    """The API form of a stored notice."""
    return NoticeOut(**_notice_fields(notice))


def _notice_fields(notice: Any) -> dict[str, Any]:
    return {
        "id": notice.id,
        "number": notice.number,
        "status": notice.status,
        "work_point_id": notice.work_point_id,
        "work_point_code": notice.code,
        "work_point_title": notice.title,
        "plan_slug": notice.plan_slug,
        "lead_agencies": [
            {"agency_id": a["agency_id"], "name": a["name"]} for a in notice.lead_agencies
        ],
        "reason": notice.reason,
        "required_action": notice.required_action,
        "reply_within_working_days": notice.reply_within_working_days,
        "issued_at": notice.issued_at,
        "issued_by": notice.issued_by,
        "reply_due_on": notice.reply_due_on,
        "reply_due": notice.reply_due_at,
        "reply_text": notice.reply_text,
        "evidence_url": notice.evidence_url,
        "replied_at": notice.replied_at,
        "replied_by": notice.replied_by,
    }


def notice_detail_out(notice: Any, history: list[Any]) -> NoticeDetailOut:
    """A notice with its history."""
    return NoticeDetailOut(
        **_notice_fields(notice),
        history=[
            NoticeHistoryOut(status=h.status, by=h.actor, at=h.at, note=h.note) for h in history
        ],
    )

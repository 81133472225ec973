"""Circulars (通报): what a plan's circular says at a moment, and when circulars are due.

Pure rules over what the API reads (the summary's counts, the scorecards, the work points'
verdicts), so a circular's numbers are the API's numbers at the same clock:

- **红榜 (red list):** agencies leading at least one red work point (an open red stall, which an
  overdue work point always is), ranked by red work points, then by days overdue (summed over
  the overdue work points they lead), most first, then by name.
- **黄榜 (yellow list):** agencies not on the red list leading at least one yellow work point
  (behind pace or flat), ranked by yellow work points, most first, then by the lower on-time
  rate, then by name.
- **表扬榜 (honour list):** agencies leading at least one work point, none of them in an open
  stall (all green), with an on-time reporting rate of at least 90 %, best rate first, then by
  name.

Periods: a weekly circular's period is the ISO week (`2024-W36`), a monthly one's the month
(`2024-09`). A scheduled circular is due at 09:00 (Asia/Shanghai, the plan's time zone) on the
first working day of its period, by the working-day calendar.

Acknowledgement times: each agency's row counts the alerts fired to it in the period, those
acknowledged, the median hours to acknowledge (wall clock) and the alerts still unacknowledged,
by the rule of `progress.domain.acks` (printed in the document as `ACK_RULE_TEXT`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from duban_shared.events import Level, StallReason
from duban_shared.workdays import SHANGHAI, WorkingCalendar, local_day

from progress.domain.acks import ACK_RULE_TEXT, NO_ALERTS, AlertFacts, figures_of

HONOUR_ON_TIME_RATE = 0.9
"""The least on-time reporting rate of an agency on the honour list."""

ISSUE_AT = time(9, 0)
"""A scheduled circular is due at this time (Asia/Shanghai) on its first working day."""

RULES_TEXT = (
    "红榜：牵头事项中有红色（停滞，含超过完成时限）事项的单位，按红色事项数从多到少排列，"
    "数目相同的按逾期天数合计从多到少排列。",
    "黄榜：未列入红榜、牵头事项中有黄色（滞后）事项的单位，按黄色事项数从多到少排列，"
    "数目相同的，按时报送率低的在前。",
    f"表扬榜：牵头事项均为绿色（无停滞）且按时报送率不低于{HONOUR_ON_TIME_RATE:.0%}的单位，"
    "按时报送率高的在前。",
)
"""The ranking rules as the document prints them (docs/architecture.md, Circulars)."""


class Kind(StrEnum):
    """How often a circular is published."""

    WEEKLY = "weekly"
    MONTHLY = "monthly"


KIND_WORDS = {Kind.WEEKLY: "周", Kind.MONTHLY: "月"}


def period_key(kind: Kind, day: date) -> str:
    """The period a day falls in: `2024-W36` (ISO week) or `2024-09` (month)."""
    if kind is Kind.WEEKLY:
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{day.year}-{day.month:02d}"


def period_days(kind: Kind, day: date) -> tuple[date, date]:
    """The first and last day of the period a day falls in."""
    if kind is Kind.WEEKLY:
        first = day - timedelta(days=day.weekday())
        return first, first + timedelta(days=6)
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)


def period_start(kind: Kind, day: date) -> datetime:
    """The first moment of the period a day falls in: its first day, 00:00 Asia/Shanghai."""
    return datetime.combine(period_days(kind, day)[0], time(0, 0), tzinfo=SHANGHAI)


def scheduled_moment(kind: Kind, day: date, calendar: WorkingCalendar) -> datetime | None:
    """When the scheduled circular of the period holding `day` is due: 09:00 on the period's
    first working day; None when the period has no working day."""
    first, last = period_days(kind, day)
    current = first
    while current <= last:
        if calendar.is_working_day(current):
            return datetime.combine(current, ISSUE_AT, tzinfo=SHANGHAI)
        current += timedelta(days=1)
    return None


def due_periods(
    now: datetime, calendar: WorkingCalendar, kinds: Iterable[Kind]
) -> list[tuple[Kind, str]]:
    """The scheduled circulars due by `now`: for each kind, the current period once its
    moment has come (the caller skips a period that already has its scheduled circular)."""
    today = local_day(now)
    due = []
    for kind in kinds:
        moment = scheduled_moment(kind, today, calendar)
        if moment is not None and now >= moment:
            due.append((kind, period_key(kind, today)))
    return due


def document_number(prefix: str, year: int, seq: int) -> str:
    """The 文号 of the year's seq-th circular: 肇数督通〔2024〕3号."""
    return f"{prefix}〔{year}〕{seq}号"


def days_overdue(due_on: date | None, today: date) -> int:
    """Calendar days past a due date (0 when not past)."""
    if due_on is None or today <= due_on:
        return 0
    return (today - due_on).days


@dataclass(frozen=True)
class PointLine:
    """A work point as the circular reads it."""

    code: str
    title: str
    level: str
    reasons: list[str]
    closure: str | None
    due_on: date | None
    leads: list[str]
    lead_ids: list[uuid.UUID]
    days_overdue: int

    @property
    def colour(self) -> str:
        """Its colour key: its level, or `review` / `closed` for a work point in closure."""
        if self.closure == "closed":
            return "closed"
        if self.closure == "in_review":
            return "review"
        return self.level


@dataclass(frozen=True)
class CardLine:
    """An agency's scorecard figures as the circular uses them (from the API's scorecard)."""

    agency_id: uuid.UUID
    name: str
    lead_of: int
    reports: int
    reports_on_time: int
    on_time_rate: float | None
    open_stalls: Mapping[str, int]
    silent_now: int


@dataclass(frozen=True)
class AgencyRow:
    """One agency's line of the circular."""

    agency_id: str
    name: str
    lead_of: int
    reports: int
    reports_on_time: int
    on_time_rate: float | None
    stalled: int
    red: int
    yellow: int
    overdue: int
    days_overdue: int
    silent_now: int
    alerts_fired: int = 0
    alerts_acknowledged: int = 0
    median_ack_hours: float | None = None
    alerts_unacknowledged: int = 0


@dataclass(frozen=True)
class RedPoint:
    """A red work point with its reasons and days overdue."""

    code: str
    title: str
    leads: list[str]
    reasons: list[str]
    due_on: str | None
    days_overdue: int


@dataclass(frozen=True)
class Change:
    """A work point whose colour changed since the previous circular."""

    code: str
    title: str
    before: str
    after: str


@dataclass(frozen=True)
class Content:
    """Everything a circular says; stored as its summary JSON."""

    plan_slug: str
    plan_title: str
    kind: str
    period: str
    as_of: str
    totals: dict[str, Any]
    agencies: list[AgencyRow]
    red_list: list[str]
    yellow_list: list[str]
    honour_list: list[str]
    red_points: list[RedPoint]
    changes: list[Change]
    previous_number: str | None
    colours: dict[str, str] = field(default_factory=dict)
    rules: list[str] = field(default_factory=lambda: list(RULES_TEXT))
    alerts_since: str | None = None
    ack_rule: str = ACK_RULE_TEXT

    def to_json(self) -> dict[str, Any]:
        """As JSON-ready values."""
        return asdict(self)

    def agency(self, agency_id: str) -> AgencyRow:
        """One agency's row."""
        return next(row for row in self.agencies if row.agency_id == agency_id)


def agency_rows(
    cards: Sequence[CardLine],
    points: Sequence[PointLine],
    alerts: Sequence[AlertFacts] = (),
    since: datetime | None = None,
    as_of: datetime | None = None,
) -> list[AgencyRow]:
    """Each responsible agency's row, in the scorecards' order (most red first), with its
    acknowledgement figures for the alerts fired from `since` to `as_of`."""
    rows = []
    for card in cards:
        led = [p for p in points if card.agency_id in p.lead_ids and p.closure is None]
        overdue = [p for p in led if StallReason.OVERDUE.value in p.reasons]
        acks = (
            figures_of(card.agency_id, alerts, since, as_of)
            if since is not None and as_of is not None
            else NO_ALERTS
        )
        rows.append(
            AgencyRow(
                agency_id=str(card.agency_id),
                name=card.name,
                lead_of=card.lead_of,
                reports=card.reports,
                reports_on_time=card.reports_on_time,
                on_time_rate=card.on_time_rate,
                stalled=sum(card.open_stalls.values()),
                red=card.open_stalls.get(Level.RED.value, 0),
                yellow=card.open_stalls.get(Level.YELLOW.value, 0),
                overdue=len(overdue),
                days_overdue=sum(p.days_overdue for p in overdue),
                silent_now=card.silent_now,
                alerts_fired=acks.alerts_fired,
                alerts_acknowledged=acks.alerts_acknowledged,
                median_ack_hours=acks.median_ack_hours,
                alerts_unacknowledged=acks.alerts_unacknowledged,
            )
        )
    return rows


def red_list(rows: Iterable[AgencyRow]) -> list[AgencyRow]:
    """The 红榜 (see the module docstring)."""
    return sorted((r for r in rows if r.red > 0), key=lambda r: (-r.red, -r.days_overdue, r.name))


def yellow_list(rows: Iterable[AgencyRow]) -> list[AgencyRow]:
    """The 黄榜: not on the red list, with yellow work points (see the module docstring)."""
    return sorted(
        (r for r in rows if r.red == 0 and r.yellow > 0),
        key=lambda r: (-r.yellow, r.on_time_rate if r.on_time_rate is not None else 0.0, r.name),
    )


def honour_list(rows: Iterable[AgencyRow]) -> list[AgencyRow]:
    """The 表扬榜: all led work points green, on-time rate at least HONOUR_ON_TIME_RATE."""
    return sorted(
        (
            r
            for r in rows
            if r.lead_of > 0
            and r.stalled == 0
            and r.on_time_rate is not None
            and r.on_time_rate >= HONOUR_ON_TIME_RATE
        ),
        key=lambda r: (-(r.on_time_rate or 0.0), r.name),
    )


def changes_since(previous: Mapping[str, str] | None, points: Sequence[PointLine]) -> list[Change]:
    """Work points whose colour differs from the previous circular's (none without one)."""
    if previous is None:
        return []
    return [
        Change(p.code, p.title, previous[p.code], p.colour)
        for p in points
        if p.code in previous and previous[p.code] != p.colour
    ]


def compose(
    *,
    plan_slug: str,
    plan_title: str,
    kind: Kind,
    period: str,
    now: datetime,
    totals: dict[str, Any],
    cards: Sequence[CardLine],
    points: Sequence[PointLine],
    previous_colours: Mapping[str, str] | None,
    previous_number: str | None,
    alerts: Sequence[AlertFacts] = (),
) -> Content:
    """The circular's content from the API's figures at `now`, and the acknowledgement times
    of the alerts fired in the period."""
    since = period_start(kind, local_day(now))
    rows = agency_rows(cards, points, alerts, since, now)
    reds = [p for p in points if p.colour == Level.RED.value]
    return Content(
        plan_slug=plan_slug,
        plan_title=plan_title,
        kind=kind.value,
        period=period,
        as_of=now.astimezone(SHANGHAI).isoformat(),
        totals=totals,
        agencies=rows,
        red_list=[r.agency_id for r in red_list(rows)],
        yellow_list=[r.agency_id for r in yellow_list(rows)],
        honour_list=[r.agency_id for r in honour_list(rows)],
        red_points=[
            RedPoint(
                p.code,
                p.title,
                p.leads,
                p.reasons,
                p.due_on.isoformat() if p.due_on else None,
                p.days_overdue,
            )
            for p in sorted(reds, key=lambda p: (-p.days_overdue, _order(p.code)))
        ],
        changes=changes_since(previous_colours, points),
        previous_number=previous_number,
        colours={p.code: p.colour for p in points},
        alerts_since=since.isoformat(),
    )


def _order(code: str) -> tuple[int, ...]:
    return tuple(int(part) for part in code.split("."))


COLOUR_WORDS = {
    "red": "红色（停滞）",
    "yellow": "黄色（滞后）",
    "blue": "蓝色（临期预警）",
    "green": "绿色（正常推进）",
    "review": "办结待审核",
    "closed": "已办结销号",
}
REASON_WORDS = {
    "blocked": "工作受阻",
    "overdue": "超过完成时限",
    "silent": "逾期未报送进展",
    "behind_pace": "未达序时进度",
    "flatline": "连续报送进度无变化",
    "due_soon": "临近完成时限",
}


def reason_words(codes: Iterable[str]) -> str:
    """Reasons in words, joined with 、."""
    return "、".join(REASON_WORDS.get(c, c) for c in codes)


def rate_words(rate: float | None) -> str:
    """An on-time rate as a percentage with one decimal (— without reports)."""
    return "—" if rate is None else f"{rate * 100:.1f}%"

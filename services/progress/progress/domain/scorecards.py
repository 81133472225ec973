"""Agency scorecards: how each responsible agency does on a plan's work points, most red first.

Reports: in-order reports on these work points; on time when no later than the report period
after the agency's previous report (delay 0). Open stalls: episodes open on work points it
leads, by colour. Silent now: work points it leads that are silent.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from duban_shared.events import Level, StallReason

Responsibilities = Sequence[Mapping[str, Any]]
"""A work point's responsibilities as the registry's snapshot lists them (agency_id, name,
role)."""


@dataclass
class Scorecard:
    """How one agency does on the work points it is responsible for."""

    agency_id: uuid.UUID
    name: str
    lead_of: int = 0
    co_of: int = 0
    reports: int = 0
    reports_on_time: int = 0
    late_reports: int = 0
    average_delay_working_days: float | None = None
    open_stalls: dict[str, int] = field(default_factory=dict)
    silent_now: int = 0

    def add_reports(self, count: int, on_time: int, late: int, average_delay: float | None) -> None:
        """Its in-order reports: how many, how many on time (delay 0), how many late, and
        their average delay in working days."""
        self.reports, self.reports_on_time, self.late_reports = count, on_time, late
        self.average_delay_working_days = (
            round(float(average_delay), 2) if average_delay is not None else None
        )

    @property
    def on_time_rate(self) -> float | None:
        """Share of its in-order reports that came within the report period."""
        return self.reports_on_time / self.reports if self.reports else None


def responsibility_cards(
    work_points: Iterable[tuple[Responsibilities, str | None, Sequence[str]]],
    only: uuid.UUID | None = None,
) -> dict[uuid.UUID, Scorecard]:
    """The cards of every agency responsible for some work points (or of one), from each work
    point's responsibilities, open episode's colour (None without one) and reasons; reports are
    added to them after (Scorecard.add_reports)."""
    cards: dict[uuid.UUID, Scorecard] = {}
    for responsibilities, open_level, reasons in work_points:
        for r in responsibilities:
            agency = uuid.UUID(r["agency_id"])
            if only is not None and agency != only:
                continue
            card = cards.setdefault(agency, Scorecard(agency_id=agency, name=r["name"]))
            if r["role"] != "lead":
                card.co_of += 1
                continue
            card.lead_of += 1
            if open_level is not None:
                card.open_stalls[open_level] = card.open_stalls.get(open_level, 0) + 1
            if StallReason.SILENT.value in reasons:
                card.silent_now += 1
    return cards


def worst_first(cards: Iterable[Scorecard]) -> list[Scorecard]:
    """Most red open stalls first, then most open stalls, then the longest average delay, then
    by name."""
    return sorted(cards, key=_worst_first)


def _worst_first(card: Scorecard) -> tuple[int, int, float, str]:
    red = card.open_stalls.get(Level.RED.value, 0)
    return (
        -red,
        -sum(card.open_stalls.values()),
        -(card.average_delay_working_days or 0),
        card.name,
    )


@dataclass(frozen=True)
class PlanCard:
    """An agency's scorecard on one plan."""

    plan_slug: str
    plan_title: str
    card: Scorecard


@dataclass(frozen=True)
class AcrossPlans:
    """An agency's scorecards on every tracked plan it is responsible in, by plan slug, and its
    total: the same rules applied to all those work points at once, so each count is the sum
    of the plans' and the average delay is over all its reports."""

    total: Scorecard
    plans: list[PlanCard]


def across_plans(per_plan: Iterable[PlanCard], totals: Iterable[Scorecard]) -> list[AcrossPlans]:
    """Each agency's total with its plans' cards under it (plans in the order given), most red
    first by the totals (worst_first); an agency shared by plans appears once."""
    cards: dict[uuid.UUID, list[PlanCard]] = {}
    for plan_card in per_plan:
        cards.setdefault(plan_card.card.agency_id, []).append(plan_card)
    return [
        AcrossPlans(total=total, plans=cards.get(total.agency_id, []))
        for total in worst_first(totals)
    ]

"""Stall policies: the plan's defaults, a work point's overrides over them, and the days a
work point may be due."""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol

from registry.domain.errors import Refusal

POLICY_FIELDS = (
    "report_every_working_days",
    "grace_working_days",
    "warn_before_due_working_days",
    "pace_tolerance_pct",
    "flatline_reports",
)


class PlanTerms(Protocol):
    """What the rules read of a plan (the stored plan has it)."""

    slug: str
    year: int
    issued_on: date
    due_on: date


class DueOn(Protocol):
    """What the rules read of a work point besides its policy fields."""

    due_on: date | None


def effective_policy(plan: PlanTerms, wp: DueOn) -> dict[str, Any]:
    """The policy in force for a work point: its overrides over the plan's defaults."""
    policy: dict[str, Any] = {}
    for name in POLICY_FIELDS:
        own = getattr(wp, name)
        policy[name] = getattr(plan, name) if own is None else own
    policy["due_on"] = wp.due_on or plan.due_on
    return policy


def year_end(year: int) -> date:
    """A whole-year plan is due on 31 December of its year."""
    return date(year, 12, 31)


def due_window(plan: PlanTerms, years_after: int) -> tuple[date, date]:
    """The days a work point of `plan` may be due: its year and `years_after` years more."""
    return date(plan.year, 1, 1), date(min(plan.year + years_after, date.max.year), 12, 31)


def check_due_on(plan: PlanTerms, due_on: date, years_after: int) -> None:
    """Refuse (422) a due date a work point of `plan` may not have.

    Outside the window (`due_window`): `due_on_out_of_range`, since progress counts working
    days up to the due date and no calendar covers years far away; within it but before the
    plan was issued: `due_before_issue`.
    """
    first, last = due_window(plan, years_after)
    if not first <= due_on <= last:
        raise Refusal(
            422,
            "due_on_out_of_range",
            f"due_on {due_on} is outside what plan '{plan.slug}' ({plan.year}) may set: from "
            f"{first} to {last}. Check the year; a later date needs "
            "DUBAN_REGISTRY_LATEST_DUE_YEARS_AFTER_PLAN raised (and progress's alike).",
            {"earliest": first.isoformat(), "latest": last.isoformat()},
        )
    if due_on < plan.issued_on:
        raise Refusal(
            422,
            "due_before_issue",
            f"due_on {due_on} is before the plan was issued ({plan.issued_on}).",
        )

"""The rules of a plan import that need no database: the text's hash, the shapes its work
points are compared by, the defaults a new plan starts with, and what an import reports.

Re-importing the same text changes nothing. A first import applies at once. A changed text of
an existing plan is applied only with confirm=True (the CLI's --confirm, the API's "confirm"),
after its diff was shown; every applied text is kept as a plan version with its diff.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from registry.domain.errors import Refusal
from registry.domain.plan_parser import ParsedPlan
from registry.domain.versions import PlanDiff, WorkPointShape


def sha256_text(text: str) -> str:
    """Hash a plan text as imported."""
    return hashlib.sha256(text.encode()).hexdigest()


class ConfirmationRequired(Refusal):
    """A changed text of an existing plan needs confirmation; the diff says what would change."""

    def __init__(self, slug: str, diff: PlanDiff) -> None:
        super().__init__(
            409,
            "confirmation_required",
            f"This text changes plan '{slug}'; review the diff and import again with confirmation.",
            diff.to_json(),
        )
        self.diff = diff


@dataclass(frozen=True)
class Defaults:
    """Stall-policy defaults a new plan starts with."""

    report_every_working_days: int = 10
    grace_working_days: int = 3
    warn_before_due_working_days: int = 10
    pace_tolerance_pct: float = 10.0
    flatline_reports: int = 3
    latest_due_years_after_plan: int = 1


@dataclass
class ImportReport:
    """What an import changed."""

    plan_slug: str
    plan_created: bool = False
    version: int = 1
    diff: PlanDiff = field(default_factory=PlanDiff)
    work_points_unchanged: int = 0

    @property
    def agencies_added(self) -> list[str]:
        """Names of agencies created by the import."""
        return self.diff.agencies_added

    @property
    def work_points_added(self) -> list[str]:
        """Codes of new work points."""
        return self.diff.added

    @property
    def work_points_updated(self) -> list[str]:
        """Codes of work points whose content changed."""
        return self.diff.changed()

    @property
    def work_points_removed(self) -> list[str]:
        """Codes of work points no longer in the plan."""
        return self.diff.removed

    @property
    def changed(self) -> bool:
        """Tell whether the import changed anything."""
        return self.plan_created or not self.diff.is_empty()


def parsed_shapes(parsed: ParsedPlan, name: dict[str, str]) -> dict[str, WorkPointShape]:
    """The shapes of a parsed plan's work points by code, agencies under their current names."""
    return {
        spec.code: WorkPointShape(
            number=spec.number,
            section=spec.section,
            title=spec.title,
            text=spec.text,
            leads=(leads := _distinct(name[n] for n in spec.lead_agencies)),
            cos=_distinct(name[n] for n in spec.co_agencies if name[n] not in leads),
            lead_inferred=spec.lead_inferred,
            with_other_units=spec.with_other_units,
            targets=tuple(
                (t.metric, float(t.value), t.unit, t.comparator, t.source) for t in spec.targets
            ),
        )
        for spec in parsed.work_points
    }


def _distinct(names: Iterable[str]) -> tuple[str, ...]:
    """Names in order without repeats (two names of a text may now mean one merged agency)."""
    return tuple(dict.fromkeys(names))


def city_of(issuer: str) -> str:
    """肇庆市政务服务和数据管理局 -> 肇庆市."""
    cut = issuer.find("市")
    return issuer[: cut + 1] if cut > 0 else ""

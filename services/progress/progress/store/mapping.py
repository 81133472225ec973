"""The store's rows as the values the domain judges (progress.domain.stall)."""

from __future__ import annotations

from progress.domain.stall import Facts, Policy, Target
from progress.store.models import WorkPointState, WorkPointView
from progress.store.rows import StateRow, ViewRow


def policy_of(view: WorkPointView | ViewRow) -> Policy:
    """The stall policy the registry's snapshot carries."""
    return Policy(
        report_every=view.report_every_working_days,
        grace=view.grace_working_days,
        warn_before_due=view.warn_before_due_working_days,
        pace_tolerance_pct=view.pace_tolerance_pct,
        flatline_reports=view.flatline_reports,
        starts_on=view.starts_on,
        due_on=view.due_on,
    )


def facts_of(
    view: WorkPointView | ViewRow, state: WorkPointState | StateRow, *, blocked: bool
) -> Facts:
    """What the domain needs to judge a work point."""
    return Facts(
        last_heard=state.last_heard(),
        any_blocked=blocked,
        percent=state.percent,
        recent_percents=tuple(state.recent_percents),
        kpis=state.kpis,
        targets=tuple(
            Target(metric=t["metric"], value=float(t["value"]), comparator=t["comparator"])
            for t in view.targets
        ),
        settled=state.closure is not None,
    )

"""A plan's work points counted by colour and reason, for the plan and each section."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from duban_shared.events import Level

from progress.domain.reports import CLOSED, IN_REVIEW


class Judged(Protocol):
    """A work point's verdict as the counts read it (a WorkPointState or a BoardLine)."""

    @property
    def level(self) -> str: ...

    @property
    def reasons(self) -> list[str]: ...

    @property
    def closure(self) -> str | None: ...


class Sectioned(Protocol):
    """Where a work point sits in its plan."""

    @property
    def section(self) -> int: ...


@dataclass
class Counts:
    """Work points by colour, with those in review and closed apart."""

    work_points: int = 0
    by_level: dict[str, int] = field(default_factory=lambda: {lv.value: 0 for lv in Level})
    by_reason: dict[str, int] = field(default_factory=dict)
    in_review: int = 0
    closed: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The counts as the summary answers them (CountsOut) and circulars print them."""
        return {
            "work_points": self.work_points,
            "by_level": dict(self.by_level),
            "by_reason": dict(self.by_reason),
            "in_review": self.in_review,
            "closed": self.closed,
        }

    def add(self, state: Judged) -> None:
        """Count one work point."""
        self.work_points += 1
        if state.closure == CLOSED:
            self.closed += 1
            return
        if state.closure == IN_REVIEW:
            self.in_review += 1
            return
        self.by_level[state.level] = self.by_level.get(state.level, 0) + 1
        for reason in state.reasons:
            self.by_reason[reason] = self.by_reason.get(reason, 0) + 1


def plan_counts(
    rows: Sequence[tuple[Sectioned, Judged]],
) -> tuple[Counts, dict[int, Counts]]:
    """Counts for the whole plan and per section."""
    total, sections = Counts(), dict[int, Counts]()
    for view, state in rows:
        total.add(state)
        sections.setdefault(view.section, Counts()).add(state)
    return total, dict(sorted(sections.items()))

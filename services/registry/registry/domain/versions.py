"""What a new text of a plan changes, computed before anything is written (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

TargetShape = tuple[str, float, str, str, str]  # metric, value, unit, comparator, source


@dataclass(frozen=True)
class WorkPointShape:
    """The parts of a work point that an import compares."""

    section: int
    title: str
    text: str
    leads: tuple[str, ...]
    cos: tuple[str, ...]
    lead_inferred: bool
    with_other_units: bool
    targets: tuple[TargetShape, ...]


@dataclass
class PlanDiff:
    """Work points added, removed, reworded, moved, with changed responsibilities or targets."""

    added: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    reworded: list[int] = field(default_factory=list)
    moved: list[int] = field(default_factory=list)
    responsibilities_changed: list[int] = field(default_factory=list)
    targets_changed: list[int] = field(default_factory=list)
    agencies_added: list[str] = field(default_factory=list)
    details: dict[int, dict[str, Any]] = field(default_factory=dict)

    def changed(self) -> list[int]:
        """Numbers of existing work points whose stored content changes."""
        numbers = (
            set(self.reworded)
            | set(self.moved)
            | set(self.responsibilities_changed)
            | set(self.targets_changed)
        )
        return sorted(numbers)

    def is_empty(self) -> bool:
        """Tell whether applying the new text changes nothing."""
        return not (self.added or self.removed or self.changed() or self.agencies_added)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (detail keys become strings)."""
        out = asdict(self)
        out["details"] = {str(k): v for k, v in self.details.items()}
        return out


def diff_work_points(
    current: Mapping[int, WorkPointShape],
    new: Mapping[int, WorkPointShape],
    *,
    known_agencies: set[str],
) -> PlanDiff:
    """Compare the stored work points with a new text's, by number.

    1. Numbers only in the new text are added; only in the store, removed.
    2. For numbers in both, compare title and text (reworded), section (moved), leads and
       co-agencies in order (responsibilities), and targets; record before and after.
    3. Agencies named in the new text that the registry does not know are listed.
    """
    diff = PlanDiff()
    diff.added = sorted(set(new) - set(current))
    diff.removed = sorted(set(current) - set(new))
    for number in sorted(set(new) & set(current)):
        old, fresh = current[number], new[number]
        detail: dict[str, Any] = {}
        if (old.title, old.text) != (fresh.title, fresh.text):
            diff.reworded.append(number)
            detail["title"] = {"before": old.title, "after": fresh.title}
            if old.text != fresh.text:
                detail["text"] = {"before": old.text, "after": fresh.text}
        if old.section != fresh.section:
            diff.moved.append(number)
            detail["section"] = {"before": old.section, "after": fresh.section}
        if (old.leads, old.cos, old.lead_inferred, old.with_other_units) != (
            fresh.leads,
            fresh.cos,
            fresh.lead_inferred,
            fresh.with_other_units,
        ):
            diff.responsibilities_changed.append(number)
            detail["responsibilities"] = {
                "before": {"lead": list(old.leads), "co": list(old.cos)},
                "after": {"lead": list(fresh.leads), "co": list(fresh.cos)},
            }
        if old.targets != fresh.targets:
            diff.targets_changed.append(number)
            detail["targets"] = {
                "before": [list(t) for t in old.targets],
                "after": [list(t) for t in fresh.targets],
            }
        if detail:
            diff.details[number] = detail
    named = {n for shape in new.values() for n in (*shape.leads, *shape.cos)}
    diff.agencies_added = sorted(named - known_agencies)
    return diff

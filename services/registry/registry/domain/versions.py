"""What a new text of a plan changes, computed before anything is written (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

TargetShape = tuple[str, float, str, str, str]  # metric, value, unit, comparator, source


@dataclass(frozen=True)
class WorkPointShape:
    """The parts of a work point that an import compares; `number` is its ordinal in the plan."""

    number: int
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
    """Work points added, removed, reworded, moved, with changed responsibilities or targets.

    Work points are named by their codes ('35', '3.2'), each list in plan order (by ordinal).
    """

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    reworded: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)
    responsibilities_changed: list[str] = field(default_factory=list)
    targets_changed: list[str] = field(default_factory=list)
    agencies_added: list[str] = field(default_factory=list)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    ordinals: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def changed(self) -> list[str]:
        """Codes of existing work points whose stored content changes, in plan order."""
        codes = (
            set(self.reworded)
            | set(self.moved)
            | set(self.responsibilities_changed)
            | set(self.targets_changed)
        )
        return sorted(codes, key=lambda c: self.ordinals.get(c, 0))

    def is_empty(self) -> bool:
        """Tell whether applying the new text changes nothing."""
        return not (self.added or self.removed or self.changed() or self.agencies_added)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        out = asdict(self)
        del out["ordinals"]
        return out


def diff_work_points(
    current: Mapping[str, WorkPointShape],
    new: Mapping[str, WorkPointShape],
    *,
    known_agencies: set[str],
) -> PlanDiff:
    """Compare the stored work points with a new text's, by code (the stable part of an id).

    1. Codes only in the new text are added; only in the store, removed.
    2. For codes in both, compare title and text (reworded), section or ordinal (moved),
       leads and co-agencies in order (responsibilities), and targets; record before and after.
    3. Agencies named in the new text that the registry does not know are listed.
    Lists are in plan order: by the new ordinal, removed ones by their stored ordinal.
    """
    ordinals = {c: s.number for c, s in current.items()} | {c: s.number for c, s in new.items()}
    diff = PlanDiff(ordinals=ordinals)

    def in_order(codes: set[str]) -> list[str]:
        return sorted(codes, key=lambda c: ordinals[c])

    diff.added = in_order(set(new) - set(current))
    diff.removed = in_order(set(current) - set(new))  # their stored ordinals
    for code in in_order(set(new) & set(current)):
        old, fresh = current[code], new[code]
        detail: dict[str, Any] = {}
        if (old.title, old.text) != (fresh.title, fresh.text):
            diff.reworded.append(code)
            detail["title"] = {"before": old.title, "after": fresh.title}
            if old.text != fresh.text:
                detail["text"] = {"before": old.text, "after": fresh.text}
        if old.section != fresh.section:
            detail["section"] = {"before": old.section, "after": fresh.section}
        if old.number != fresh.number:
            detail["number"] = {"before": old.number, "after": fresh.number}
        if old.section != fresh.section or old.number != fresh.number:
            diff.moved.append(code)
        if (old.leads, old.cos, old.lead_inferred, old.with_other_units) != (
            fresh.leads,
            fresh.cos,
            fresh.lead_inferred,
            fresh.with_other_units,
        ):
            diff.responsibilities_changed.append(code)
            detail["responsibilities"] = {
                "before": {"lead": list(old.leads), "co": list(old.cos)},
                "after": {"lead": list(fresh.leads), "co": list(fresh.cos)},
            }
        if old.targets != fresh.targets:
            diff.targets_changed.append(code)
            detail["targets"] = {
                "before": [list(t) for t in old.targets],
                "after": [list(t) for t in fresh.targets],
            }
        if detail:
            diff.details[code] = detail
    named = {n for shape in new.values() for n in (*shape.leads, *shape.cos)}
    diff.agencies_added = sorted(named - known_agencies)
    return diff

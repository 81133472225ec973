"""What the office sees and decides before a plan is imported: the parse report, and the
corrections it may make to the parser's reading (agencies, title, text of an item).

The report places every work point on its line and lists every item the parser found at the
work point level without a responsible agency. Such an item is never dropped silently: an import
is refused while one remains, unless the office names its agencies in a correction or says to
leave the unmarked items out (``skip_unmarked``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from registry.domain.agency_names import agency_kind, canonical_agency_name
from registry.domain.deadlines import due_date
from registry.domain.errors import Refusal
from registry.domain.plan_parser import Agency, ParsedPlan, UnmarkedItem, WorkPoint
from registry.domain.targets import extract_targets

# What a person may write: no control characters (a title, a name: no line breaks either).
_LINE = r"^[^\x00-\x1f\x7f]*$"
_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
AgencyName = Annotated[str, StringConstraints(min_length=1, max_length=120, pattern=_LINE)]
Line = Annotated[str, StringConstraints(pattern=_LINE)]
Text = Annotated[str, StringConstraints(pattern=_TEXT)]
ItemCode = Annotated[
    str, StringConstraints(pattern=r"^[0-9]{1,4}(\.[0-9]{1,4}){0,3}$", max_length=24)
]
"""An item's id in a plan text: 35, 3.2 or 2.1.3."""


class Correction(BaseModel):
    """The office's correction of one item, by its id in the plan (e.g. "3.2")."""

    model_config = ConfigDict(extra="forbid")

    lead: list[AgencyName] | None = Field(
        default=None, min_length=1, max_length=20, description="The lead agencies (牵头)."
    )
    co: list[AgencyName] | None = Field(
        default=None, max_length=60, description="The co-responsible agencies."
    )
    title: Line | None = Field(default=None, min_length=1, max_length=200)
    text: Text | None = Field(default=None, min_length=1, max_length=20_000)


def read_corrections(raw: bytes | str) -> dict[str, Correction]:
    """Corrections from JSON ({"3.2": {"lead": [...], "co": [...]}}), or a 422 refusal."""
    try:
        return _CORRECTIONS.validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the file"
        raise _refuse(
            "bad_corrections",
            f"Corrections must map item ids to {{lead, co, title, text}}; at {where}: "
            f"{first['msg']}",
        ) from None


def _refuse(code: str, message: str, details: Any = None) -> Refusal:
    return Refusal(422, code, message, details)


_CORRECTIONS = TypeAdapter(dict[ItemCode, Correction])


def review_key(corrections: dict[str, Correction], *, skip_unmarked: bool) -> str:
    """The office's decisions as canonical JSON ("" when it made none), hashed with the text."""
    if not corrections and not skip_unmarked:
        return ""
    decided = {
        "corrections": {k: v.model_dump(exclude_none=True) for k, v in corrections.items()},
        "skip_unmarked": skip_unmarked,
    }
    return "\n" + json.dumps(decided, ensure_ascii=False, sort_keys=True)


def apply_corrections(
    parsed: ParsedPlan, corrections: dict[str, Correction], *, skip_unmarked: bool
) -> ParsedPlan:
    """The plan as the office confirmed it: corrections applied, unmarked items resolved.

    1. Every corrected id must be a work point or an unmarked item of the text.
    2. A correction of an unmarked item must name its lead agencies; it then becomes a work
       point in its place in the plan.
    3. Corrected agencies are the office's, so the lead is no longer inferred.
    4. An unmarked item left without agencies refuses the import (``unmarked_items``) unless
       ``skip_unmarked`` leaves it out on purpose.
    """
    points = {w.code: w for w in parsed.work_points}
    unmarked = {u.code: u for u in parsed.unmarked}
    unknown = sorted(set(corrections) - set(points) - set(unmarked))
    if unknown:
        raise _refuse(
            "unknown_item",
            f"The text has no item {', '.join(unknown)}; correct items by the ids the preview "
            "lists (work points and unmarked items).",
            {"codes": unknown},
        )
    merged: list[WorkPoint] = []
    items: list[WorkPoint | UnmarkedItem] = [*parsed.work_points, *parsed.unmarked]
    for item in sorted(items, key=lambda i: i.line):
        fix = corrections.get(item.code)
        if isinstance(item, WorkPoint):
            merged.append(_corrected(item, fix, parsed.plan.year) if fix else item)
        elif fix is not None:
            if not fix.lead:
                raise _refuse(
                    "correction_needs_lead",
                    f"Item {item.code} (line {item.line}) names no agency in the text; its "
                    "correction must give 'lead'.",
                    {"code": item.code, "line": item.line},
                )
            merged.append(_corrected(_from_unmarked(item, parsed.plan.year), fix, parsed.plan.year))
    left = [u for u in parsed.unmarked if u.code not in corrections]
    if left and not skip_unmarked:
        raise _refuse(
            "unmarked_items",
            f"{len(left)} item(s) name no responsible agency (lines "
            f"{', '.join(str(u.line) for u in left[:10])}); give their agencies as corrections, "
            "or import with skip_unmarked to leave them out.",
            {"items": [{"code": u.code, "line": u.line} for u in left]},
        )
    for number, point in enumerate(merged, start=1):
        point.number = number
    agencies: dict[str, Agency] = {}
    for point in merged:
        for name in point.lead_agencies + point.co_agencies:
            agencies.setdefault(name, Agency(name=name, kind=agency_kind(name)))
    return parsed.model_copy(
        update={
            "work_points": merged,
            "unmarked": [],
            "agencies": list(agencies.values()),
        }
    )


def _from_unmarked(item: UnmarkedItem, year: int) -> WorkPoint:
    return WorkPoint(
        number=0,
        code=item.code,
        section=item.section,
        title=item.text.split("。", 1)[0].split("\n", 1)[0][:200],
        text=item.text,
        lead_agencies=[],
        co_agencies=[],
        lead_inferred=False,
        with_other_units=False,
        due_on=due_date(item.text, year),
        targets=extract_targets(item.text),
        responsibility="",
        line=item.line,
    )


def _corrected(point: WorkPoint, fix: Correction, year: int) -> WorkPoint:
    update: dict[str, Any] = {}
    if fix.lead is not None:
        leads = list(dict.fromkeys(canonical_agency_name(n) for n in fix.lead))
        update |= {"lead_agencies": leads, "lead_inferred": False}
        if fix.co is None:
            update["co_agencies"] = [n for n in point.co_agencies if n not in leads]
    if fix.co is not None:
        leads = update.get("lead_agencies", point.lead_agencies)
        cos = dict.fromkeys(canonical_agency_name(n) for n in fix.co)
        update["co_agencies"] = [n for n in cos if n not in leads]
    if fix.text is not None:
        update |= {
            "text": fix.text,
            "targets": extract_targets(fix.text),
            "due_on": due_date(fix.text, year) or point.due_on,
        }
    if fix.title is not None:
        update["title"] = fix.title
    return point.model_copy(update=update)


def parse_report(parsed: ParsedPlan, known_agencies: set[str] | None = None) -> dict[str, Any]:
    """The parse report as JSON: every work point on its line, every unmarked item, notes.

    With the names the registry already knows, each agency says whether the import would
    create it.
    """
    return {
        "plan": parsed.plan.model_dump(mode="json"),
        "numbering": parsed.numbering,
        "summary": {
            "sections": len(parsed.sections),
            "work_points": len(parsed.work_points),
            "unmarked": len(parsed.unmarked),
            "targets": sum(len(w.targets) for w in parsed.work_points),
            "with_due_date": sum(1 for w in parsed.work_points if w.due_on),
            "agencies": len(parsed.agencies),
        },
        "sections": [s.model_dump(mode="json") for s in parsed.sections],
        "work_points": [
            {
                "code": w.code,
                "line": w.line,
                "marker_lines": w.marker_lines,
                "section": w.section,
                "group": w.group,
                "title": w.title,
                "lead": w.lead_agencies,
                "co": w.co_agencies,
                "lead_inferred": w.lead_inferred,
                "with_other_units": w.with_other_units,
                "several_markers": w.several_markers,
                "due_on": w.due_on.isoformat() if w.due_on else None,
                "targets": [t.model_dump(mode="json") for t in w.targets],
            }
            for w in parsed.work_points
        ],
        "unmarked": [u.model_dump(mode="json") for u in parsed.unmarked],
        "notes": [n.model_dump(mode="json") for n in parsed.notes],
        "agencies": [
            {
                "name": a.name,
                "kind": a.kind,
                **({"new": a.name not in known_agencies} if known_agencies is not None else {}),
            }
            for a in parsed.agencies
        ],
    }

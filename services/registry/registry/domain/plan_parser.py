"""Parse a government work plan text into sections, work points and agencies.

The head (notice or title, issuer, date, year) is read by :mod:`registry.domain.plan_header`.
The body runs from the first section heading ``一、`` to the end, or to a trailing signature and
date, ``附件`` or ``抄送``. In it:

* **Headings.** Below sections, items are numbered in any of the styles ``（一）`` ``(一)``,
  ``（1）`` ``(1)``, ``1.`` ``1．`` ``1、`` and ``①``; each style is a level, deeper in the order
  the styles first appear.
* **Markers.** A responsibility marker is a bracketed clause ending a line (``（X牵头，Y按职责
  分工负责）``, ``[…]``, ``【…】``), a labelled clause ending a line (``责任单位：X、Y``), or such a
  clause on a line of its own. :mod:`registry.domain.agency_names` reads it.
* **The work point level** is the level that carries the markers: the one with most items that
  hold a marker (in the item or below it; a marker on a line of its own is held by the item open
  above it), the shallower one on a tie. Deeper items stay in the work point's text; shallower
  ones are group headings.
* **Markers to work points.** Each marker belongs to the work point it is in. A work point with
  several markers merges their agencies (flagged ``several_markers``). A marker on a group
  heading or a section's lead-in applies to its work points that carry none of their own.
* **Ids.** The plan numbers its work points continuously (id ``35``), or anew in each section
  (``3.2``), or anew in each group (``2.1.3``); any other numbering is refused on its first
  wrong line. ``number`` is the work point's position in the plan.
* **Unmarked items.** An item at the work point level without a marker is not a work point:
  it is listed in ``unmarked`` with its line, never dropped silently.
* **Deadlines and targets** are read from the work point's text (and its markers' time fields).

Errors raise :class:`PlanParseError` with a stable ``code``: ``empty_text``,
``no_issue_date``, ``no_plan_title``, ``no_plan_year``, ``plan_year_out_of_range``,
``no_sections``, ``section_numbering``, ``work_point_outside_section``,
``work_point_numbering``, ``no_work_points``, ``bad_responsibility``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from pydantic import BaseModel

from registry.domain.agency_names import (
    AgencyKind,
    ResponsibilityError,
    agency_kind,
    is_responsibility_clause,
    parse_responsibility,
)
from registry.domain.deadlines import due_date
from registry.domain.plan_errors import ParseNote, PlanParseError
from registry.domain.plan_header import SECTION, find_header
from registry.domain.targets import Target, extract_targets

__all__ = [
    "Agency",
    "Numbering",
    "ParseNote",
    "ParsedPlan",
    "PlanInfo",
    "PlanParseError",
    "Section",
    "UnmarkedItem",
    "WorkPoint",
    "chinese_numeral",
    "parse_plan",
    "split_responsibility",
]

Numbering = Literal["continuous", "per_section", "per_group"]

_CN = "一二三四五六七八九十"
_CN_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"
_FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９．", "0123456789.")
# Item heading styles below sections; the first that matches a line wins.
_STYLES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("（一）", re.compile(rf"^[(\uff08](?P<num>[{_CN}]{{1,3}})[)\uff09]\s*(?P<rest>.*)$")),
    ("（1）", re.compile(r"^[(\uff08](?P<num>\d{1,3})[)\uff09]\s*(?P<rest>.*)$")),
    ("1.", re.compile(r"^(?P<num>\d{1,3})(?:\.(?!\d)|、)\s*(?P<rest>.*)$")),
    ("①", re.compile(rf"^(?P<num>[{_CIRCLED}])\s*(?P<rest>.*)$")),
)
_CLAUSE_OPEN = "(\uff08[\u3010"
_CLAUSE_CLOSE = ")\uff09]\u3011"
_LABELLED = re.compile(
    r"(?:^|(?<=[。；;]))\s*[(\uff08\[\u3010]?(?P<clause>(?:牵头单位|主责单位|责任单位)[:：].*?)"
    r"[)\uff09\]\u3011]?[。]?$"
)
_TITLE_MAX = 200


class PlanInfo(BaseModel):
    """Plan metadata read from the notice or the title."""

    title: str
    issuer: str
    issued_on: date
    year: int
    preface: str


class Section(BaseModel):
    """A top-level section ``一、…`` of the plan."""

    number: int
    title: str
    line: int


class WorkPoint(BaseModel):
    """A work point: the numbered item that carries a responsibility marker."""

    number: int
    code: str
    section: int
    group: str | None = None
    title: str
    text: str
    lead_agencies: list[str]
    co_agencies: list[str]
    lead_inferred: bool
    with_other_units: bool
    several_markers: bool = False
    due_on: date | None = None
    targets: list[Target]
    responsibility: str
    line: int
    marker_lines: list[int] = []


class UnmarkedItem(BaseModel):
    """An item at the work point level that names no agency: not imported, but reported."""

    code: str
    section: int
    line: int
    text: str


class Agency(BaseModel):
    """A distinct agency under its canonical name."""

    name: str
    kind: AgencyKind


class ParsedPlan(BaseModel):
    """The whole parsed plan, with what the office should check before importing it."""

    plan: PlanInfo
    numbering: Numbering = "continuous"
    sections: list[Section]
    work_points: list[WorkPoint]
    agencies: list[Agency]
    unmarked: list[UnmarkedItem] = []
    notes: list[ParseNote] = []


def chinese_numeral(text: str) -> int:
    """Convert a Chinese numeral from 一 (1) to 九十九 (99) into an int."""
    if text in _CN_DIGITS:
        return _CN_DIGITS[text]
    tens, sep, units = text.partition("十")
    if not sep or len(tens) > 1 or len(units) > 1:
        raise ValueError(f"not a Chinese numeral between 1 and 99: {text!r}")
    try:
        return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[units] if units else 0)
    except KeyError as exc:
        raise ValueError(f"not a Chinese numeral between 1 and 99: {text!r}") from exc


def _item_number(style: str, numeral: str) -> int:
    if style == "（一）":
        return chinese_numeral(numeral)
    if style == "①":
        return _CIRCLED.index(numeral) + 1
    return int(numeral)


def split_responsibility(paragraph: str) -> tuple[str, str] | None:
    """Split a line into (text, marker clause), or None if no marker ends it.

    The marker is a bracketed clause that ends the line and names a duty (牵头, 负责, 配合,
    责任单位, ...), or a labelled clause ``责任单位：…`` after the line's last sentence.
    """
    body = paragraph.rstrip()
    if body and body[-1] in _CLAUSE_CLOSE:
        depth = 0
        for index in range(len(body) - 1, -1, -1):
            if body[index] in _CLAUSE_CLOSE:
                depth += 1
            elif body[index] in _CLAUSE_OPEN:
                depth -= 1
                if depth == 0:
                    clause = body[index + 1 : -1]
                    if is_responsibility_clause(clause):
                        return body[:index].rstrip(), clause
                    break
    labelled = _LABELLED.search(body)
    if labelled is not None:
        return body[: labelled.start()].rstrip(), labelled["clause"]
    return None


@dataclass
class _Item:
    """A numbered heading below a section, with the lines it holds."""

    style: str
    level: int
    number: int
    line: int
    section: int
    parent: _Item | None
    head: str  # the heading line without its number
    order: int  # position among all items
    lines: list[str] = field(default_factory=list)  # own text lines, markers removed
    children: list[_Item] = field(default_factory=list)
    markers: list[tuple[int, str]] = field(default_factory=list)  # (line, clause)

    def chain(self) -> list[_Item]:
        """This item and its ancestors, shallowest first."""
        chain: list[_Item] = []
        item: _Item | None = self
        while item is not None:
            chain.append(item)
            item = item.parent
        return chain[::-1]

    def text(self, own_heading: bool) -> list[str]:
        """The item's lines and its sub-items', sub-items with their numbers."""
        first = self.head if not own_heading else self.full_head()
        out = [first, *self.lines] if first else list(self.lines)
        for child in self.children:
            out.extend(child.text(own_heading=True))
        return out

    def full_head(self) -> str:
        marker = {
            "（一）": f"（{_cn(self.number)}）",
            "（1）": f"（{self.number}）",
            "1.": f"{self.number}.",
            "①": _CIRCLED[self.number - 1] if self.number <= len(_CIRCLED) else "",
        }[self.style]
        return marker + self.head


def _cn(number: int) -> str:
    digits = "一二三四五六七八九"
    if number < 10:
        return digits[number - 1]
    tens, units = divmod(number, 10)
    return ("" if tens == 1 else digits[tens - 1]) + "十" + (digits[units - 1] if units else "")


@dataclass
class _Marker:
    line: int
    clause: str
    standalone: bool
    owner: _Item | None  # the deepest open item; None in a section's lead-in
    section: int


@dataclass
class _Body:
    """The body read into sections, items and markers."""

    sections: list[Section] = field(default_factory=list)
    items: list[_Item] = field(default_factory=list)
    markers: list[_Marker] = field(default_factory=list)
    levels: dict[str, int] = field(default_factory=dict)


def _heading(text: str) -> tuple[str, str, str] | None:
    """(style, numeral, rest) of an item heading line, or None."""
    normal = text.translate(_FULL_WIDTH_DIGITS)
    for style, pattern in _STYLES:
        found = pattern.match(normal)
        if found is not None:
            return style, found["num"], text[len(normal) - len(found["rest"]) :]
    return None


def _standalone_marker(text: str) -> str | None:
    """The clause of a line that is only a marker, or None."""
    split = split_responsibility(text)
    if split is not None and split[0] == "":
        return split[1]
    return None


def _read_body(lines: list[tuple[int, str]]) -> _Body:
    body = _Body()
    stack: list[_Item] = []
    for line, content in lines:
        if heading := SECTION.match(content):
            expected = len(body.sections) + 1
            try:
                number = chinese_numeral(heading["num"])
            except ValueError:
                number = 0
            if number != expected:
                raise PlanParseError(
                    "section_numbering",
                    f"line {line}: section {heading['num']}、 found where section "
                    f"{_cn(expected)}、 was expected; sections are numbered 一、二、三、… in order",
                    line,
                )
            body.sections.append(Section(number=number, title=heading["title"].strip(), line=line))
            stack.clear()
            continue
        section = body.sections[-1].number
        clause = _standalone_marker(content)
        if clause is None and (found := _heading(content)) is not None:
            style, numeral, rest = found
            level = body.levels.setdefault(style, len(body.levels) + 1)
            while stack and stack[-1].level >= level:
                stack.pop()
            parent = stack[-1] if stack else None
            item = _Item(
                style=style,
                level=level,
                number=_item_number(style, numeral),
                line=line,
                section=section,
                parent=parent,
                head="",
                order=len(body.items),
            )
            if parent is not None:
                parent.children.append(item)
            body.items.append(item)
            stack.append(item)
            content = rest.strip()
            split = split_responsibility(content)
            if split is not None:
                item.head, clause_text = split
                body.markers.append(_Marker(line, clause_text, False, item, section))
            else:
                item.head = content
            continue
        if clause is not None:
            body.markers.append(_Marker(line, clause, True, stack[-1] if stack else None, section))
            continue
        owner = stack[-1] if stack else None
        split = split_responsibility(content)
        if split is not None:
            text, clause_text = split
            body.markers.append(_Marker(line, clause_text, False, owner, section))
            content = text
        if owner is not None and content:
            owner.lines.append(content)
    return body


def _work_point_level(body: _Body) -> int:
    """The level that carries the markers: the one with most items holding a marker (in the
    item or below it), the shallower on a tie."""
    marked: dict[int, set[int]] = {}
    for marker in body.markers:
        for item in marker.owner.chain() if marker.owner is not None else []:
            marked.setdefault(item.level, set()).add(item.order)
    if not marked:
        raise PlanParseError(
            "no_work_points",
            "no work point with a responsibility marker was found: a work point is a numbered "
            "item like '（一）…' or '1. …' ending with a marker such as '（市…局牵头，…按职责分工"
            "负责）' or '责任单位：…'",
        )
    best = max(len(orders) for orders in marked.values())
    return min(level for level, orders in marked.items() if len(orders) == best)


def _codes(points: list[_Item]) -> tuple[Numbering, list[str]]:
    """Decide how the plan numbers its work points and give each its id."""
    scopes: dict[Numbering, list[tuple[object, ...]]] = {
        "continuous": [() for _ in points],
        "per_section": [(p.section,) for p in points],
        "per_group": [
            (p.section, *(a.number for a in p.chain()[:-1]), id(p.parent)) for p in points
        ],
    }
    first_wrong: dict[Numbering, tuple[int, int]] = {}  # index of first wrong item, expected
    for numbering, keys in scopes.items():
        counts: Counter[tuple[object, ...]] = Counter()
        for index, (point, key) in enumerate(zip(points, keys, strict=True)):
            counts[key] += 1
            if point.number != counts[key]:
                first_wrong[numbering] = (index, counts[key])
                break
        else:
            codes = [
                str(p.number)
                if numbering == "continuous"
                else f"{p.section}.{p.number}"
                if numbering == "per_section"
                else ".".join(str(n) for n in (p.section, *(a.number for a in p.chain())))
                for p in points
            ]
            return numbering, codes
    numbering, (index, expected) = max(first_wrong.items(), key=lambda kv: kv[1][0])
    point = points[index]
    how = {
        "continuous": "continuously across the plan",
        "per_section": "anew in each section",
        "per_group": "anew under each heading",
    }[numbering]
    raise PlanParseError(
        "work_point_numbering",
        f"line {point.line}: work point {point.full_head()[:12]!r} is number {point.number} "
        f"where {expected} was expected; work points must be numbered 1, 2, 3, … {how} (or "
        "continuously, or anew in each section)",
        point.line,
    )


def _merge(markers: list[tuple[int, str]]) -> tuple[list[str], list[str], bool, bool]:
    leads: list[str] = []
    cos: list[str] = []
    inferred = others = False
    for line, clause in markers:
        try:
            duty = parse_responsibility(clause)
        except ResponsibilityError as exc:
            raise PlanParseError("bad_responsibility", f"line {line}: {exc}", line) from exc
        leads.extend(n for n in duty.lead_agencies if n not in leads)
        cos.extend(n for n in duty.co_agencies if n not in cos)
        inferred = inferred or duty.lead_inferred
        others = others or duty.with_other_units
    return leads, [n for n in cos if n not in leads], inferred, others


def _assign_markers(
    body: _Body, level: int, notes: list[ParseNote]
) -> dict[int, list[tuple[int, str]]]:
    """Markers by the order of the item (work point or group heading) or section they belong to.

    Section lead-ins are keyed by the negative section number.
    """
    owned: dict[int, list[tuple[int, str]]] = {}
    for marker in body.markers:
        chain = marker.owner.chain() if marker.owner is not None else []
        at_level = [item for item in chain if item.level == level]
        if at_level:
            key = at_level[0].order
        elif chain:  # a group heading above the work point level
            key = chain[-1].order
        else:  # a section's lead-in
            key = -marker.section
        owned.setdefault(key, []).append((marker.line, marker.clause))
    for item in body.items:
        if item.level != level and item.order in owned:
            notes.append(
                ParseNote(
                    line=item.line,
                    code="group_marker",
                    message=f"line {item.line}: the marker of heading {item.full_head()[:20]!r} "
                    "applies to its work points that carry none of their own",
                )
            )
    return owned


def _inherited(item: _Item, owned: dict[int, list[tuple[int, str]]]) -> list[tuple[int, str]]:
    """A work point's own markers, else those of its nearest heading or its section's lead-in."""
    if item.order in owned:
        return owned[item.order]
    for ancestor in reversed(item.chain()[:-1]):
        if ancestor.order in owned:
            return owned[ancestor.order]
    return owned.get(-item.section, [])


def parse_plan(text: str) -> ParsedPlan:
    """Parse a plan text into metadata, sections, work points and agencies (see module doc)."""
    lines = [
        (number, stripped)
        for number, raw in enumerate(text.removeprefix("\ufeff").splitlines(), start=1)
        if (stripped := raw.strip())
    ]
    if not lines:
        raise PlanParseError("empty_text", "the plan text is empty")
    header = find_header(lines)
    notes = list(header.notes)
    for line, content in lines[: header.body_start]:
        found = _heading(content)
        if found is not None and split_responsibility(found[2]) is not None:
            raise PlanParseError(
                "work_point_outside_section",
                f"line {line}: work point before the first section heading; add a '一、…' line",
                line,
            )
    body = _read_body(lines[header.body_start : header.body_end])
    level = _work_point_level(body)
    owned = _assign_markers(body, level, notes)
    items = [item for item in body.items if item.level == level]
    numbering, codes = _codes(items)
    work_points: list[WorkPoint] = []
    unmarked: list[UnmarkedItem] = []
    for item, code in zip(items, codes, strict=True):
        paragraph = "\n".join(part for part in item.text(own_heading=False) if part)
        markers = _inherited(item, owned)
        if not markers:
            unmarked.append(
                UnmarkedItem(code=code, section=item.section, line=item.line, text=paragraph)
            )
            continue
        leads, cos, inferred, others = _merge(markers)
        clauses = [clause for _, clause in markers]
        groups = [a.full_head() for a in item.chain()[:-1]]
        work_points.append(
            WorkPoint(
                number=len(work_points) + 1,
                code=code,
                section=item.section,
                group=" / ".join(groups) if groups else None,
                title=paragraph.split("。", 1)[0].split("\n", 1)[0].strip()[:_TITLE_MAX],
                text=paragraph,
                lead_agencies=leads,
                co_agencies=cos,
                lead_inferred=inferred,
                with_other_units=others,
                several_markers=len(markers) > 1,
                due_on=due_date("\n".join([paragraph, *clauses]), header.year),
                targets=extract_targets(paragraph),
                responsibility="；".join(clauses),
                line=item.line,
                marker_lines=[line for line, _ in markers],
            )
        )
    if not work_points:
        raise PlanParseError(
            "no_work_points",
            "no work point names a responsible agency; add markers like '（市…局牵头）'",
        )
    for skipped in unmarked:
        notes.append(
            ParseNote(
                line=skipped.line,
                code="unmarked_item",
                message=f"line {skipped.line}: item {skipped.code} names no responsible agency "
                "and is not imported; add a marker such as '（市…局牵头）' or name its agencies",
            )
        )
    agencies: dict[str, Agency] = {}
    for work_point in work_points:
        for name in work_point.lead_agencies + work_point.co_agencies:
            agencies.setdefault(name, Agency(name=name, kind=agency_kind(name)))
    return ParsedPlan(
        plan=PlanInfo(
            title=header.title,
            issuer=header.issuer,
            issued_on=header.issued_on,
            year=header.year,
            preface=header.preface,
        ),
        numbering=numbering,
        sections=body.sections,
        work_points=work_points,
        agencies=list(agencies.values()),
        unmarked=unmarked,
        notes=notes,
    )

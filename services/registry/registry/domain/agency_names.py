"""Agency names in a plan's responsibility clauses: splitting, canonical form and kind.

A responsibility clause is the bracketed tail of a work point, for example
``(市政务服务和数据管理局牵头,市公安局、人行肇庆市分行等有关单位按职责分工负责)``.
Everything here is pure string handling; :mod:`registry.domain.plan_parser` calls it per work point.

Canonical form of a name: full-width brackets become ASCII ``(`` ``)`` (the plan itself uses
ASCII ones), all whitespace is removed. Nothing else is rewritten, so the canonical name is
still the exact wording of the plan.

Kinds (:data:`AgencyKind`), decided from the canonical name by the first rule that matches:

1. ``city_government``: the city government itself (``市人民政府``, ``肇庆市人民政府``).
2. ``county_government``: ends with ``人民政府`` or ``政府`` (``端州区人民政府``,
   ``各县(市、区)人民政府``).
3. ``management_committee``: ends with ``管委会`` / ``管理委员会`` (development zones).
4. ``judicial``: ends with ``法院`` or ``检察院``.
5. ``legislature``: contains ``人大`` or ``政协`` (offices of the people's congress standing
   committee and of the political consultative conference).
6. ``party_organ``: starts with ``市委`` / ``市纪委`` (organs of the municipal party committee).
7. ``state_owned_company``: contains ``公司`` or ``集团`` (``广东电网公司肇庆供电局``).
8. ``central_branch``: vertically managed branches of central bodies (``人行…``, ``…金融监管…``,
   ``…海关``, ``…海事局``, ``…税务局``, ``…调查队``, ``…气象局``, ``…邮政管理局``); checked before
   the next rule because ``市税务局`` looks like a city bureau but is not run by the city.
9. ``city_bureau``: any other name starting with ``市`` (bureaus, offices, centres,
   commissions and the like of the city government, e.g. ``市国资委``, ``市供销合作联社``).
10. ``other``: none of the above.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

AgencyKind = Literal[
    "city_government",
    "county_government",
    "management_committee",
    "judicial",
    "legislature",
    "party_organ",
    "state_owned_company",
    "central_branch",
    "city_bureau",
    "other",
]

_KIND_RULES: tuple[tuple[AgencyKind, re.Pattern[str]], ...] = (
    ("city_government", re.compile(r"^(肇庆)?市(人民)?政府$")),
    ("county_government", re.compile(r"政府$")),
    ("management_committee", re.compile(r"(管委会|管理委员会)$")),
    ("judicial", re.compile(r"(法院|检察院)$")),
    ("legislature", re.compile(r"人大|政协")),
    ("party_organ", re.compile(r"^市(委|纪委)")),
    ("state_owned_company", re.compile(r"公司|集团")),
    (
        "central_branch",
        re.compile(r"^人行|人民银行|金融监管|(海关|海事局|税务局|调查队|气象局|邮政管理局)$"),
    ),
    ("city_bureau", re.compile(r"^市")),
)

# Full-width punctuation that may appear in a clause, mapped to the form the parser works on.
_TO_ASCII = str.maketrans(
    {
        "\uff08": "(",
        "\uff09": ")",
        "\u3010": "[",
        "\u3011": "]",
        "\uff0c": ",",
        "\u3000": " ",
        "\uff1b": ";",
        "\uff1a": ":",
    }
)
_OPENERS = "([“"
_CLOSERS = ")]”"
_DUTY_TAIL = re.compile(r"(按职责分工负责|按职责负责|分工负责|共同负责|负责|配合|参与|协同)$")
_OTHER_UNITS = re.compile(r"等(有关|相关)?(单位|部门)$")
# A bare place name: ends with 县/区/市/镇, optionally followed by one parenthetical.
_BARE_PLACE = re.compile(r"(县|区|市|镇)(\([^()]*\))?$")
_SHARED_SUFFIXES = ("人民政府", "管理委员会", "管委会", "政府")
# How a complete agency name ends; an item ending otherwise (张家口) shares the next one's suffix.
_AGENCY_ENDING = re.compile(
    r"(局|委|办|厅|院|府|会|中心|公司|集团|行|队|部|社|所|站|署|处|室|团|馆|台|组|联|协|港|关|校|司)"
    r"(\([^()]*\))?$"
)
# Labelled fields of a clause (牵头单位：X；配合单位：Y；完成时限：…).
_LABEL = re.compile(
    r"(?P<label>牵头单位|主责单位|主办单位|责任单位|配合单位|协同单位|参与单位|协办单位|"
    r"完成时限|完成时间|时间节点|时限要求|时限)[:：]"
)
_LEAD_LABELS = frozenset({"牵头单位", "主责单位", "主办单位"})
_CO_LABELS = frozenset({"配合单位", "协同单位", "参与单位", "协办单位"})
_TIME_LABELS = frozenset({"完成时限", "完成时间", "时间节点", "时限要求", "时限"})
# A clause segment that is a time, not an agency: 2025年6月底前完成, 年底前, 持续推进.
_TIME_SEGMENT = re.compile(
    r"^(于|在)?((\d{4}|[〇零一二三四五六七八九]{4})年)?(\d{1,2}月)?(\d{1,2}日)?"
    r"(底|末|年底|年末|上半年|下半年|内|年内)?(前|以前|之前)?"
    r"(完成|实现|建成|办结|到位|基本完成|全面完成)?$|^(持续推进|长期坚持|持续实施|持续开展)$"
)


class ResponsibilityError(ValueError):
    """A responsibility clause that names no lead agency or is otherwise unusable."""


@dataclass(frozen=True)
class Responsibility:
    """Agencies named by one responsibility clause, canonical and de-duplicated."""

    lead_agencies: tuple[str, ...]
    co_agencies: tuple[str, ...]
    lead_inferred: bool
    with_other_units: bool


def canonical_agency_name(name: str) -> str:
    """Return the canonical spelling of an agency name (ASCII parentheses, no whitespace)."""
    return "".join(name.translate(_TO_ASCII).split())


def agency_kind(name: str) -> AgencyKind:
    """Classify a canonical agency name into an :data:`AgencyKind` (rules in the module doc)."""
    for kind, pattern in _KIND_RULES:
        if pattern.search(name):
            return kind
    return "other"


def split_top_level(text: str, separators: str) -> list[str]:
    """Split text at separator characters that are outside brackets and quotes."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char in _OPENERS:
            depth += 1
        elif char in _CLOSERS:
            depth = max(0, depth - 1)
        if depth == 0 and char in separators:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def _find_top_level(text: str, word: str) -> int:
    """Return the index of word outside brackets and quotes, or -1."""
    depth = 0
    for index, char in enumerate(text):
        if depth == 0 and text.startswith(word, index):
            return index
        if char in _OPENERS:
            depth += 1
        elif char in _CLOSERS:
            depth = max(0, depth - 1)
    return -1


def _distribute_suffixes(items: list[str]) -> list[str]:
    """Give bare names the suffix of the next complete name in the same list.

    ``广宁县、怀集县人民政府`` gives ``广宁县人民政府``; ``张家口、廊坊市政府`` gives
    ``张家口市政府`` (a bare name takes the next name's level word 市/县/区 with the suffix);
    ``肇庆新区、…管委会`` gives ``肇庆新区管委会``.
    """
    result: list[str] = []
    for index, item in enumerate(items):
        bare_place = bool(_BARE_PLACE.search(item))
        if bare_place or not _AGENCY_ENDING.search(item):
            for later in items[index + 1 :]:
                if _BARE_PLACE.search(later) or not _AGENCY_ENDING.search(later):
                    continue
                suffix = next((s for s in _SHARED_SUFFIXES if later.endswith(s)), "")
                if suffix and not bare_place:
                    level = later[: -len(suffix)][-1:]
                    suffix = level + suffix if level in "市县区州盟旗" else suffix
                item += suffix
                break
        result.append(item)
    return result


def split_agency_list(text: str) -> tuple[list[str], bool]:
    """Split a list of agencies joined by 、 and commas; also report a trailing 等有关单位."""
    names: list[str] = []
    with_other_units = False
    for group in split_top_level(text.translate(_TO_ASCII), ","):
        items: list[str] = []
        for item in split_top_level(group, "、"):
            stripped = _OTHER_UNITS.sub("", item)
            with_other_units = with_other_units or stripped != item
            if stripped:
                items.append(canonical_agency_name(stripped))
        names.extend(_distribute_suffixes(items))
    return names, with_other_units


def _unique(names: list[str], exclude: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Drop duplicates and excluded names, keeping the first occurrence's position."""
    seen = set(exclude)
    kept: list[str] = []
    for name in names:
        if name not in seen:
            seen.add(name)
            kept.append(name)
    return tuple(kept)


def parse_responsibility(clause: str) -> Responsibility:
    """Parse the inside of a responsibility clause into lead and co-responsible agencies.

    1. Normalise full-width brackets and commas and drop whitespace.
    2. Labelled fields (``牵头单位：X；配合单位：Y``, ``责任单位：X、Y``, ``完成时限：…``) are
       read by label: 牵头单位 gives leads, 配合单位 co-responsible agencies, 责任单位 is read as an
       unlabelled clause, time fields are skipped. Without labels the clause is one field.
    3. In a field, segments that are times (``2025年6月底前完成``, ``持续推进``) are dropped, then
       the duty tail (``按职责分工负责``, ``负责``, ``配合``).
    4. If ``牵头`` occurs outside brackets, the names before it are the leads and the names
       after it (after the comma) are co-responsible; otherwise the first listed name is the
       lead (``lead_inferred``) and the rest are co-responsible.
    5. Each side is split at commas, then at 、, both only outside brackets, so that
       ``各县(市、区)人民政府`` stays whole; a trailing ``等有关单位`` sets ``with_other_units``.
    6. Within one comma group a bare name takes the suffix of the next complete name:
       ``广宁县、怀集县人民政府`` gives ``广宁县人民政府`` and ``怀集县人民政府``.
    7. Duplicates are dropped (first occurrence wins) and leads are removed from the co list.
    """
    body = "".join(clause.translate(_TO_ASCII).split())
    fields = _labelled_fields(body)
    leads: list[str] = []
    co: list[str] = []
    others = False
    inferred = False
    if fields is None:
        leads, co, others, inferred = _unlabelled(body)
    else:
        for label, value in fields:
            if label in _TIME_LABELS:
                continue
            if label in _LEAD_LABELS or label in _CO_LABELS:
                names, more = split_agency_list(_drop_times(value))
                (leads if label in _LEAD_LABELS else co).extend(names)
            else:  # 责任单位: read like an unlabelled clause
                field_leads, field_co, more, field_inferred = _unlabelled(value)
                inferred = inferred or (field_inferred and not leads)
                leads.extend(field_leads)
                co.extend(field_co)
            others = others or more
        if not leads and co:  # 配合单位 only: the first listed leads
            leads, co, inferred = co[:1], co[1:], True
    if not leads:
        raise ResponsibilityError(f"no lead agency in responsibility clause {clause!r}")
    lead_tuple = _unique(leads)
    return Responsibility(
        lead_agencies=lead_tuple,
        co_agencies=_unique(co, exclude=lead_tuple),
        lead_inferred=inferred,
        with_other_units=others,
    )


def is_responsibility_clause(clause: str) -> bool:
    """Tell whether a bracketed clause reads as a responsibility marker (names a duty)."""
    body = "".join(clause.translate(_TO_ASCII).split())
    if _labelled_fields(body) is not None:
        return any(label not in _TIME_LABELS for label, _ in _labelled_fields(body) or [])
    return _find_top_level(body, "牵头") >= 0 or bool(_DUTY_TAIL.search(_drop_times(body)))


def _labelled_fields(body: str) -> list[tuple[str, str]] | None:
    """The labelled fields of a clause in order, or None when it has no label at the start."""
    found = list(_LABEL.finditer(body))
    if not found or body[: found[0].start()].strip(",;") != "":
        return None
    fields = []
    for index, match in enumerate(found):
        end = found[index + 1].start() if index + 1 < len(found) else len(body)
        fields.append((match["label"], body[match.end() : end].strip(",;。.")))
    return fields


def _drop_times(body: str) -> str:
    """Remove the comma or semicolon segments that are times rather than agencies."""
    segments = split_top_level(body.replace(";", ","), ",")
    return ",".join(s for s in segments if not _TIME_SEGMENT.match(s.rstrip("。.")))


def _unlabelled(field: str) -> tuple[list[str], list[str], bool, bool]:
    """Leads, co-responsible agencies, other units, lead inferred of an unlabelled clause."""
    body = _DUTY_TAIL.sub("", _drop_times(field)).removeprefix("由")
    lead_at = _find_top_level(body, "牵头")
    if lead_at >= 0:
        leads, lead_others = split_agency_list(body[:lead_at])
        co, co_others = split_agency_list(
            _DUTY_TAIL.sub("", body[lead_at + len("牵头") :].lstrip(","))
        )
        return leads, co, lead_others or co_others, False
    listed, others = split_agency_list(body)
    return listed[:1], listed[1:], others, True

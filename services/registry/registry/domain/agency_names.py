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
    {"\uff08": "(", "\uff09": ")", "\u3010": "[", "\u3011": "]", "\uff0c": ",", "\u3000": " "}
)
_OPENERS = "([“"
_CLOSERS = ")]”"
_DUTY_TAIL = re.compile(r"(按职责分工负责|按职责负责|分工负责|负责|配合)$")
_OTHER_UNITS = re.compile(r"等(有关|相关)?(单位|部门)$")
# A bare place name: ends with 县/区/市/镇, optionally followed by one parenthetical.
_BARE_PLACE = re.compile(r"(县|区|市|镇)(\([^()]*\))?$")
_SHARED_SUFFIXES = ("人民政府", "管理委员会", "管委会")


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
    """Give bare place names the suffix of the next complete name (肇庆新区、…管委会)."""
    result: list[str] = []
    for index, item in enumerate(items):
        if _BARE_PLACE.search(item):
            for later in items[index + 1 :]:
                if _BARE_PLACE.search(later):
                    continue
                suffix = next((s for s in _SHARED_SUFFIXES if later.endswith(s)), "")
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

    1. Normalise full-width brackets and commas, drop whitespace and the duty tail
       (``按职责分工负责``, ``负责``, ``配合``).
    2. If ``牵头`` occurs outside brackets, the names before it are the leads and the names
       after it (after the comma) are co-responsible; otherwise the first listed name is the
       lead (``lead_inferred``) and the rest are co-responsible.
    3. Each side is split at commas, then at 、, both only outside brackets, so that
       ``各县(市、区)人民政府`` stays whole; a trailing ``等有关单位`` sets ``with_other_units``.
    4. Within one comma group a bare place name takes the suffix of the next complete name:
       ``广宁县、怀集县人民政府`` gives ``广宁县人民政府`` and ``怀集县人民政府``.
    5. Duplicates are dropped (first occurrence wins) and leads are removed from the co list.
    """
    body = "".join(clause.translate(_TO_ASCII).split())
    body = _DUTY_TAIL.sub("", body).removeprefix("由")
    lead_at = _find_top_level(body, "牵头")
    if lead_at >= 0:
        leads, lead_others = split_agency_list(body[:lead_at])
        co, co_others = split_agency_list(body[lead_at + len("牵头") :].lstrip(","))
        inferred = False
    else:
        listed, lead_others = split_agency_list(body)
        leads, co, co_others = listed[:1], listed[1:], False
        inferred = True
    if not leads:
        raise ResponsibilityError(f"no lead agency in responsibility clause {clause!r}")
    lead_tuple = _unique(leads)
    return Responsibility(
        lead_agencies=lead_tuple,
        co_agencies=_unique(co, exclude=lead_tuple),
        lead_inferred=inferred,
        with_other_units=lead_others or co_others,
    )

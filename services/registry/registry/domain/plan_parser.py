"""Parse a government work plan text (印发通知 + 工作要点) into sections, work points and agencies.

The expected shape, as in 数字肇庆建设2024年工作要点:

* optional preamble lines (e.g. a news lead-in),
* the notice: a title line ``<issuer>关于印发《<plan title>》的通知``, addressees, body, a
  signature line and a date line ``YYYY年M月D日``,
* the plan title line (equal to the title named in the notice), preface paragraphs,
* sections ``一、…`` and work points ``(一)…`` numbered continuously across sections, each
  work point ending with a responsibility clause in ASCII or full-width parentheses,
  ``[ ]`` or ``【 】``.

Errors raise :class:`PlanParseError` with a stable ``code``: ``empty_text``, ``no_notice``,
``no_issue_date``, ``no_plan_title``, ``no_sections``, ``section_numbering``,
``work_point_outside_section``, ``work_point_numbering``, ``no_work_points``,
``missing_responsibility``, ``bad_responsibility``.
"""

from __future__ import annotations

import re
from datetime import date

from duban_shared.events import REPORT_YEARS
from pydantic import BaseModel

from registry.domain.agency_names import (
    AgencyKind,
    ResponsibilityError,
    agency_kind,
    parse_responsibility,
)
from registry.domain.targets import CLAUSE_SPLIT, Target, extract_targets

_NOTICE = re.compile(r"^(?P<issuer>.+?)关于印发《(?P<title>[^》]+)》的通知$")
_DATE_LINE = re.compile(r"^(?P<y>\d{4})年(?P<m>\d{1,2})月(?P<d>\d{1,2})日$")
_SECTION = re.compile(r"^(?P<num>[一二三四五六七八九十]{1,3})、(?P<title>\S.*)$")
_WORK_POINT = re.compile(r"^[(\uff08](?P<num>[一二三四五六七八九十]{1,3})[)\uff09](?P<body>.*)$")
_YEAR = re.compile(r"(\d{4})年")
_CN_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CLAUSE_OPEN = "(\uff08[\u3010"
_CLAUSE_CLOSE = ")\uff09]\u3011"
_DUTY_WORDS = ("牵头", "负责", "配合")


class PlanParseError(ValueError):
    """A text that does not have the shape of a work plan; ``code`` is stable, ``line`` 1-based."""

    def __init__(self, code: str, message: str, line: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.line = line


class PlanInfo(BaseModel):
    """Plan metadata read from the notice and the plan title line."""

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
    """A numbered work point ``(一)…`` with its responsibility split into agencies."""

    number: int
    code: str
    section: int
    title: str
    text: str
    lead_agencies: list[str]
    co_agencies: list[str]
    lead_inferred: bool
    with_other_units: bool
    targets: list[Target]
    responsibility: str
    line: int


class Agency(BaseModel):
    """A distinct agency under its canonical name."""

    name: str
    kind: AgencyKind


class ParsedPlan(BaseModel):
    """The whole parsed plan."""

    plan: PlanInfo
    sections: list[Section]
    work_points: list[WorkPoint]
    agencies: list[Agency]


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


def split_responsibility(paragraph: str) -> tuple[str, str] | None:
    """Split a paragraph into (text, clause inside the brackets), or None if no clause ends it."""
    body = paragraph.rstrip()
    if not body or body[-1] not in _CLAUSE_CLOSE:
        return None
    depth = 0
    for index in range(len(body) - 1, -1, -1):
        if body[index] in _CLAUSE_CLOSE:
            depth += 1
        elif body[index] in _CLAUSE_OPEN:
            depth -= 1
            if depth == 0:
                clause = body[index + 1 : -1]
                if not any(word in clause for word in _DUTY_WORDS):
                    return None
                return body[:index].rstrip(), clause
    return None


def _find_header(lines: list[tuple[int, str]]) -> tuple[PlanInfo, int]:
    """Read notice, issuer, date and plan title; return metadata and the title's list index."""
    notice_at = next((i for i, (_, s) in enumerate(lines) if _NOTICE.match(s)), None)
    if notice_at is None:
        raise PlanParseError(
            "no_notice", "no notice line like '…关于印发《<plan title>》的通知' was found"
        )
    notice_line, notice_text = lines[notice_at]
    notice = _NOTICE.match(notice_text)
    assert notice is not None
    date_at = next(
        (i for i in range(notice_at + 1, len(lines)) if _DATE_LINE.match(lines[i][1])), None
    )
    if date_at is None:
        raise PlanParseError(
            "no_issue_date",
            f"no date line like '2024年8月6日' after the notice on line {notice_line}",
            notice_line,
        )
    date_line, date_text = lines[date_at]
    found = _DATE_LINE.match(date_text)
    assert found is not None
    try:
        issued_on = date(int(found["y"]), int(found["m"]), int(found["d"]))
    except ValueError as exc:
        raise PlanParseError(
            "no_issue_date", f"line {date_line}: {date_text!r} is not a valid date", date_line
        ) from exc
    signature = lines[date_at - 1][1] if date_at - 1 > notice_at else ""
    issuer = signature if signature and not CLAUSE_SPLIT.search(signature) else notice["issuer"]
    title = notice["title"].strip()
    title_at = next(
        (i for i in range(date_at + 1, len(lines)) if "".join(lines[i][1].split()) == title), None
    )
    if title_at is None:
        raise PlanParseError(
            "no_plan_title",
            f"the notice on line {notice_line} names the plan {title!r}, but no line after the "
            f"date on line {date_line} is exactly that title",
            date_line,
        )
    year_match = _YEAR.search(title)
    year = int(year_match.group(1)) if year_match else issued_on.year
    if year not in REPORT_YEARS:  # its work points would be due that year: no calendar has it
        raise PlanParseError(
            "plan_year_out_of_range",
            f"the plan {title!r} is for {year}; plans of the years {REPORT_YEARS[0]} to "
            f"{REPORT_YEARS[-1]} can be tracked (check the year in its title)",
            lines[title_at][0],
        )
    info = PlanInfo(title=title, issuer=issuer, issued_on=issued_on, year=year, preface="")
    return info, title_at


def _work_point(number: int, section: int, line: int, paragraph: str) -> WorkPoint:
    """Build a work point from its paragraph (without the ``(一)`` marker)."""
    split = split_responsibility(paragraph)
    if split is None:
        raise PlanParseError(
            "missing_responsibility",
            f"line {line}: work point {number} does not end with a responsibility clause in "
            "brackets, e.g. '(市…局牵头,…按职责分工负责)'; add one naming the lead agency",
            line,
        )
    text, clause = split
    try:
        duty = parse_responsibility(clause)
    except ResponsibilityError as exc:
        raise PlanParseError("bad_responsibility", f"line {line}: {exc}", line) from exc
    return WorkPoint(
        number=number,
        code=str(number),
        section=section,
        title=text.split("。", 1)[0].strip(),
        text=text,
        lead_agencies=list(duty.lead_agencies),
        co_agencies=list(duty.co_agencies),
        lead_inferred=duty.lead_inferred,
        with_other_units=duty.with_other_units,
        targets=extract_targets(text),
        responsibility=clause,
        line=line,
    )


def _numeral(code: str, line: int, marker: str, expected: int) -> int:
    """Convert a heading numeral, reporting an unreadable one as a numbering error."""
    try:
        return chinese_numeral(marker)
    except ValueError as exc:
        raise PlanParseError(
            code, f"line {line}: cannot read numeral {marker!r}; expected {expected}", line
        ) from exc


def parse_plan(text: str) -> ParsedPlan:
    """Parse a plan text into metadata, sections, work points and agencies.

    1. Split into non-empty stripped lines, keeping 1-based line numbers.
    2. Find the notice title ``…关于印发《X》的通知``; the date line after it gives
       ``issued_on``, the line just before the date (the signature) gives the issuer, and
       the first later line equal to ``X`` is the plan title.
    3. Lines between the title and the first ``一、`` heading are the preface.
    4. Walk the rest: ``N、`` starts a section, ``(N)`` a work point; other lines continue the
       current work point (lines before a section's first work point are skipped as its
       intro). Sections count 1, 2, ...; work points count on across sections.
    5. Each work point's trailing bracketed clause is split off and parsed into agencies;
       targets are extracted from the remaining text.
    6. Agencies are listed once each, in order of first appearance, with their kind.
    """
    lines = [
        (number, stripped)
        for number, raw in enumerate(text.removeprefix("\ufeff").splitlines(), start=1)
        if (stripped := raw.strip())
    ]
    if not lines:
        raise PlanParseError("empty_text", "the plan text is empty")
    info, title_at = _find_header(lines)
    body = lines[title_at + 1 :]
    first_section = next((i for i, (_, s) in enumerate(body) if _SECTION.match(s)), None)
    if first_section is None:
        raise PlanParseError(
            "no_sections",
            f"no section heading like '一、…' after the plan title on line {lines[title_at][0]}",
            lines[title_at][0],
        )
    for line, content in body[:first_section]:
        if _WORK_POINT.match(content):
            raise PlanParseError(
                "work_point_outside_section",
                f"line {line}: work point before the first section heading; add a '一、…' line",
                line,
            )
    info.preface = "\n".join(content for _, content in body[:first_section])

    sections: list[Section] = []
    drafts: list[tuple[int, int, int, list[str]]] = []  # number, section, line, paragraphs
    for line, content in body[first_section:]:
        if heading := _SECTION.match(content):
            expected = len(sections) + 1
            number = _numeral("section_numbering", line, heading["num"], expected)
            if number != expected:
                raise PlanParseError(
                    "section_numbering",
                    f"line {line}: section {heading['num']} ({number}) found where section "
                    f"{expected} was expected; sections must be numbered 一、二、三、… in order",
                    line,
                )
            sections.append(Section(number=number, title=heading["title"].strip(), line=line))
        elif point := _WORK_POINT.match(content):
            expected = len(drafts) + 1
            number = _numeral("work_point_numbering", line, point["num"], expected)
            if number != expected:
                raise PlanParseError(
                    "work_point_numbering",
                    f"line {line}: work point ({point['num']}) ({number}) found where work "
                    f"point {expected} was expected; work points are numbered continuously "
                    "across sections",
                    line,
                )
            drafts.append((number, sections[-1].number, line, [point["body"].strip()]))
        elif drafts and drafts[-1][1] == sections[-1].number:
            drafts[-1][3].append(content)
    if not drafts:
        raise PlanParseError("no_work_points", "no work point like '(一)…' was found")

    work_points = [_work_point(n, s, line, "\n".join(parts)) for n, s, line, parts in drafts]
    agencies: dict[str, Agency] = {}
    for work_point in work_points:
        for name in work_point.lead_agencies + work_point.co_agencies:
            agencies.setdefault(name, Agency(name=name, kind=agency_kind(name)))
    return ParsedPlan(
        plan=info, sections=sections, work_points=work_points, agencies=list(agencies.values())
    )

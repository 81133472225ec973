"""The head of a plan text: its title, issuer, date and year, with or without a notice.

Three shapes are read:

* a notice ``<issuer>关于印发《<title>》的通知`` (the 《》 may be missing), its addressees and
  body, a signature and a date line, then the plan's title line and its preface;
* no notice: the title first (after any news lead-in), then perhaps a date (and the issuer on
  the line before it), then the preface;
* either one after a news lead-in (``近日，…印发…``), which is skipped.

Without a date in the head, a signature and date after the plan's last line are used. The
body starts at the first section heading ``一、`` after the title.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from duban_shared.events import REPORT_YEARS

from registry.domain.plan_errors import ParseNote, PlanParseError

NOTICE = re.compile(r"^(?P<issuer>.+?)关于印发(?P<title>.+?)的通知$")
DATE_LINE = re.compile(r"^[(\uff08]?(?P<y>\d{4})年(?P<m>\d{1,2})月(?P<d>\d{1,2})日[)\uff09]?$")
SECTION = re.compile(r"^(?P<num>[一二三四五六七八九十]{1,3})、(?P<title>\S.*)$")
# How the title of a plan ends (工作要点, 行动方案, 实施意见, ...).
_GENRE = re.compile(
    r"(要点|方案|意见|计划|措施|规划|办法|细则|清单|安排)([(\uff08][^()\uff08\uff09]*[)\uff09])?$"
)
# The plan's (first) year: 2025年, or 2025 in a range 2025—2026年.
_YEAR = re.compile(r"(\d{4})(?:年|\s*[—–\-~～至到]\s*\d{4}年)")
_SENTENCE_END = "。；;，,：:！？"
# Lines after the plan's last work point that end its body.
_BODY_END = re.compile(r"^(附件|抄送|[(\uff08]此件.*[)\uff09]$)")

Line = tuple[int, str]


@dataclass
class Header:
    """What the head of the text says, and where the plan's body starts and ends."""

    title: str
    issuer: str
    issued_on: date
    year: int
    preface: str
    body_start: int  # index of the first section heading in the lines
    body_end: int  # index after the body's last line
    notes: list[ParseNote]


def _plain(text: str) -> str:
    """A title as compared: no whitespace, no 《》."""
    return "".join(text.split()).replace("《", "").replace("》", "")


def _read_date(line: Line) -> date:
    found = DATE_LINE.match(line[1])
    assert found is not None
    try:
        return date(int(found["y"]), int(found["m"]), int(found["d"]))
    except ValueError as exc:
        raise PlanParseError(
            "no_issue_date", f"line {line[0]}: {line[1]!r} is not a valid date", line[0]
        ) from exc


def _signature(lines: list[Line], at: int, floor: int) -> str:
    """The issuer on the line before a date line, if that line looks like a signature."""
    if at - 1 <= floor:
        return ""
    text = lines[at - 1][1]
    if len(text) > 40 or any(mark in text for mark in _SENTENCE_END) or SECTION.match(text):
        return ""
    return text


def _first(lines: list[Line], start: int, end: int, pattern: re.Pattern[str]) -> int | None:
    return next((i for i in range(start, end) if pattern.match(lines[i][1])), None)


def _body_end(lines: list[Line], start: int) -> tuple[int, int | None]:
    """Where the body ends (a trailing signature and date, 附件, 抄送) and the date's index."""
    for index in range(start, len(lines)):
        text = lines[index][1]
        if DATE_LINE.match(text):
            return (index - 1 if _signature(lines, index, start) else index), index
        if _BODY_END.match(text):
            return index, None
    return len(lines), None


def find_header(lines: list[Line]) -> Header:
    """Read the head of a plan (see the module doc); raise PlanParseError when it has none."""
    notes: list[ParseNote] = []
    notice_at = _first(lines, 0, len(lines), NOTICE)
    issuer = ""
    issued_on: date | None = None
    if notice_at is not None:
        notice = NOTICE.match(lines[notice_at][1])
        assert notice is not None
        title = _plain(notice["title"])
        date_at = _first(lines, notice_at + 1, len(lines), DATE_LINE)
        if date_at is None:
            raise PlanParseError(
                "no_issue_date",
                f"no date line like '2024年8月6日' after the notice on line {lines[notice_at][0]}",
                lines[notice_at][0],
            )
        issued_on = _read_date(lines[date_at])
        issuer = _signature(lines, date_at, notice_at) or notice["issuer"]
        title_at = next(
            (i for i in range(date_at + 1, len(lines)) if _plain(lines[i][1]) == title), None
        )
        if title_at is None:
            raise PlanParseError(
                "no_plan_title",
                f"the notice on line {lines[notice_at][0]} names the plan {title!r}, but no line "
                f"after the date on line {lines[date_at][0]} is exactly that title",
                lines[date_at][0],
            )
        head_end = title_at + 1
    else:
        first_section = _first(lines, 0, len(lines), SECTION)
        limit = len(lines) if first_section is None else first_section
        title_at = next(
            (
                i
                for i in range(limit)
                if _GENRE.search(lines[i][1])
                and len(lines[i][1]) <= 60
                and not any(mark in lines[i][1] for mark in _SENTENCE_END.replace("，", ""))
            ),
            None,
        )
        if title_at is None:
            where = f"line {lines[first_section][0]}" if first_section is not None else "the end"
            raise PlanParseError(
                "no_plan_title",
                "no plan title was found: neither a notice '…关于印发《<plan title>》的通知' nor a "
                f"title line ending in 要点, 方案, 意见, 计划 or 措施 before {where}",
                lines[first_section][0] if first_section is not None else None,
            )
        title = _plain(lines[title_at][1])
        head_end = title_at + 1
        date_at = _first(lines, title_at + 1, limit, DATE_LINE)
        if date_at is not None and date_at <= title_at + 2:  # a date (and issuer) under the title
            issued_on = _read_date(lines[date_at])
            issuer = _signature(lines, date_at, title_at)
            head_end = date_at + 1
    body_start = _first(lines, head_end, len(lines), SECTION)
    if body_start is None:
        raise PlanParseError(
            "no_sections",
            f"no section heading like '一、…' after the plan title on line {lines[title_at][0]}",
            lines[title_at][0],
        )
    body_end, end_date_at = _body_end(lines, body_start)
    if issued_on is None and end_date_at is not None:  # signed and dated at the end
        issued_on = _read_date(lines[end_date_at])
        issuer = _signature(lines, end_date_at, body_start)
    year_match = _YEAR.search(title)
    year = int(year_match.group(1)) if year_match else issued_on.year if issued_on else None
    if year is None:
        raise PlanParseError(
            "no_plan_year",
            f"the plan {title!r} on line {lines[title_at][0]} names no year and carries no date; "
            "add the year to its title (e.g. '…2025年工作要点') or a date line",
            lines[title_at][0],
        )
    if year not in REPORT_YEARS:  # its work points would be due that year: no calendar has it
        raise PlanParseError(
            "plan_year_out_of_range",
            f"the plan {title!r} is for {year}; plans of the years {REPORT_YEARS[0]} to "
            f"{REPORT_YEARS[-1]} can be tracked (check the year in its title)",
            lines[title_at][0],
        )
    if issued_on is None:
        issued_on = date(year, 1, 1)
        notes.append(
            ParseNote(
                line=lines[title_at][0],
                code="no_issue_date",
                message=f"no date line like '{year}年3月12日' was found; the plan is dated "
                f"1 January {year}",
            )
        )
    preface = "\n".join(text for _, text in lines[head_end:body_start])
    return Header(
        title=title,
        issuer=issuer,
        issued_on=issued_on,
        year=year,
        preface=preface,
        body_start=body_start,
        body_end=body_end,
        notes=notes,
    )

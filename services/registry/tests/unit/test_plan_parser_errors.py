"""The plan parser's refusals: each malformed text gets a stable code, the line and a message
that says what to fix (the 2024 plan with one line changed)."""

from __future__ import annotations

import pytest
from registry.domain.plan_parser import PlanParseError, parse_plan

from services.registry.tests.unit.plan_text import plan_lines, plan_text


def _parse_error(text: str) -> PlanParseError:
    with pytest.raises(PlanParseError) as caught:
        parse_plan(text)
    return caught.value


def _replace_line(number: int, new: str | None) -> str:
    lines = plan_lines()
    if new is None:
        del lines[number - 1]
    else:
        lines[number - 1] = new
    return "\n".join(lines)


def test_empty_text_is_an_error() -> None:
    assert _parse_error("  \n\n").code == "empty_text"


def test_text_without_notice_or_title_is_an_error() -> None:
    error = _parse_error("这不是一份工作要点。\n一、总体要求")
    assert error.code == "no_plan_title"
    assert error.line == 2 and "line 2" in error.message


def test_missing_date_line_is_an_error() -> None:
    error = _parse_error(_replace_line(7, None))
    assert error.code == "no_issue_date"
    assert "line 3" in error.message


def test_missing_plan_title_is_an_error() -> None:
    error = _parse_error(_replace_line(8, None))
    assert error.code == "no_plan_title"
    assert "数字肇庆建设2024年工作要点" in error.message


def test_plan_without_sections_is_an_error() -> None:
    error = _parse_error("\n".join(plan_lines()[:9]))
    assert error.code == "no_sections"
    assert "line 8" in error.message


def test_skipped_work_point_number_is_an_error() -> None:
    error = _parse_error(_replace_line(16, None))
    assert error.code == "work_point_numbering"
    assert error.line == 16
    assert "line 16" in error.message


def test_wrong_section_number_is_an_error() -> None:
    error = _parse_error(_replace_line(19, "四、加强数字技术创新"))
    assert error.code == "section_numbering"
    assert error.line == 19


def test_work_point_before_first_section_is_an_error() -> None:
    lines = plan_lines()
    lines.insert(9, lines[10])
    assert _parse_error("\n".join(lines)).code == "work_point_outside_section"


def test_work_point_without_marker_is_reported_not_dropped() -> None:
    line = plan_lines()[11]
    parsed = parse_plan(_replace_line(12, line[: line.rindex("(")]))
    assert [w.code for w in parsed.work_points][:3] == ["1", "3", "4"]
    assert [(u.code, u.line) for u in parsed.unmarked] == [("2", 12)]
    assert parsed.unmarked[0].text.startswith("探索智慧应用场景建设。")
    note = next(n for n in parsed.notes if n.code == "unmarked_item")
    assert note.line == 12 and "line 12" in note.message


def test_trailing_parenthetical_that_names_no_duty_is_not_a_marker() -> None:
    line = plan_lines()[11]
    parsed = parse_plan(_replace_line(12, line[: line.rindex("(")] + "(试点)"))
    assert [(u.code, u.line) for u in parsed.unmarked] == [("2", 12)]
    assert parsed.unmarked[0].text.endswith("(试点)")


def test_responsibility_clause_without_agencies_is_an_error() -> None:
    line = plan_lines()[11]
    error = _parse_error(_replace_line(12, line[: line.rindex("(")] + "(牵头)"))
    assert error.code == "bad_responsibility"
    assert error.line == 12


def test_a_plan_for_a_year_outside_2000_to_2099_is_an_error() -> None:
    # Its work points would be due that year, which no working-day calendar covers.
    error = _parse_error(plan_text().replace("建设2024年工作要点", "建设1924年工作要点"))
    assert error.code == "plan_year_out_of_range"
    assert "1924" in error.message and error.line == 8

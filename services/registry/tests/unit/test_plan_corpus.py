"""Every plan of the corpus (invented texts in the layouts plans are published in) parses to its
hand-written expected extraction, in plain text, GB18030, Word and a saved web page; every work
point traces back to its line."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import docx
import pytest
from registry.adapters.plan_files import read_plan_file
from registry.domain.agency_names import canonical_agency_name
from registry.domain.plan_parser import ParsedPlan, parse_plan
from registry.domain.plan_review import parse_report

from .plan_corpus import corpus_expected, corpus_names, corpus_text

NAMES = corpus_names()


def test_the_corpus_has_at_least_six_layouts() -> None:
    assert len(NAMES) >= 6
    numberings = {corpus_expected(name)["numbering"] for name in NAMES}
    assert numberings == {"continuous", "per_section", "per_group"}


def _got(parsed: ParsedPlan) -> dict[str, Any]:
    """The parse in the shape of an expected file."""
    dated = not any(note.code == "no_issue_date" for note in parsed.notes)
    return {
        "title": parsed.plan.title,
        "issuer": parsed.plan.issuer,
        "issued_on": parsed.plan.issued_on.isoformat() if dated else None,
        "year": parsed.plan.year,
        "numbering": parsed.numbering,
        "sections": [{"number": s.number, "title": s.title} for s in parsed.sections],
        "work_points": [
            {
                "id": w.code,
                "section": w.section,
                "line": w.line,
                "lead": w.lead_agencies,
                "co": w.co_agencies,
                "lead_inferred": w.lead_inferred,
                "with_other_units": w.with_other_units,
                "several_markers": w.several_markers,
                "due_on": w.due_on.isoformat() if w.due_on else None,
                "targets": [
                    {"value": t.value, "unit": t.unit, "comparator": t.comparator}
                    for t in w.targets
                ],
            }
            for w in parsed.work_points
        ],
        "unmarked_lines": [u.line for u in parsed.unmarked],
    }


def _expected(name: str) -> dict[str, Any]:
    expected = corpus_expected(name)
    for point in expected["work_points"]:  # metric wording is not part of the contract
        point["targets"] = [
            {key: t[key] for key in ("value", "unit", "comparator")} for t in point["targets"]
        ]
    return expected


@pytest.mark.parametrize("name", NAMES)
def test_each_plan_parses_to_its_expected_extraction(name: str) -> None:
    assert _got(parse_plan(corpus_text(name))) == _expected(name)


@pytest.mark.parametrize("name", NAMES)
def test_every_work_point_traces_back_to_its_line(name: str) -> None:
    text = corpus_text(name)
    lines = text.splitlines()
    report = parse_report(parse_plan(text))
    for point in report["work_points"]:
        assert point["title"][:10] in lines[point["line"] - 1], (name, point["code"])
        for marker_line in point["marker_lines"]:  # each marker names one of its agencies
            names = [n[:3] for n in point["lead"] + point["co"]]
            line = canonical_agency_name(lines[marker_line - 1])
            assert any(n in line for n in names), (name, point["code"])
    for item in report["unmarked"]:
        assert item["text"].split("\n")[0][:10] in lines[item["line"] - 1]


def _write(name: str, kind: str, folder: Path) -> Path:
    text = corpus_text(name)
    path = folder / f"{name}.{kind}"
    if kind == "gb18030.txt":
        path.write_bytes(text.replace("\n", "\r\n").encode("gb18030"))
    elif kind == "docx":
        document = docx.Document()
        for line in text.splitlines():
            document.add_paragraph(line)
        document.save(str(path))
    else:
        paragraphs = "".join(f"<p>{html.escape(line)}</p>\n" for line in text.splitlines())
        path.write_text(
            f'<html><head><meta charset="utf-8"><title>{html.escape(name)}</title></head>'
            f'<body><div class="nav">首页 &gt; 政策文件</div><div class="article">{paragraphs}'
            "</div></body></html>",
            encoding="utf-8",
        )
    return path


@pytest.mark.parametrize("kind", ["gb18030.txt", "docx", "html"])
@pytest.mark.parametrize("name", NAMES)
def test_each_plan_reads_the_same_from_every_format(name: str, kind: str, tmp_path: Path) -> None:
    parsed = parse_plan(read_plan_file(_write(name, kind, tmp_path)))
    got, expected = _got(parsed), _expected(name)
    for point in [*got["work_points"], *expected["work_points"]]:
        point.pop("line")  # a web page has lines of its own before the plan
    got.pop("unmarked_lines"), expected.pop("unmarked_lines")
    assert got == expected
    assert len(parsed.unmarked) == len(corpus_expected(name)["unmarked_lines"])

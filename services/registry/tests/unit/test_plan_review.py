"""The office's review before an import: the parse report and corrections (plan_review)."""

from __future__ import annotations

import pytest
from registry.domain.errors import Refusal
from registry.domain.plan_parser import ParsedPlan, parse_plan
from registry.domain.plan_review import (
    Correction,
    apply_corrections,
    parse_report,
    read_corrections,
    review_key,
)

TEXT = (
    "东岭市数字政府建设2025年工作要点\n东岭市人民政府办公室\n2025年3月12日\n"
    "一、夯实基础\n1.建设网络，9月底前完成。（市工信局、市通信办按职责分工负责）\n"
    "2.加强学习。\n"
    "二、完善制度\n1.完善制度，新增标准5项。（市司法局牵头）\n"
)


def _parsed() -> ParsedPlan:
    return parse_plan(TEXT)


def _refusal(parsed: ParsedPlan, corrections: dict[str, Correction], skip: bool) -> Refusal:
    with pytest.raises(Refusal) as caught:
        apply_corrections(parsed, corrections, skip_unmarked=skip)
    return caught.value


def test_the_report_places_every_work_point_and_lists_the_unmarked_item() -> None:
    report = parse_report(_parsed(), known_agencies={"市工信局"})
    assert [(w["code"], w["line"]) for w in report["work_points"]] == [("1.1", 5), ("2.1", 8)]
    assert [(u["code"], u["line"]) for u in report["unmarked"]] == [("1.2", 6)]
    assert report["summary"] == {
        "sections": 2,
        "work_points": 2,
        "unmarked": 1,
        "targets": 1,
        "with_due_date": 1,
        "agencies": 3,
    }
    assert {a["name"]: a["new"] for a in report["agencies"]} == {
        "市工信局": False,
        "市通信办": True,
        "市司法局": True,
    }
    assert report["work_points"][0]["due_on"] == "2025-09-30"
    for point in report["work_points"]:  # each work point traces back to its line
        assert point["title"] in TEXT.splitlines()[point["line"] - 1]


def test_an_unmarked_item_refuses_the_import_until_corrected_or_skipped() -> None:
    refusal = _refusal(_parsed(), {}, skip=False)
    assert (refusal.status, refusal.code) == (422, "unmarked_items")
    assert "line" in refusal.message and "6" in refusal.message
    assert refusal.details == {"items": [{"code": "1.2", "line": 6}]}
    skipped = apply_corrections(_parsed(), {}, skip_unmarked=True)
    assert [w.code for w in skipped.work_points] == ["1.1", "2.1"]


def test_a_corrected_unmarked_item_becomes_a_work_point_in_its_place() -> None:
    fixed = apply_corrections(
        _parsed(), {"1.2": Correction(lead=["市委组织部"], co=["市人社局"])}, skip_unmarked=False
    )
    assert [(w.code, w.number) for w in fixed.work_points] == [("1.1", 1), ("1.2", 2), ("2.1", 3)]
    added = fixed.work_points[1]
    assert (added.lead_agencies, added.co_agencies, added.lead_inferred) == (
        ["市委组织部"],
        ["市人社局"],
        False,
    )
    assert [a.name for a in fixed.agencies] == [
        "市工信局",
        "市通信办",
        "市委组织部",
        "市人社局",
        "市司法局",
    ]
    assert fixed.unmarked == []


def test_a_correction_of_agencies_makes_the_lead_the_offices() -> None:
    fixed = apply_corrections(
        _parsed(),
        {"1.1": Correction(lead=["市通信办"]), "1.2": Correction(lead=["市工信局"])},
        skip_unmarked=False,
    )
    first = fixed.work_points[0]
    # co keeps the text's co-responsible agencies without the new lead
    assert (first.lead_agencies, first.co_agencies, first.lead_inferred) == (
        ["市通信办"],
        [],
        False,
    )


def test_a_corrected_text_is_read_again_for_targets_and_deadlines() -> None:
    fixed = apply_corrections(
        _parsed(),
        {"2.1": Correction(text="完善制度，年底前新增标准8项。", title="完善制度")},
        skip_unmarked=True,
    )
    point = fixed.work_points[1]
    assert [(t.value, t.unit) for t in point.targets] == [(8, "项")]
    assert point.due_on is not None and point.due_on.isoformat() == "2025-12-31"


def test_corrections_of_unknown_items_or_without_a_lead_are_refused() -> None:
    assert _refusal(_parsed(), {"9.9": Correction(lead=["市工信局"])}, skip=True).code == (
        "unknown_item"
    )
    assert _refusal(_parsed(), {"1.2": Correction(co=["市工信局"])}, skip=False).code == (
        "correction_needs_lead"
    )


def test_corrections_read_from_json_and_refused_when_malformed() -> None:
    assert read_corrections('{"1.2": {"lead": ["市工信局"]}}') == {
        "1.2": Correction(lead=["市工信局"])
    }
    for bad in ('{"x": {"lead": ["a"]}}', '{"1.2": {"lead": []}}', '{"1.2": {"boss": ["a"]}}', "["):
        with pytest.raises(Refusal) as caught:
            read_corrections(bad)
        assert caught.value.code == "bad_corrections"


def test_the_review_key_changes_with_the_offices_decisions() -> None:
    assert review_key({}, skip_unmarked=False) == ""
    one = review_key({"1.2": Correction(lead=["市工信局"])}, skip_unmarked=False)
    assert one and one != review_key({}, skip_unmarked=True)
    assert one == review_key({"1.2": Correction(lead=["市工信局"])}, skip_unmarked=False)

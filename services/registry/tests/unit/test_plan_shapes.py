"""The parser on the shapes plans come in, one feature at a time: heads with or without a
notice, numbering styles and schemes, marker forms, deadlines, and what it refuses.

Each text is small and written for the test; the full plans are in test_plan_corpus.py.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from registry.domain.agency_names import parse_responsibility
from registry.domain.deadlines import deadlines, due_date
from registry.domain.plan_parser import PlanParseError, parse_plan
from registry.domain.targets import extract_targets

HEAD = "东岭市数字政府建设2025年工作要点\n东岭市人民政府办公室\n2025年3月12日\n"


def _plan(body: str, head: str = HEAD) -> str:
    return head + body


def test_a_title_first_plan_with_its_issuer_and_date_under_the_title() -> None:
    parsed = parse_plan(_plan("一、夯实基础\n（一）建设网络。（市工信局牵头）\n"))
    assert parsed.plan.title == "东岭市数字政府建设2025年工作要点"
    assert (parsed.plan.issuer, parsed.plan.issued_on) == (
        "东岭市人民政府办公室",
        date(2025, 3, 12),
    )
    assert parsed.notes == []


def test_a_news_lead_in_is_skipped_and_a_date_at_the_end_is_read() -> None:
    text = (
        "近日，东岭市印发了数字政府建设工作要点，全文如下。\n"
        "东岭市数字政府建设2025年工作要点\n为推进数字政府建设，制定本要点。\n"
        "一、夯实基础\n（一）建设网络。（市工信局牵头）\n东岭市人民政府办公室\n2025年4月1日\n"
    )
    parsed = parse_plan(text)
    assert parsed.plan.preface == "为推进数字政府建设，制定本要点。"
    assert (parsed.plan.issuer, parsed.plan.issued_on) == ("东岭市人民政府办公室", date(2025, 4, 1))
    assert parsed.work_points[0].text == "建设网络。"  # the signature is not part of it


def test_a_notice_without_book_title_marks() -> None:
    text = (
        "东岭市人民政府办公室关于印发东岭市数字政府建设2025年工作要点的通知\n各区人民政府：\n"
        "现将东岭市数字政府建设2025年工作要点印发给你们，请认真贯彻执行。\n"
        "东岭市人民政府办公室\n2025年3月12日\n东岭市数字政府建设2025年工作要点\n"
        "一、夯实基础\n（一）建设网络。（市工信局牵头）\n"
    )
    parsed = parse_plan(text)
    assert parsed.plan.title == "东岭市数字政府建设2025年工作要点"
    assert parsed.plan.issuer == "东岭市人民政府办公室"


def test_a_plan_without_a_date_is_dated_1_january_and_says_so() -> None:
    parsed = parse_plan(
        "东岭市数字政府建设2025年工作要点\n一、夯实基础\n（一）建设网络。（市工信局牵头）"
    )
    assert parsed.plan.issued_on == date(2025, 1, 1)
    assert [n.code for n in parsed.notes] == ["no_issue_date"]


def test_a_year_range_in_the_title_gives_its_first_year() -> None:
    parsed = parse_plan(
        "东岭省数字经济行动方案（2025—2027年）\n一、夯实基础\n（一）建设网络。（省工信厅牵头）"
    )
    assert parsed.plan.year == 2025


def test_a_title_without_year_or_date_is_refused() -> None:
    with pytest.raises(PlanParseError) as caught:
        parse_plan("东岭市数字政府建设工作要点\n一、夯实基础\n（一）建设网络。（市工信局牵头）")
    assert caught.value.code == "no_plan_year" and caught.value.line == 1


@pytest.mark.parametrize(
    ("item", "next_item", "codes", "numbering"),
    [
        ("（一）", "（二）", ["1", "2", "3"], "continuous"),
        ("1.", "2.", ["1.1", "1.2", "2.1"], "per_section"),
        ("1．", "2．", ["1.1", "1.2", "2.1"], "per_section"),
        ("(1)", "(2)", ["1.1", "1.2", "2.1"], "per_section"),
        ("１．", "２．", ["1.1", "1.2", "2.1"], "per_section"),
    ],
)
def test_numbering_styles_and_schemes(
    item: str, next_item: str, codes: list[str], numbering: str
) -> None:
    third = "（三）" if numbering == "continuous" else item
    body = (
        f"一、甲\n{item}建设网络。（市工信局牵头）\n{next_item}建设平台。（市数据局牵头）\n"
        f"二、乙\n{third}完善制度。（市司法局牵头）\n"
    )
    parsed = parse_plan(_plan(body))
    assert [w.code for w in parsed.work_points] == codes
    assert [w.number for w in parsed.work_points] == [1, 2, 3]
    assert parsed.numbering == numbering


def test_work_points_numbered_under_group_headings_get_three_part_ids() -> None:
    body = (
        "一、甲\n（一）网络\n1.建设网络。\n（1）建设骨干网。\n（2）建设城域网。\n"
        "责任单位：市工信局、市通信办\n2.建设平台。\n责任单位：市数据局\n"
        "（二）制度\n1.完善制度。\n责任单位：市司法局\n"
    )
    parsed = parse_plan(_plan(body))
    assert [w.code for w in parsed.work_points] == ["1.1.1", "1.1.2", "1.2.1"]
    first = parsed.work_points[0]
    assert first.text == "建设网络。\n（1）建设骨干网。\n（2）建设城域网。"
    assert first.group == "（一）网络"
    assert (first.lead_agencies, first.co_agencies, first.lead_inferred) == (
        ["市工信局"],
        ["市通信办"],
        True,
    )
    assert first.marker_lines == [9]


def test_a_numbering_that_fits_no_scheme_names_the_line_and_what_was_expected() -> None:
    body = "一、甲\n1.建设网络。（市工信局牵头）\n3.建设平台。（市数据局牵头）\n"
    with pytest.raises(PlanParseError) as caught:
        parse_plan(_plan(body))
    assert caught.value.code == "work_point_numbering"
    assert caught.value.line == 6
    assert "line 6" in caught.value.message and "2 was expected" in caught.value.message


def test_several_markers_in_one_work_point_are_merged_and_flagged() -> None:
    body = (
        "一、甲\n（一）建设网络。\n（1）建设骨干网。（市工信局牵头，市通信办配合）\n"
        "（2）建设城域网。（市通信办、市住建局按职责分工负责）\n（二）建设平台。（市数据局牵头）\n"
    )
    point = parse_plan(_plan(body)).work_points[0]
    assert point.several_markers
    assert point.lead_agencies == ["市工信局", "市通信办"]
    assert point.co_agencies == ["市住建局"]
    assert "（1）建设骨干网。" in point.text and "牵头" not in point.text


def test_a_group_heading_marker_applies_to_its_unmarked_work_points() -> None:
    body = (
        "一、甲\n（一）网络建设（市工信局牵头）\n1.建设骨干网。\n2.建设城域网。（市通信办负责）\n"
        "3.建设物联网。（市数据局负责）\n"
    )
    parsed = parse_plan(_plan(body))
    assert [(w.code, w.lead_agencies) for w in parsed.work_points] == [
        ("1", ["市工信局"]),  # numbered 1, 2, 3 across the plan: continuous ids
        ("2", ["市通信办"]),
        ("3", ["市数据局"]),
    ]
    assert [n.code for n in parsed.notes] == ["group_marker"]


def test_unmarked_items_are_reported_with_their_lines() -> None:
    body = (
        "一、甲\n（一）建设网络。（市工信局牵头）\n（二）加强学习。\n"
        "（三）建设平台。（市数据局牵头）\n"
    )
    parsed = parse_plan(_plan(body))
    assert [w.code for w in parsed.work_points] == ["1", "3"]
    assert [(u.code, u.line, u.text) for u in parsed.unmarked] == [("2", 6, "加强学习。")]


@pytest.mark.parametrize(
    ("clause", "leads", "cos", "inferred", "others"),
    [
        (
            "市发改局牵头，市财政局、市工信局配合",
            ["市发改局"],
            ["市财政局", "市工信局"],
            False,
            False,
        ),
        ("牵头单位：市发改局；配合单位：市财政局", ["市发改局"], ["市财政局"], False, False),
        ("责任单位：市发改局、市财政局等有关部门", ["市发改局"], ["市财政局"], True, True),
        ("市发改局负责", ["市发改局"], [], True, False),
        ("市发改局牵头，2025年6月底前完成", ["市发改局"], [], False, False),
        ("牵头单位：市发改局；完成时限：2025年底前", ["市发改局"], [], False, False),
        (
            "省发改委牵头，各市（含甲县、乙县）人民政府配合",
            ["省发改委"],
            ["各市(含甲县、乙县)人民政府"],
            False,
            False,
        ),
        (
            "省发改委牵头，东川、西岭市政府配合",
            ["省发改委"],
            ["东川市政府", "西岭市政府"],
            False,
            False,
        ),
        ("各县（市、区）人民政府负责", ["各县(市、区)人民政府"], [], True, False),
    ],
)
def test_marker_forms(
    clause: str, leads: list[str], cos: list[str], inferred: bool, others: bool
) -> None:
    duty = parse_responsibility(clause)
    assert list(duty.lead_agencies) == leads
    assert list(duty.co_agencies) == cos
    assert (duty.lead_inferred, duty.with_other_units) == (inferred, others)


def test_labelled_markers_in_every_place_a_plan_puts_them() -> None:
    body = (
        "一、甲\n1.建设网络。（牵头单位：市工信局；配合单位：市通信办）\n"
        "2.建设平台。责任单位：市数据局、市财政局\n"
        "3.完善制度。\n牵头单位：市司法局；配合单位：市数据局\n"
    )
    parsed = parse_plan(_plan(body))
    assert [(w.lead_agencies, w.co_agencies) for w in parsed.work_points] == [
        (["市工信局"], ["市通信办"]),
        (["市数据局"], ["市财政局"]),
        (["市司法局"], ["市数据局"]),
    ]
    assert parsed.work_points[1].text == "建设平台。"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025年6月底前完成", [date(2025, 6, 30)]),
        ("9月底前建成", [date(2025, 9, 30)]),
        ("年底前完成", [date(2025, 12, 31)]),
        ("2026年底前全面建成", [date(2026, 12, 31)]),
        ("2025年10月31日前上线", [date(2025, 10, 31)]),
        ("9月前完成", [date(2025, 8, 31)]),
        ("上半年完成", [date(2025, 6, 30)]),
        ("2025年3月12日印发", []),
        ("2025年13月底前", []),
        ("2月30日前", []),
    ],
)
def test_deadlines(text: str, expected: list[date]) -> None:
    assert deadlines(text, 2025) == expected


def test_a_work_point_is_due_at_its_latest_deadline() -> None:
    assert due_date("6月底前完成设计，年底前建成。", 2025) == date(2025, 12, 31)
    body = "一、甲\n（一）建设网络，9月底前完成。（市工信局牵头，2025年11月底前完成）\n"
    assert parse_plan(_plan(body)).work_points[0].due_on == date(2025, 11, 30)


@pytest.mark.parametrize(
    ("text", "value", "unit", "comparator"),
    [
        ("无人机保有量达到95万架", 95, "万架", "="),
        ("全省算力规模达到20EFlops", 20, "EFlops", "="),
        ("出口带宽达到9.8万Gbps", 9.8, "万Gbps", "="),
        ("单位增加值能耗下降16.5%以上", 16.5, "%", "decrease_pct"),
        ("培育数字化服务商200个左右", 200, "个", "about"),
        ("政务服务满意度不低于98%", 98, "%", ">="),
        ("办理时限压缩至不超过3个工作日", 3, "个工作日", "<="),
        ("响应时间控制在2小时以内", 2, "小时", "<="),
        ("接口调用量提高20%", 20, "%", "increase_pct"),
        ("培育连锁化、品牌化养老机构5家", 5, "家", "="),
    ],
)
def test_target_units_and_comparators(text: str, value: float, unit: str, comparator: str) -> None:
    [target] = extract_targets(text)
    assert (target.value, target.unit, target.comparator) == (value, unit, comparator)


def test_numbers_that_are_no_targets() -> None:
    assert extract_targets("推动第3批试点、部署5G基站、推进零部件研发、落实等3类措施") == []


def test_the_per_section_fixture_of_the_codes_test_parses_to_its_codes() -> None:
    path = Path(__file__).resolve().parents[1] / "data" / "per-section-2024.txt"
    parsed = parse_plan(path.read_text(encoding="utf-8"))
    assert parsed.numbering == "per_section"
    assert [(w.code, w.lead_agencies) for w in parsed.work_points] == [
        ("1.1", ["市政务服务和数据管理局"]),
        ("1.2", ["市林业局"]),
        ("2.1", ["市林业局"]),
    ]

"""Tests for registry.domain.plan_parser on the Digital Zhaoqing 2024 work plan.

The expected responsibility table below was written by hand from reading the plan text.
Full-width characters are written as escapes: U+FF08/U+FF09 are the full-width
parentheses, U+FF0C the full-width comma.
"""

from __future__ import annotations

import json
from functools import cache

import pytest
from registry.domain.agency_names import agency_kind, canonical_agency_name, parse_responsibility
from registry.domain.plan_parser import (
    ParsedPlan,
    chinese_numeral,
    parse_plan,
)
from registry.domain.targets import extract_targets

from services.registry.tests.unit.plan_text import plan_text

FW_OPEN, FW_CLOSE, FW_COMMA = "\uff08", "\uff09", "\uff0c"


@cache
def parsed() -> ParsedPlan:
    return parse_plan(plan_text())


# Agency names, as spelled in the plan.
ZSJ = "市政务服务和数据管理局"
GA, KJ, GX, RS, JT = "市公安局", "市科技局", "市工信局", "市人社局", "市交通局"
FG, CZ, SJ, SW, GZW = "市发改局", "市财政局", "市市场监管局", "市税务局", "市国资委"
WXB, TJB, GXS, WGLT = "市委网信办", "市通建办", "市供销合作联社", "市文广旅体局"
MZ, SF, HJ, FY, JCY = "市民政局", "市司法局", "市环境局", "市法院", "市检察院"
RH, JRJG = "人行肇庆市分行", "肇庆金融监管分局"
GXQ, XQ, YG = "肇庆高新区管委会", "肇庆新区管委会", "粤桂合作特别试验区(肇庆)管委会"
COUNTIES = "各县(市、区)人民政府"
GDTV = "省广播电视网络肇庆分公司"
JYBM = "市委机要保密局"

# number: (lead_agencies, co_agencies, lead_inferred, with_other_units)
EXPECTED: dict[int, tuple[list[str], list[str], bool, bool]] = {
    1: ([ZSJ], [GA, RH], False, True),
    2: ([ZSJ], [], False, False),
    3: ([ZSJ], [COUNTIES, GXQ, XQ, YG, KJ, RS, JT], False, False),
    4: ([ZSJ], [WXB, TJB], False, False),
    5: ([ZSJ], ["市“百千万工程”指挥办"], False, True),
    6: ([MZ], ["市住建局", "市城管局", ZSJ], True, False),
    7: (
        [WXB],
        [GX, RS, JT, "市农业农村局", WGLT, ZSJ, GXS, "广东电网公司肇庆供电局", GDTV, TJB],
        True,
        False,
    ),
    8: ([KJ, GX], [], False, False),
    9: ([GX, ZSJ], [], False, False),
    10: ([KJ], [GX], True, False),
    11: ([FG, KJ], [], False, False),
    12: (["端州区人民政府"], [XQ, GX, ZSJ, GDTV], True, False),
    13: ([GX], [CZ, "市农业农村局", "市商务局", ZSJ, SW, "肇庆海关"], True, False),
    14: ([GXQ], [CZ, SJ, GXS, RH, JRJG], True, False),
    15: ([JRJG], [], False, False),
    16: ([COUNTIES], [GXQ, XQ, YG, FG, KJ, GX, "市投资促进中心", GZW, SJ, ZSJ], True, False),
    17: ([GXQ], [GX, ZSJ], True, False),
    18: ([CZ], [ZSJ], True, False),
    19: ([ZSJ], [], False, False),
    20: ([GZW, ZSJ], [], False, False),
    21: ([ZSJ], [COUNTIES, GXQ, XQ, YG], False, False),
    22: ([ZSJ], [], False, False),
    23: ([ZSJ], [], False, False),
    24: ([FG], ["市投资促进中心", ZSJ, SW], True, False),
    25: ([FG], [], False, False),
    26: ([FG], [SF, HJ, JT, SJ, ZSJ, SW], True, False),
    27: ([ZSJ], [], False, False),
    28: ([MZ], [RS], True, False),
    29: (["市教育局"], [], False, False),
    30: (["市卫健局"], ["广宁县人民政府", "怀集县人民政府"], False, False),
    31: ([ZSJ], [], False, False),
    32: (["市委政法委"], [FY, JCY, GA, SF, "市信访局"], True, False),
    33: ([FY], [JCY, GA, SF], True, False),
    34: ([JT], ["市水利局", ZSJ, "肇庆海事局"], True, False),
    35: (["市林业局"], [], False, False),
    36: (["市资源局"], [], False, False),
    37: ([HJ], [], False, False),
    38: (["市委宣传部"], [WGLT, "市融媒体中心"], True, False),
    39: ([WGLT], [], False, False),
    40: ([WGLT], [], False, False),
    41: ([GX], [ZSJ, TJB], True, False),
    42: ([ZSJ], [XQ, FG, KJ, GX, TJB], False, False),
    43: ([ZSJ], [], False, False),
    44: ([WXB], [JYBM, GA, ZSJ], True, False),
    45: ([WXB], [JYBM, GA, ZSJ], True, False),
    46: ([WXB], [JYBM, GA, ZSJ], True, False),
    47: ([ZSJ], [GX, "市统计局"], False, True),
    48: ([ZSJ], ["市人大常委会办公室", "市政协办公室"], False, False),
    49: ([ZSJ], [KJ, GX, RS], False, True),
    50: ([WXB], [GX, ZSJ], True, True),
}

SECTION_TITLES = [
    "积极参与“数字湾区”建设,推动重点任务建设落地",
    "数字赋能“百千万工程”,助力城乡融合和区域协调发展",
    "加强数字技术创新,强化关键数字技术创新应用",
    "推进数字经济发展,打造高质量发展新引擎",
    "推进数据要素市场化配置改革,培育数据要素市场生态",
    "数字赋能营商环境,服务全市高质量发展",
    "推进政务服务普惠公平,提升民生保障数字化水平",
    "建立共治共享的协同治理体系,提升社会治理数字化水平",
    "赋能绿美肇庆建设,构建绿色智慧的数字生态文明",
    "促进数字文化丰富多元,推动文旅体新业态发展",
    "夯实数字基础设施建设,打造数字化发展坚实底座",
    "加强网络和数据安全管理,筑牢安全防线",
    "营造良好发展环境,释放数字化发展创新潜能",
]
# Number of work points per section, counted by hand.
POINTS_PER_SECTION = [4, 3, 4, 6, 4, 5, 4, 4, 3, 3, 3, 3, 4]

# (work point, metric, value, unit, comparator, source)
EXPECTED_TARGETS = [
    (13, "规上工业企业实施数字化转型", 230, "家", "=", "推动230家规上工业企业实施数字化转型"),
    (23, "“高效办成一件事”专题", 13, "项", "=", "落地应用13项“高效办成一件事”专题"),
    (
        27,
        "高频民生诉求事项目录清单",
        500,
        "项",
        ">=",
        "梳理细化不少于500项高频民生诉求事项目录清单",
    ),
    (27, "诉求转派速度", 10, "%", "increase_pct", "诉求转派速度提升10%"),
    (35, "林分优化", 13, "万亩", "=", "实施林分优化提升13万亩"),
    (35, "森林抚育", 15, "万亩", "=", "森林抚育提升15万亩"),
    (41, "5G网络基站总量", 8000, "座", ">=", "建成5G网络基站总量8000座以上"),
]


def test_plan_metadata_is_read_from_the_notice_and_title_line() -> None:
    plan = parsed().model_dump(mode="json")["plan"]
    assert plan["title"] == "数字肇庆建设2024年工作要点"
    assert plan["issuer"] == "肇庆市政务服务和数据管理局"
    assert plan["issued_on"] == "2024-08-06"
    assert plan["year"] == 2024
    assert plan["preface"].startswith("为贯彻《数字中国建设整体布局规划》")


def test_dump_has_the_contract_keys() -> None:
    dump = parsed().model_dump(mode="json")
    assert {"plan", "sections", "work_points", "agencies"} <= dump.keys()
    assert {"title", "issuer", "issued_on", "year"} <= dump["plan"].keys()
    assert {"number", "title"} <= dump["sections"][0].keys()
    assert {
        "number",
        "section",
        "title",
        "text",
        "lead_agencies",
        "co_agencies",
        "lead_inferred",
        "with_other_units",
        "targets",
    } <= dump["work_points"][0].keys()
    assert dump["agencies"][0].keys() >= {"name", "kind"}
    json.dumps(dump, ensure_ascii=False)


def test_thirteen_sections_with_their_titles_in_order() -> None:
    sections = parsed().sections
    assert [s.number for s in sections] == list(range(1, 14))
    assert [s.title for s in sections] == SECTION_TITLES


def test_fifty_work_points_numbered_continuously_across_sections() -> None:
    points = parsed().work_points
    assert [p.number for p in points] == list(range(1, 51))
    counts = [sum(1 for p in points if p.section == n) for n in range(1, 14)]
    assert counts == POINTS_PER_SECTION
    assert (points[3].section, points[4].section) == (1, 2)
    assert points[-1].section == 13


@pytest.mark.parametrize("number", sorted(EXPECTED))
def test_work_point_responsibility_matches_hand_table(number: int) -> None:
    point = parsed().work_points[number - 1]
    leads, co, inferred, others = EXPECTED[number]
    assert point.number == number
    assert point.lead_agencies == leads
    assert point.co_agencies == co
    assert point.lead_inferred is inferred
    assert point.with_other_units is others


def test_work_point_title_is_text_before_first_full_stop() -> None:
    points = parsed().work_points
    assert points[0].title == "推动政府服务衔接融合"
    assert points[3].title == "推动“数据特区”建设"
    assert points[22].title == "加强政务服务“一网通办2.0”建设"
    assert points[30].title == "启动市域治理“一网统管”提升行动"
    assert points[49].title == "加强合作交流"


def test_work_point_text_drops_marker_and_responsibility_clause() -> None:
    first = parsed().work_points[0]
    assert first.text.startswith("推动政府服务衔接融合。重点围绕")
    assert first.text.endswith("等证件在肇庆市行、消、住、游等方面的便利化应用。")
    assert "牵头" not in first.text
    thirteenth = parsed().work_points[12]
    assert "新能源汽车(含新型储能)" in thirteenth.text
    assert thirteenth.text.endswith("有文化底蕴的步行街。")
    assert parsed().work_points[2].responsibility.startswith(ZSJ + "牵头,各县(市、区)")


def test_shared_suffix_distributes_to_bare_place_names_only() -> None:
    duty = parse_responsibility("市卫健局牵头,广宁县、怀集县人民政府按职责分工负责")
    assert duty.co_agencies == ("广宁县人民政府", "怀集县人民政府")
    duty = parse_responsibility(
        "各县(市、区)人民政府,肇庆高新区、肇庆新区、粤桂合作特别试验区(肇庆)管委会"
    )
    assert duty.lead_agencies == (COUNTIES,)
    assert duty.co_agencies == (GXQ, XQ, YG)
    duty = parse_responsibility("市科技局、市工信局牵头")
    assert duty.lead_agencies == (KJ, GX)
    duty = parse_responsibility("端州区人民政府,肇庆新区管委会按职责分工负责")
    assert duty.lead_agencies == ("端州区人民政府",)
    assert duty.co_agencies == (XQ,)


def test_other_units_phrase_is_a_flag_not_an_agency() -> None:
    duty = parse_responsibility(ZSJ + "牵头,市“百千万工程”指挥办等有关单位按职责分工负责")
    assert duty.co_agencies == ("市“百千万工程”指挥办",)
    assert duty.with_other_units
    names = [a.name for a in parsed().agencies]
    assert not any("等" in name or "有关单位" in name for name in names)


def test_leads_are_excluded_from_co_agencies_and_duplicates_dropped() -> None:
    duty = parse_responsibility("市工信局牵头,市工信局、市财政局、市财政局按职责分工负责")
    assert duty.lead_agencies == (GX,)
    assert duty.co_agencies == (CZ,)


def test_fullwidth_parentheses_give_the_same_result() -> None:
    variant = plan_text().replace("(", FW_OPEN).replace(")", FW_CLOSE)
    assert variant != plan_text()
    result = parse_plan(variant)
    assert result.agencies == parsed().agencies
    back = str.maketrans({FW_OPEN: "(", FW_CLOSE: ")"})
    assert json.dumps(result.model_dump(mode="json"), ensure_ascii=False).translate(
        back
    ) == json.dumps(parsed().model_dump(mode="json"), ensure_ascii=False)


def test_fullwidth_commas_give_the_same_result() -> None:
    variant = plan_text().replace(",", FW_COMMA)
    result = parse_plan(variant)
    assert [(p.lead_agencies, p.co_agencies) for p in result.work_points] == [
        (p.lead_agencies, p.co_agencies) for p in parsed().work_points
    ]
    back = str.maketrans({FW_COMMA: ","})
    assert json.dumps(result.model_dump(mode="json"), ensure_ascii=False).translate(
        back
    ) == json.dumps(parsed().model_dump(mode="json"), ensure_ascii=False)


def test_canonical_name_uses_ascii_parentheses_and_no_whitespace() -> None:
    assert canonical_agency_name(f"粤桂合作特别试验区{FW_OPEN}肇庆{FW_CLOSE} 管委会") == YG
    assert canonical_agency_name(COUNTIES) == COUNTIES


def test_exactly_the_seven_quantitative_targets() -> None:
    found = [
        (p.number, t.metric, t.value, t.unit, t.comparator, t.source)
        for p in parsed().work_points
        for t in p.targets
    ]
    assert found == EXPECTED_TARGETS
    for number, *_rest, source in found:
        assert source in parsed().work_points[number - 1].text
    dump = parsed().model_dump(mode="json")["work_points"][40]["targets"][0]
    assert dump == {
        "metric": "5G网络基站总量",
        "value": 8000,
        "unit": "座",
        "comparator": ">=",
        "source": "建成5G网络基站总量8000座以上",
    }


def test_targets_cover_the_phrases_named_in_the_brief() -> None:
    sources = [t.source for p in parsed().work_points for t in p.targets]
    for phrase in [
        "推动230家规上工业企业实施数字化转型",
        "13项“高效办成一件事”",
        "不少于500项",
        "诉求转派速度提升10%",
        "林分优化提升13万亩",
        "森林抚育提升15万亩",
        "5G网络基站总量8000座以上",
    ]:
        assert sum(phrase in source for source in sources) == 1, phrase


def test_numbers_without_countable_unit_or_action_are_not_targets() -> None:
    assert extract_targets("推进12345热线平台全面升级,探索应用5G技术。") == []
    assert extract_targets("持续深化我市“1+6+N”基层社会治理工作体系建设。") == []
    assert extract_targets("推行改革3.0,围绕西江、广佛肇高速等9条重要绿色通道。") == []
    assert extract_targets("组织做好第5次经济普查,启动2024年规划编制。") == []


def test_distinct_agencies_counted_by_hand() -> None:
    agencies = parsed().agencies
    names = [a.name for a in agencies]
    assert len(names) == len(set(names)) == 52
    assert names[:4] == [ZSJ, GA, RH, COUNTIES]
    assert names[-2:] == ["市人大常委会办公室", "市政协办公室"]


def test_agency_kinds_follow_the_name_rules() -> None:
    kinds = {a.name: a.kind for a in parsed().agencies}
    by_kind: dict[str, set[str]] = {}
    for name, kind in kinds.items():
        by_kind.setdefault(kind, set()).add(name)
    assert by_kind["county_government"] == {
        COUNTIES,
        "端州区人民政府",
        "广宁县人民政府",
        "怀集县人民政府",
    }
    assert by_kind["management_committee"] == {GXQ, XQ, YG}
    assert by_kind["party_organ"] == {WXB, "市委政法委", "市委宣传部", JYBM}
    assert by_kind["central_branch"] == {RH, SW, "肇庆海关", JRJG, "肇庆海事局"}
    assert by_kind["state_owned_company"] == {"广东电网公司肇庆供电局", GDTV}
    assert by_kind["judicial"] == {FY, JCY}
    assert by_kind["legislature"] == {"市人大常委会办公室", "市政协办公室"}
    assert len(by_kind["city_bureau"]) == 30
    assert "other" not in by_kind
    assert agency_kind("肇庆市人民政府") == "city_government"


@pytest.mark.parametrize(
    ("numeral", "value"),
    [("一", 1), ("九", 9), ("十", 10), ("十三", 13), ("二十", 20), ("二十一", 21), ("五十", 50)],
)
def test_chinese_numerals_convert(numeral: str, value: int) -> None:
    assert chinese_numeral(numeral) == value


@pytest.mark.parametrize("bad", ["", "十十", "百", "二十三四"])
def test_bad_chinese_numerals_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        chinese_numeral(bad)

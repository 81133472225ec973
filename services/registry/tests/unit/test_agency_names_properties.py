"""Properties of the agency-list splitter, over generated lists of realistic agency names."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from registry.domain.agency_names import canonical_agency_name, split_agency_list

# Complete names, including parentheses and 、 inside them (which must never split).
COMPLETE = [
    "市林业局",
    "市工信局",
    "市政务服务和数据管理局",
    "人行肇庆市分行",
    "肇庆金融监管分局",
    "广东电网公司肇庆供电局",
    "市“百千万工程”指挥办",
    "各县(市、区)人民政府",
    "粤桂合作特别试验区(肇庆)管委会",
    "端州区人民政府",
    "市委网信办",
]
BARE_PLACES = ["广宁县", "怀集县", "四会市", "肇庆高新区", "肇庆新区", "鼎湖区"]
SUFFIXES = ["人民政府", "管委会"]
TO_FULL_WIDTH = str.maketrans({"(": "\uff08", ")": "\uff09", ",": "\uff0c"})

names = st.lists(st.sampled_from(COMPLETE), min_size=1, max_size=8, unique=True)
separators = st.sampled_from(["、", ",", "\uff0c"])


@given(names, st.data())
@settings(max_examples=300, deadline=None)
def test_joined_names_split_back_into_the_same_names(
    chosen: list[str], data: st.DataObject
) -> None:
    text = chosen[0]
    for name in chosen[1:]:
        text += data.draw(separators) + name
    assert split_agency_list(text) == (chosen, False)


@given(names)
@settings(max_examples=200, deadline=None)
def test_full_width_punctuation_splits_like_ascii(chosen: list[str]) -> None:
    text = ",".join("、".join(chosen[i : i + 2]) for i in range(0, len(chosen), 2))
    assert split_agency_list(text.translate(TO_FULL_WIDTH)) == split_agency_list(text)


@given(
    st.lists(st.sampled_from(BARE_PLACES), min_size=1, max_size=4, unique=True),
    st.sampled_from(SUFFIXES),
    st.sampled_from(BARE_PLACES),
)
@settings(max_examples=200, deadline=None)
def test_a_shared_suffix_reaches_every_bare_place_before_it(
    places: list[str], suffix: str, last: str
) -> None:
    if last in places:
        places = [p for p in places if p != last]
    text = "、".join([*places, last + suffix])
    split, _ = split_agency_list(text)
    assert split == [p + suffix for p in places] + [last + suffix]


@given(names)
@settings(max_examples=200, deadline=None)
def test_other_units_is_a_flag_not_an_agency(chosen: list[str]) -> None:
    split, with_other_units = split_agency_list("、".join(chosen) + "等有关单位")
    assert (split, with_other_units) == (chosen, True)


@given(st.text(alphabet="市县区局委办()() 、,", max_size=30))
def test_canonical_names_are_stable(raw: str) -> None:
    once = canonical_agency_name(raw)
    assert canonical_agency_name(once) == once
    assert " " not in once and "\uff08" not in once

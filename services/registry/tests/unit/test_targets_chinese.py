"""Targets written with Chinese numerals are read like Arabic ones; idioms are not targets."""

from __future__ import annotations

import pytest
from registry.domain.targets import extract_targets


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("建成五千座5G网络基站", [(5000, "座", "=")]),
        ("实施林分优化提升十三万亩、森林抚育提升十五万亩", [(13, "万亩", "="), (15, "万亩", "=")]),
        ("梳理不少于五百项高频民生诉求事项", [(500, "项", ">=")]),
        ("推动两百三十家规上工业企业实施数字化转型", [(230, "家", "=")]),
        ("诉求转派速度提升百分之十", [(10, "%", "increase_pct")]),
        ("诉求转派速度提升百分之12.5", [(12.5, "%", "increase_pct")]),
        ("建成5G网络基站总量八千座以上", [(8000, "座", ">=")]),
    ],
)
def test_chinese_numerals_are_read_as_numbers(
    text: str, expected: list[tuple[float, str, str]]
) -> None:
    assert [(t.value, t.unit, t.comparator) for t in extract_targets(text)] == expected


@pytest.mark.parametrize(
    "text",
    [
        "建设一批智慧农(牧、渔)场",  # 一批: a batch, not a count
        "打造以ESG账户为载体的“一户四链”金融服务体系",
        "推动市域治理“一网统管”提质增效",
        "实现省、市、县、镇四级业务通",
        "做好第五次全国经济普查",
    ],
)
def test_idioms_and_ordinals_are_not_targets(text: str) -> None:
    assert extract_targets(text) == []

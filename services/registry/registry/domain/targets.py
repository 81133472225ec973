"""Quantitative targets in a work point's text: a number with a countable unit in an action
clause (230家规上工业企业, 5G网络基站总量8000座以上, 林分优化提升13万亩)."""

from __future__ import annotations

import re
from typing import Literal

import cn2an
from pydantic import BaseModel

Comparator = Literal[">=", "=", "increase_pct"]

# Targets: a number followed by a countable unit (two-character units first), in one clause.
_UNIT = "万亩|万人|万户|万元|亿元|公里|%|\uff05|家|项|座|个|亩|人|户|所|台|套|条|场|批|张"
# Chinese numerals are matched shortest-first so that 十五万亩 reads as 十五 + 万亩; a lone 一 is
# an idiom (一批, 一户四链), never a target.
_CN_NUMERAL = "[零〇一二两三四五六七八九十百千万亿点]+?"
_NUMBER_UNIT = re.compile(
    r"(?<![0-9A-Za-z.+\-])(?:百分之(?P<pct>\d+(?:\.\d+)?|"
    + _CN_NUMERAL
    + r")|(?P<num>\d+(?:\.\d+)?)(?P<unit>"
    + _UNIT
    + r")|(?<![零〇一二两三四五六七八九十百千万亿])(?P<cn>"
    + _CN_NUMERAL
    + r")(?P<cn_unit>"
    + _UNIT
    + "))"
)
# Clauses end at these (ASCII or full-width); a signature line has none.
CLAUSE_SPLIT = re.compile("[,\uff0c。;\uff1b、:\uff1a!\uff01?\uff1f]")
_ACTION = re.compile(
    "推动|推进|实施|建成|建设|完成|应用|新增|培育|打造|改造|提升|提高|增长|增加|达到|覆盖|累计"
    "|不少于|不低于|至少"
)
_AT_LEAST_BEFORE = ("不少于", "不低于", "至少", "超过")
_AT_LEAST_AFTER = ("及以上", "以上")
_INCREASE_WORDS = ("提升", "提高", "增长", "增加")
_METRIC_TRAILING = (*_INCREASE_WORDS, "达到")
_METRIC_LEADING = ("实施", "建成", "推动", "推进", "完成", "新增", "累计")


class Target(BaseModel):
    """A quantitative target stated in a work point."""

    metric: str
    value: int | float
    unit: str
    comparator: Comparator
    source: str


def extract_targets(text: str) -> list[Target]:
    """Find quantitative targets: a number with a countable unit in an action clause.

    1. Split the text into clauses at ``,。;、:`` (ASCII or full-width).
    2. In each clause find an Arabic number directly followed by a countable unit (家, 项, 座,
       万亩, %, ...); numbers glued to Latin letters or digits (5G, IPv6, 3.0) never match.
    3. Skip enumerations and ordinals (the number follows ``等`` or ``第``) and clauses without
       an action word (推动, 实施, 建成, 应用, 提升, 不少于, ...) before the number.
    4. Comparator: ``不少于``/``不低于``/``至少`` before or ``以上`` after gives ``>=``; a
       percentage after ``提升``/``提高``/``增长`` gives ``increase_pct``; otherwise ``=``.
    5. Metric: the words after the unit (the counted thing) or, if none, the words before the
       number without the leading action verb and the trailing 提升/达到.
       Source: the whole clause.
    """
    targets: list[Target] = []
    for raw_clause in CLAUSE_SPLIT.split(text):
        clause = raw_clause.strip()
        for match in _NUMBER_UNIT.finditer(clause):
            before, after = clause[: match.start()], clause[match.end() :]
            if before.endswith(("等", "第")) or not _ACTION.search(before):
                continue
            read = _read_number(match)
            if read is None:
                continue
            number, unit = read
            comparator: Comparator = "="
            for word in _AT_LEAST_BEFORE:
                if before.endswith(word):
                    comparator, before = ">=", before.removesuffix(word)
            for word in _AT_LEAST_AFTER:
                if after.startswith(word):
                    comparator, after = ">=", after.removeprefix(word)
            if unit == "%" and before.endswith(_INCREASE_WORDS):
                comparator = "increase_pct"
            metric = after.strip() or _strip_words(before)
            value: int | float = int(number) if number.is_integer() else number
            targets.append(
                Target(metric=metric, value=value, unit=unit, comparator=comparator, source=clause)
            )
    return targets


def _read_number(match: re.Match[str]) -> tuple[float, str] | None:
    """The value and unit of a matched number: Arabic, Chinese (cn2an), or 百分之….

    None for a lone 一 (一批, 一户) and for numerals cn2an cannot read.
    """
    if match["num"] is not None:
        return float(match["num"]), match["unit"].replace("\uff05", "%")
    raw, unit = (match["pct"], "%") if match["pct"] is not None else (match["cn"], match["cn_unit"])
    if raw == "一":
        return None
    if raw.replace(".", "", 1).isdigit():
        return float(raw), unit
    try:
        return float(cn2an.cn2an(raw, "smart")), unit.replace("\uff05", "%")
    except ValueError:
        return None


def _strip_words(words: str) -> str:
    """Drop a trailing 提升/达到 and a leading action verb from a metric subject."""
    for trailing in _METRIC_TRAILING:
        words = words.removesuffix(trailing)
    for leading in _METRIC_LEADING:
        words = words.removeprefix(leading)
    return words.strip()

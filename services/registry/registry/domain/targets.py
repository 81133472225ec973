"""Quantitative targets in a work point's text: a number with a countable unit in an action
clause (230家规上工业企业, 5G网络基站总量8000座以上, 林分优化提升13万亩)."""

from __future__ import annotations

import re
from typing import Literal

import cn2an
from pydantic import BaseModel

Comparator = Literal[">=", "=", "<=", "about", "increase_pct", "decrease_pct"]

# Targets: a number followed by a countable unit, optionally with a 万/亿 prefix (longer units
# first), in one clause; Latin units of rates and computing power in any letter case.
_BASE_UNIT = (
    "个工作日|工作日|平方米|千瓦|兆瓦|公里|人次|小时|分钟|家|项|座|个|亩|人|户|所|台|套|条|场|批|"
    "张|架|元|吨|辆|件|部|栋|天"
)
_LATIN_UNIT = "(?i:EFlops|PFlops|TFlops|Tbps|Gbps|Mbps|PB|TB|GB)(?![A-Za-z])"
_UNIT = f"(?:万|亿)?(?:{_BASE_UNIT}|{_LATIN_UNIT})|%|\uff05|万|亿"
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
_SENTENCE_SPLIT = re.compile("[,\uff0c。;\uff1b:\uff1a!\uff01?\uff1f]")
_ACTION = re.compile(
    "推动|推进|实施|建成|建设|完成|应用|新增|培育|打造|改造|提升|提高|增长|增加|达到|覆盖|累计"
    "|不少于|不低于|至少|超过|下降|降低|减少|压减|压缩|缩短|控制|不超过|不高于|部署|形成|突破"
)
_AT_LEAST_BEFORE = ("不少于", "不低于", "至少", "超过")
_AT_LEAST_AFTER = ("及以上", "以上")
_AT_MOST_BEFORE = ("不超过", "不高于", "控制在", "压缩至", "压减至", "缩短至")
_AT_MOST_AFTER = ("及以下", "以下", "以内", "之内")
_ABOUT_BEFORE = ("大约", "约")
_ABOUT_AFTER = ("左右",)
_INCREASE_WORDS = ("提升", "提高", "增长", "增加")
_DECREASE_WORDS = ("下降", "降低", "减少")
_METRIC_TRAILING = (*_INCREASE_WORDS, *_DECREASE_WORDS, *_AT_MOST_BEFORE, "达到")
_BOUND_WORDS: tuple[tuple[tuple[str, ...], tuple[str, ...], Comparator], ...] = (
    (_AT_MOST_BEFORE, _AT_MOST_AFTER, "<="),  # first: 不超过 ends with 超过
    (_AT_LEAST_BEFORE, _AT_LEAST_AFTER, ">="),
    (_ABOUT_BEFORE, _ABOUT_AFTER, "about"),
)
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

    1. Split the text into clauses at ``,。;、:`` (ASCII or full-width); the clauses of one
       sentence part joined by ``、`` share the action word that leads them.
    2. In each clause find a number directly followed by a countable unit (家, 项, 座, 架, with
       a 万/亿 prefix or alone, %, Gbps, EFlops, ...); numbers glued to Latin letters or digits
       (5G, IPv6, 3.0) never match.
    3. Skip enumerations and ordinals (the number follows ``等`` or ``第``) and clauses without
       an action word (推动, 实施, 建成, 应用, 提升, 不少于, ...) before the number.
    4. Comparator: ``不少于``/``不低于``/``至少``/``超过`` before or ``以上`` after gives ``>=``;
       ``不超过``/``不高于``/``控制在`` before or ``以内``/``以下`` after gives ``<=``; ``约``
       before or ``左右`` after gives ``about``; a percentage after ``提升``/``提高``/``增长`` gives
       ``increase_pct``, after ``下降``/``降低``/``减少`` ``decrease_pct``; otherwise ``=``.
    5. Metric: the words after the unit (the counted thing) or, if none, the words before the
       number without the leading action verb and the trailing 提升/达到.
       Source: the whole clause.
    """
    targets: list[Target] = []
    for sentence in _SENTENCE_SPLIT.split(text):
        lead_in = ""  # the sentence's clauses before this one (培育A、B机构5家: 培育 counts)
        for raw_clause in sentence.split("、"):
            clause = raw_clause.strip()
            targets.extend(_clause_targets(clause, lead_in))
            lead_in += raw_clause + "、"
    return targets


def _clause_targets(clause: str, lead_in: str) -> list[Target]:
    """The targets in one clause; an action word may stand earlier in its sentence."""
    targets: list[Target] = []
    for match in _NUMBER_UNIT.finditer(clause):
        before, after = clause[: match.start()], clause[match.end() :]
        if before.endswith(("等", "第")) or not _ACTION.search(lead_in + before):
            continue
        read = _read_number(match)
        if read is None:
            continue
        number, unit = read
        comparator, before, after = _comparator(unit, before, after)
        metric = after.strip() or _strip_words(before)
        value: int | float = int(number) if number.is_integer() else number
        targets.append(
            Target(metric=metric, value=value, unit=unit, comparator=comparator, source=clause)
        )
    return targets


def _comparator(unit: str, before: str, after: str) -> tuple[Comparator, str, str]:
    """The comparator the words around a number give, and those words without it."""
    comparator: Comparator = "="
    found_before = found_after = False
    for words_before, words_after, meaning in _BOUND_WORDS:
        word = next((w for w in words_before if before.endswith(w)), None)
        if word is not None and not found_before:
            comparator, before, found_before = meaning, before.removesuffix(word), True
        word = next((w for w in words_after if after.startswith(w)), None)
        if word is not None and not found_after:
            comparator, after, found_after = meaning, after.removeprefix(word), True
    if unit == "%" and before.endswith(_INCREASE_WORDS):
        comparator = "increase_pct"
    elif unit == "%" and before.endswith(_DECREASE_WORDS):
        comparator = "decrease_pct"
    return comparator, before, after


def _read_number(match: re.Match[str]) -> tuple[float, str] | None:
    """The value and unit of a matched number: Arabic, Chinese (cn2an), or 百分之….

    None for a lone 一 (一批, 一户) and for numerals cn2an cannot read.
    """
    if match["num"] is not None:
        return float(match["num"]), match["unit"].replace("\uff05", "%")
    raw, unit = (match["pct"], "%") if match["pct"] is not None else (match["cn"], match["cn_unit"])
    if raw in ("一", "零", "〇"):  # 一批, 零部件
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

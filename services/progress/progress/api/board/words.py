"""The board's Chinese words: colours, reasons, report statuses, transitions."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

ZHAOQING = ZoneInfo("Asia/Shanghai")

# What a cell is, by its colour key: (the short mark on the cell, the colour's name, meaning).
# Colour is never the only signal: every cell also carries its mark.
COLOURS: dict[str, tuple[str, str, str]] = {
    "red": ("红", "红色", "停滞"),
    "yellow": ("黄", "黄色", "滞后"),
    "blue": ("蓝", "蓝色", "临期预警"),
    "green": ("绿", "绿色", "正常推进"),
    "review": ("审", "灰色", "办结待审核"),
    "closed": ("结", "灰色", "已办结销号"),
}
COLOUR_ORDER = list(COLOURS)

REASONS = {
    "blocked": "工作受阻",
    "overdue": "超过完成时限",
    "silent": "逾期未报送进展",
    "behind_pace": "未达序时进度",
    "flatline": "连续报送进度无变化",
    "due_soon": "临近完成时限",
}

STATUSES = {
    "not_started": "未启动",
    "on_track": "正常推进",
    "at_risk": "存在风险",
    "blocked": "受阻",
    "done": "已完成",
}

ROLES = {"lead": "牵头", "co": "配合"}
COMPARATORS = {
    ">=": "不少于",
    "=": "",
    "<=": "不超过",
    "about": "约",
    "increase_pct": "增长",
    "decrease_pct": "下降",
}
"""A target's comparator in words (目标:不少于 13 万亩)."""
PRINCIPALS = {"coordinator": "协调办公室", "operator": "运维(协调办公室)", "agency": "责任单位"}
ALERT_STATES = {"firing": "待确认", "acknowledged": "已确认", "resolved": "已解除"}
RESOLUTIONS = {"recovered": "已恢复正常", "closed": "已办结销号"}

PROVISIONAL_MARK = "暂"
PROVISIONAL = "按暂行日历计算（当年国务院放假安排未发布）"
"""Said of a judgement counted on a provisional calendar year."""


def colour_key(level: str, closure: str | None) -> str:
    """A cell's colour: grey for a work point in review or closed, else its level."""
    if closure == "closed":
        return "closed"
    if closure == "in_review":
        return "review"
    return level


def reasons(codes: list[str]) -> str:
    """Reasons in words, joined."""
    return "、".join(REASONS.get(c, c) for c in codes)


def when(value: datetime | None) -> str:
    """A moment in Zhaoqing's time: 2024-09-02 09:00."""
    if value is None:
        return "—"
    return value.astimezone(ZHAOQING).strftime("%Y-%m-%d %H:%M")


def day(value: date | None) -> str:
    """A day: 2024年12月31日."""
    return f"{value.year}年{value.month}月{value.day}日" if value else "—"


def short(title: str, limit: int = 12) -> str:
    """A title cut to fit a cell."""
    return title if len(title) <= limit else title[: limit - 1] + "…"

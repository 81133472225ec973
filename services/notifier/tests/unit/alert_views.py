"""Alert views for the rendering tests: one alert of work point 35, or any work point."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from duban_shared.events import Level, StallReason
from notifier.adapters.render import AlertView

TITLE = "加强林业数字化应用"
URL = "https://duban.zhaoqing.example.cn/v1/ack/eyJhIjoiMzUifQ.c2lnbmF0dXJl"
SHORT_URL = "https://d.example.cn/a/X7"  # a short link: one SMS part still has room for it
FIRED = datetime(2024, 10, 22, 1, 30, tzinfo=UTC)  # 09:30 in Zhaoqing
FOOTER = "—— 督办系统(自动发送,请勿回复)\n"
OFFICE = "市政务服务和数据管理局"


def alert_view(**changes: object) -> AlertView:
    alert = AlertView(
        work_point_id="zhaoqing-digital-2024/35",
        number=35,
        title=TITLE,
        level=Level.RED,
        previous_level=None,
        reasons=(StallReason.BLOCKED,),
        event="fired",
        silent_working_days=None,
        note="林分优化用地审批未完成",
        lead_agencies=("市林业局",),
        fired_at=FIRED,
        ack_url=URL,
    )
    return dataclasses.replace(alert, **changes)  # type: ignore[arg-type]


def point(number: int, level: Level, **changes: object) -> AlertView:
    reasons = {
        Level.RED: (StallReason.BLOCKED,),
        Level.YELLOW: (StallReason.BEHIND_PACE,),
        Level.BLUE: (StallReason.DUE_SOON,),
        Level.GREEN: (),
    }[level]
    defaults: dict[str, object] = {
        "work_point_id": f"zhaoqing-digital-2024/{number}",
        "number": number,
        "title": f"第{number}号工作要点",
        "level": level,
        "reasons": reasons,
        "note": None,
        "lead_agencies": (OFFICE,),
        "ack_url": f"https://duban.zhaoqing.example.cn/v1/ack/wp{number}",
    }
    return alert_view(**(defaults | changes))


def fifteen() -> list[AlertView]:
    """Five reds (7, 16, 22, 35, 50), five yellows, five blues, in no particular order."""
    red, yellow, blue = Level.RED, Level.YELLOW, Level.BLUE
    levels = {50: red, 35: red, 5: yellow, 12: yellow, 7: red, 41: yellow, 3: yellow, 22: red}
    levels |= {18: blue, 9: blue, 30: blue, 44: yellow, 1: blue, 27: blue, 16: red}
    return [point(n, level) for n, level in levels.items()]

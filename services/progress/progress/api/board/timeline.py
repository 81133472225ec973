"""A work point's timeline on the board: progress's entries and the notifier's alerts as lines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from duban_shared.contracts import Alert

from progress.api.board import words
from progress.api.board.traces import trace_link
from progress.settings import ProgressSettings
from progress.store.queries import Entry


@dataclass(frozen=True)
class TimelineItem:
    """One line of a work point's timeline on the page."""

    at: datetime
    kind: str  # report, transition, closure_decision, alert
    colour: str | None
    title: str
    text: str
    link: str | None = None


def progress_items(entries: list[Entry], names: dict[str, str]) -> list[TimelineItem]:
    """Reports, transitions and closure decisions as timeline lines (`names`: agency names)."""
    items = []
    for e in entries:
        d = e.detail
        if e.kind == "report":
            status = words.STATUSES.get(d["status"], d["status"])
            title = f"{names.get(d['agency_id'], '责任单位')}报送:{status}"
            if d.get("reported_by"):
                title += f"(填报人:{d['reported_by']})"
            parts = [f"进度 {d['percent']}%"] if d["percent"] is not None else []
            parts += [f"{k} {v:g}" for k, v in (d.get("kpis") or {}).items()]
            if d.get("note"):
                parts.append(f"说明:{d['note']}")
            if d.get("late"):
                parts.append("补报")
            if d.get("out_of_order"):
                parts.append("晚于后续报送到达,不改变状态")
            items.append(TimelineItem(e.at, "report", None, title, ";".join(parts)))
        elif e.kind == "transition":
            level = d.get("level")
            name = words.COLOURS.get(level or "", ("", level or "", ""))[1]
            previous = words.COLOURS.get(d.get("previous_level") or "", ("", "", ""))[1]
            kind = d["transition"]
            title = {
                "opened": f"进入{name}督办",
                "level_changed": f"由{previous}转为{name}",
                "recovered": "恢复正常",
                "closed": "办结销号",
            }.get(kind, kind)
            text = f"原因:{words.reasons(d['reasons'])}" if d.get("reasons") else ""
            items.append(TimelineItem(e.at, "transition", level, title, text))
        else:
            approved = d["decision"] == "approved"
            title = "办结审核通过" if approved else "办结申请退回"
            text = (("意见:" if approved else "理由:") + d["reason"]) if d.get("reason") else ""
            items.append(TimelineItem(e.at, "closure_decision", None, title, text))
    return items


def alert_items(alerts: list[Alert], settings: ProgressSettings) -> list[TimelineItem]:
    """Alerts, their acknowledgements and resolutions as timeline lines."""
    items = []
    for a in alerts:
        link = trace_link(settings.trace_ui_url, settings.trace_query_url, a.trace_id)
        name = words.COLOURS.get(a.level, ("", a.level, ""))[1]
        items.append(
            TimelineItem(
                a.fired_at,
                "alert",
                a.level,
                f"发出{name}督办提醒",
                f"原因:{words.reasons(a.reasons)}" if a.reasons else "",
                link,
            )
        )
        if a.acknowledged_at is not None:
            who = a.acknowledged_by or ""
            by = "通过提醒链接" if who.startswith("link:") else (f"由 {who} " if who else "")
            items.append(
                TimelineItem(a.acknowledged_at, "ack", None, "督办提醒已确认知悉", f"{by}确认")
            )
        if a.resolved_at is not None:
            items.append(
                TimelineItem(
                    a.resolved_at,
                    "resolved",
                    None,
                    "督办提醒解除",
                    words.RESOLUTIONS.get(a.resolution or "", ""),
                )
            )
    return items


ORDER = {"report": 0, "closure_decision": 1, "transition": 2, "alert": 3, "ack": 4, "resolved": 5}

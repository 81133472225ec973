"""Messages about supervision notices (督办单), in Chinese: email, SMS and WeCom markdown.

`notice_issued` tells the lead agency the notice's number, the work point, what is asked and
the reply deadline; `notice_overdue` tells the coordinating office (or reminds the lead) that
no reply came by the deadline. Pure: the caller gives everything, nothing is looked up.
The office's own words (the reason, the required action) are folded onto one line and made
inert in markdown; SMS is cut to its budget by `truncate_to_segments`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from duban_shared.numerals import chinese_code
from duban_shared.workdays import local_day

from notifier.adapters.channels.wecom import MARKDOWN_MAX_BYTES, fit_utf8
from notifier.adapters.render import Rendered
from notifier.domain.quoting import one_line
from notifier.domain.sms_segments import analyze, truncate_to_segments

NOTICE_EVENTS = frozenset({"notice_issued", "notice_overdue"})
_MARKDOWN_INERT = str.maketrans(
    {"<": "＜", ">": "＞", "[": "［", "]": "］", "*": "＊", "`": "｀", "#": "＃", "\\": "＼"}
)


@dataclass(frozen=True)
class NoticeView:
    """One notice as a message tells it."""

    number: str
    code: str
    title: str
    event: str
    reply_due: datetime  # the moment the reply became late (the end of the last day)
    reason: str | None
    lead_agencies: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.event not in NOTICE_EVENTS:
            raise ValueError(f"unknown notice event {self.event!r}; one of {sorted(NOTICE_EVENTS)}")

    @property
    def last_day(self) -> date:
        """The last day a reply was on time."""
        return local_day(self.reply_due - timedelta(microseconds=1))

    @property
    def work_point(self) -> str:
        """第三十五项“加强林业数字化应用”."""
        return f"第{chinese_code(self.code)}项“{self.title}”"


def _day(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _line(notice: NoticeView, role: str) -> str:
    due = _day(notice.last_day)
    leads = "、".join(notice.lead_agencies) or "牵头单位"
    if notice.event == "notice_issued":
        return f"督办单{notice.number}:{notice.work_point},请于{due}前(含当日)反馈办理情况。"
    if role == "office":
        return (
            f"督办单{notice.number}({notice.work_point},牵头单位:{leads})"
            f"要求于{due}前反馈,至今未收到反馈,已逾期,请督促。"
        )
    return f"督办单{notice.number}({notice.work_point})反馈期限{due}已过,请尽快反馈办理情况。"


def render_notices(
    notices: Sequence[NoticeView], *, recipient_name: str, role: str, max_sms_segments: int = 2
) -> Rendered:
    """One message about `notices` (usually one) for an agency or the coordinating office."""
    if not notices:
        raise ValueError("nothing to render")
    overdue = any(n.event == "notice_overdue" for n in notices)
    first = notices[0]
    head = "督办逾期" if overdue else "督办通知"
    subject = f"【{head}】{first.number} {first.work_point}"
    if len(notices) > 1:
        subject = f"【{head}】{first.number} 等{len(notices)}件督办单"
    paragraphs = [f"{recipient_name or '您好'}:"]
    for notice in notices:
        paragraphs.append(_line(notice, role))
        if notice.event == "notice_issued" and notice.reason:
            paragraphs.append(f"督办事由:{one_line(notice.reason)}")
    paragraphs.append("请登录督办系统查看督办单并在线反馈。")
    text = "\n\n".join(paragraphs) + "\n"
    sms_body = "【督办】" + "".join(_line(n, role) for n in notices)
    sms = truncate_to_segments(sms_body, max_sms_segments)
    markdown = fit_utf8(
        f"**{head}**\n"
        + "\n".join(f"> {_line(n, role).translate(_MARKDOWN_INERT)}" for n in notices),
        MARKDOWN_MAX_BYTES,
    )
    return Rendered(
        subject=subject,
        text=text,
        sms=sms,
        sms_segments=analyze(sms).segments,
        markdown=markdown,
        sms_has_link=False,
    )

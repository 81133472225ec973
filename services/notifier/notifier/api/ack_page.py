"""The page a one-click acknowledgement link opens: in Chinese, for every state of a link.

Opening the link never acknowledges (mail scanners prefetch links): the page offers its one
button only while the alert can still be acknowledged; a resolved alert, a used, expired or
broken link get a sentence saying so and what to do instead. The headers are strict: the page
has no script or image (`default-src 'none'`) and only its own fixed style, allowed by its hash
(readable on a phone, with a button a finger can hit), may not be framed (no clickjacking of the
button), is not cached (the link acts for an agency until it is used) and sends no referrer
(its address is the link).
"""

from __future__ import annotations

import base64
import hashlib
import html
from datetime import datetime
from typing import Final

from duban_shared.numerals import chinese_code
from duban_shared.workdays import SHANGHAI
from fastapi.responses import HTMLResponse

from notifier.domain.alerts import ACKNOWLEDGED, RESOLVED, AckRefused
from notifier.store.models import Alert

STYLE: Final = (
    "body{margin:0 auto;max-width:40rem;padding:1rem;font-family:system-ui,sans-serif;"
    "line-height:1.6;color:#1a1a1a;overflow-wrap:anywhere}h1{font-size:1.3rem}"
    "button{font:inherit;min-height:48px;min-width:12rem;padding:.5rem 1.5rem;border:0;"
    "border-radius:4px;background:#7f0000;color:#fff;cursor:pointer}"
)
_STYLE_HASH: Final = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex, nofollow",
}
_ELSEWHERE = "如需确认,请使用最新一条督办消息中的链接,或登录督办系统确认。"
REFUSALS: Final = {
    "invalid_link": "这个确认链接无效,可能在复制或转发时被截断、改动。" + _ELSEWHERE,
    "unknown_link": "督办系统中没有这个确认链接。" + _ELSEWHERE,
    "link_expired": "这个确认链接已过期。" + _ELSEWHERE,
    "link_used": "这个确认链接已经使用过,每个链接只能确认一次。",
    "unknown_alert": "没有找到这个链接对应的督办提醒。" + _ELSEWHERE,
    "alert_resolved": "这条督办提醒已解除,无需确认。",
}
"""What the page says for each refusal code of `notifier.domain.alerts` (the API keeps its
English)."""
UNEXPECTED = "暂时无法处理这个确认链接,请稍后再打开,或登录督办系统确认。"
_RESOLUTIONS = {"recovered": "已恢复正常", "closed": "已办结销号"}


def _when(moment: datetime) -> str:
    local = moment.astimezone(SHANGHAI)
    return f"{local.year}年{local.month}月{local.day}日 {local.hour:02d}:{local.minute:02d}"


def _named(alert: Alert) -> str:
    return f"第{chinese_code(alert.code)}项“{alert.title}”"


def state_of(alert: Alert) -> str:
    """The alert's state in a sentence, for a page that offers no button."""
    if alert.state == RESOLVED:
        how = _RESOLUTIONS.get(alert.resolution or "", "已解除")
        when = f"于{_when(alert.resolved_at)}" if alert.resolved_at else ""
        return f"{_named(alert)}{when}{how},督办提醒已解除,无需确认。"
    if alert.state == ACKNOWLEDGED and alert.acknowledged_at is not None:
        return f"{_named(alert)}的督办提醒已于{_when(alert.acknowledged_at)}确认,无需再次确认。"
    return f"{_named(alert)}的督办提醒尚未确认。"


def page(lines: list[str], *, status: int = 200, button: bool = False) -> HTMLResponse:
    """The page: a paragraph per line (escaped), and the confirm button when asked."""
    paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    form = '<form method="post"><button type="submit">确认已知悉</button></form>' if button else ""
    body = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex, nofollow"><title>督办提醒确认</title>'
        f"<style>{STYLE}</style></head>"
        f"<body><main><h1>督办提醒确认</h1>{paragraphs}{form}</main></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def confirm(alert: Alert) -> HTMLResponse:
    """What an unused, unexpired link shows: the button only while the alert is firing."""
    if alert.state == RESOLVED or alert.state == ACKNOWLEDGED:
        return page([state_of(alert)])
    return page([f"{_named(alert)}:点击下方按钮确认已知悉。"], button=True)


def acknowledged(alert: Alert, by_this_link: bool) -> HTMLResponse:
    """The answer to a link's POST that went through."""
    if by_this_link:
        return page([f"已确认:{_named(alert)}。谢谢。"])
    return page([f"已确认:{state_of(alert)}"])


def refused(exc: AckRefused, alert: Alert | None = None) -> HTMLResponse:
    """A refusal in Chinese, with its HTTP status, and the alert's state when one is known."""
    if alert is not None and exc.code == "alert_resolved":
        return page([state_of(alert)], status=exc.status)
    lines = [REFUSALS.get(exc.code, UNEXPECTED)]
    if alert is not None and exc.code in ("link_used", "link_expired"):
        lines.append(state_of(alert))
    return page(lines, status=exc.status)

"""Rendering the board's pages: the Jinja2 environment, the security headers, error pages."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from duban_shared.api import ApiError
from duban_shared.numerals import chinese_code, chinese_number
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader

from progress.api.board import words
from progress.api.board.session import BoardUser, is_https
from progress.api.deps import service

ENV = Environment(
    loader=PackageLoader("progress.api.board", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.globals.update(
    colours=words.COLOURS,
    colour_order=words.COLOUR_ORDER,
    reason_words=words.REASONS,
    status_words=words.STATUSES,
    role_words=words.ROLES,
    comparator_words=words.COMPARATORS,
    principal_words=words.PRINCIPALS,
    alert_state_words=words.ALERT_STATES,
    resolution_words=words.RESOLUTIONS,
    provisional_words=words.PROVISIONAL,
    provisional_mark=words.PROVISIONAL_MARK,
)
ENV.filters.update(
    when=words.when,
    day=words.day,
    cn=chinese_number,
    cn_code=chinese_code,
    reasons=words.reasons,
)
# before/after states of the audit trail: Chinese as it is, keys in order
ENV.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "sort_keys": True}
CSS = (files("progress.api.board") / "static" / "board.css").read_text(encoding="utf-8")
_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def render(template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """A page of the board."""
    html = ENV.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=_SECURITY_HEADERS)


def secure(request: Request) -> bool:
    """Whether cookies get the Secure flag: over HTTPS, and always in production."""
    return is_https(request) or service(request).settings.environment == "production"


def refusal(
    user: BoardUser, exc: ApiError, plan_slug: str | None, message: str | None = None
) -> HTMLResponse:
    """The error page for a refused read (403, 404, or anything else), with the error's code."""
    if message is None:
        message = {
            403: "您所在单位不负责该项工作,无权查看。",
            404: "没有找到该工作计划或工作要点。",
        }.get(exc.status, "暂时无法显示该页面,请稍后再试。")
    return render(
        "error.html.j2",
        status=exc.status,
        user=user,
        plan_slug=plan_slug,
        message=message,
        code=exc.code,
    )


CSRF_MESSAGE = "表单已失效(可能来自其他页面或已重新登录),请返回后重试。"

"""The board's stylesheet, login and logout (see session.py for how a login works)."""

from __future__ import annotations

import math
from collections.abc import Callable

from duban_shared.auth import AuthError
from duban_shared.throttle import LoginThrottle, address_key, client_key
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from progress.api.board.render import CSRF_MESSAGE, CSS, render, secure
from progress.api.board.session import (
    LOGIN_COOKIE,
    WHY,
    LoginFailed,
    LoginThrottled,
    UserDep,
    csrf_ok,
    csrf_token,
    end_login_cookie,
    end_session,
    exchange,
    form_fields,
    login_secret,
    revoke,
    safe_next,
    set_login_cookie,
    set_session,
)
from progress.api.deps import service

router = APIRouter(prefix="/board", include_in_schema=False)


@router.get("/static/board.css")
async def stylesheet() -> Response:
    """The board's stylesheet."""
    return Response(CSS, media_type="text/css", headers={"Cache-Control": "max-age=300"})


_QUERY_SECRETS = frozenset({"client_secret", "access_token", "token", "password"})


def _secret_in_query(request: Request) -> bool:
    return any(name.lower() in _QUERY_SECRETS for name in request.query_params)


def _login_form(
    request: Request,
    *,
    status: int = 200,
    next: str | None = None,
    username: str = "",
    notice: str | None = None,
    error: str | None = None,
    code: str | None = None,
    change: bool = False,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The login page, with the CSRF token of its login cookie (set when new); `change` adds
    the new password fields (a one-time password is being replaced)."""
    secret = login_secret(request)
    response = render(
        "login.html.j2",
        status=status,
        notice=notice,
        error=error,
        code=code,
        next=safe_next(next),
        username=username,
        change=change,
        csrf=csrf_token(secret),
    )
    response.headers.update(headers or {})
    set_login_cookie(response, secret, secure=secure(request))
    return response


_QUERY_MESSAGE = (
    "密码或密钥不能放在网址中(网址会被记录在日志和浏览器历史里)。请在登录表单中填写,"
    "并尽快修改该密码。"
)
CLIENT_LOGIN_MESSAGE = (
    "看板只接受个人账号登录:接口客户端的编号和密钥仅供系统对接使用。请使用您的用户名和密码登录;"
    "如还没有账号,请联系督办办公室开通。"
)
_CLIENT_FIELDS = frozenset({"client_id", "client_secret"})
PASSWORD_MISMATCH = "两次输入的新密码不一致,请重新输入。"  # noqa: S105 - a message


@router.get("/login")
async def login_page(
    request: Request, why: str | None = None, next: str | None = None
) -> HTMLResponse:
    """The login form: a personal account's username, password and, when enrolled, the TOTP
    code."""
    if _secret_in_query(request):
        return _login_form(request, status=400, error=_QUERY_MESSAGE, code="credentials_in_query")
    return _login_form(request, notice=WHY.get(why or ""), next=next)


@router.post("/login")
async def login(request: Request) -> Response:
    """Open a person's session at the registry; keep its token in the cookie and go back to
    the page that asked for the login.

    Refused before the registry is asked: secrets in the URL (400 credentials_in_query), an
    API client's id and secret (400 client_login_refused: machines only), a form without its
    CSRF token (403 csrf_failed), and, after repeated failures, a username or browser address
    that must wait (429 too_many_attempts with Retry-After)."""
    svc = service(request)
    fields = await form_fields(request)
    username = fields.get("username", "").strip().lower()
    password = fields.get("password", "")
    totp = fields.get("totp", "").strip() or None
    new_password = fields.get("new_password") or None
    target = safe_next(fields.get("next"))
    change = new_password is not None or "new_password_again" in fields

    def failed(
        message: str,
        status: int,
        code: str,
        headers: dict[str, str] | None = None,
        *,
        change: bool = change,
    ) -> HTMLResponse:
        return _login_form(
            request,
            status=status,
            error=message,
            code=code,
            next=target,
            username=username,
            change=change,
            headers=headers,
        )

    if _secret_in_query(request):
        return failed(_QUERY_MESSAGE, 400, "credentials_in_query")
    if not csrf_ok(request.cookies.get(LOGIN_COOKIE), fields.get("csrf")):
        return failed(CSRF_MESSAGE, 403, "csrf_failed")
    if _CLIENT_FIELDS & fields.keys():
        return failed(CLIENT_LOGIN_MESSAGE, 400, "client_login_refused")
    if not username or not password:
        return failed("请填写用户名和密码。", 400, "credentials_missing")
    if change and new_password != fields.get("new_password_again"):
        return failed(PASSWORD_MISMATCH, 400, "password_mismatch")
    throttle: LoginThrottle = svc.login_throttle
    source = request.client.host if request.client else None
    keys = (client_key(f"person:{username}"), address_key(source))
    wait = throttle.wait(*keys)
    if wait > 0:
        return _too_many(failed, wait)
    try:
        session = await exchange(
            svc.board_http,
            svc.settings.registry_base_url,
            username,
            password,
            totp=totp,
            new_password=new_password,
            source=source,
        )
        await svc.verifier.verify(session.token)
    except LoginThrottled as exc:
        return _too_many(failed, exc.seconds)
    except LoginFailed as exc:
        if exc.refused:
            throttle.failed(*keys)
        status = {"password_change_required": 409, "account_disabled": 403}.get(exc.code, 401)
        if exc.code in ("weak_password", "invalid_request"):
            status = 422
        return failed(
            str(exc),
            status,
            exc.code,
            change=change or exc.code in ("password_change_required", "weak_password"),
        )
    except AuthError:
        return failed("登录令牌未通过校验,请联系系统管理员。", 401, "invalid_token")
    throttle.succeeded(keys[0])
    response = RedirectResponse(target, status_code=303)
    set_session(response, session.token, session.seconds, secure=secure(request))
    end_login_cookie(response, secure=secure(request))
    return response


def _too_many(
    failed: Callable[[str, int, str, dict[str, str] | None], HTMLResponse], seconds: float
) -> HTMLResponse:
    wait = max(1, math.ceil(seconds))
    return failed(
        f"登录失败次数过多,请在{wait}秒后再试。",
        429,
        "too_many_attempts",
        {"Retry-After": str(wait)},
    )


@router.post("/logout")
async def logout(request: Request, user: UserDep) -> Response:
    """Revoke the session's token (the form carries the CSRF token): refused here at once, and
    by every service once the registry's revocation reached it (seconds)."""
    if not user.csrf_ok((await form_fields(request)).get("csrf")):
        return render("error.html.j2", status=403, user=user, message=CSRF_MESSAGE)
    svc = service(request)
    svc.verifier.revoke(user.token)
    await revoke(svc.board_http, svc.settings.registry_base_url, user.token)
    response = RedirectResponse("/board/login?why=logout", status_code=303)
    end_session(response, secure=secure(request))
    return response

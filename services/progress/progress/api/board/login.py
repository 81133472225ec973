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


_QUERY_SECRETS = frozenset({"client_secret", "access_token", "token"})


def _secret_in_query(request: Request) -> bool:
    return any(name.lower() in _QUERY_SECRETS for name in request.query_params)


def _login_form(
    request: Request,
    *,
    status: int = 200,
    next: str | None = None,
    client_id: str = "",
    notice: str | None = None,
    error: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The login page, with the CSRF token of its login cookie (set when new)."""
    secret = login_secret(request)
    response = render(
        "login.html.j2",
        status=status,
        notice=notice,
        error=error,
        code=code,
        next=safe_next(next),
        client_id=client_id,
        csrf=csrf_token(secret),
    )
    response.headers.update(headers or {})
    set_login_cookie(response, secret, secure=secure(request))
    return response


_QUERY_MESSAGE = (
    "客户端密钥不能放在网址中(网址会被记录在日志和浏览器历史里)。请在登录表单中填写,"
    "并请系统管理员为该客户端更换密钥。"
)


@router.get("/login")
async def login_page(
    request: Request, why: str | None = None, next: str | None = None
) -> HTMLResponse:
    """The login form: an API client's id and secret."""
    if _secret_in_query(request):
        return _login_form(request, status=400, error=_QUERY_MESSAGE, code="credentials_in_query")
    return _login_form(request, notice=WHY.get(why or ""), next=next)


@router.post("/login")
async def login(request: Request) -> Response:
    """Exchange the client's credentials for a token at the registry; keep it in the cookie.

    Refused before the registry is asked: credentials in the URL (400 credentials_in_query), a
    form without its CSRF token (403 csrf_failed), and, after repeated failures, a client id or
    browser address that must wait (429 too_many_attempts with Retry-After)."""
    svc = service(request)
    fields = await form_fields(request)
    client_id = fields.get("client_id", "").strip()
    secret = fields.get("client_secret", "").strip()
    target = safe_next(fields.get("next"))

    def failed(
        message: str, status: int, code: str, headers: dict[str, str] | None = None
    ) -> HTMLResponse:
        return _login_form(
            request,
            status=status,
            error=message,
            code=code,
            next=target,
            client_id=client_id,
            headers=headers,
        )

    if _secret_in_query(request):
        return failed(_QUERY_MESSAGE, 400, "credentials_in_query")
    if not csrf_ok(request.cookies.get(LOGIN_COOKIE), fields.get("csrf")):
        return failed(CSRF_MESSAGE, 403, "csrf_failed")
    if not client_id or not secret:
        return failed("请填写客户端编号和客户端密钥。", 400, "credentials_missing")
    throttle: LoginThrottle = svc.login_throttle
    source = request.client.host if request.client else None
    keys = (client_key(client_id), address_key(source))
    wait = throttle.wait(*keys)
    if wait > 0:
        return _too_many(failed, wait)
    try:
        token, seconds = await exchange(
            svc.board_http,
            svc.settings.registry_base_url,
            client_id,
            secret,
            source=source,
        )
        await svc.verifier.verify(token)
    except LoginThrottled as exc:
        return _too_many(failed, exc.seconds)
    except LoginFailed as exc:
        if exc.refused:
            throttle.failed(*keys)
        return failed(str(exc), 401, "login_failed")
    except AuthError:
        return failed("登录令牌未通过校验,请联系系统管理员。", 401, "invalid_token")
    throttle.succeeded(keys[0])
    response = RedirectResponse(target, status_code=303)
    set_session(response, token, seconds, secure=secure(request))
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

"""The logged-in person's own account on the board: change the password, and enrol or remove
an authenticator app (TOTP). The registry does the work (`/v1/me/...`, with the session's
token); the board shows its answers in Chinese."""

from __future__ import annotations

import math

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from progress.api.board.login import PASSWORD_MISMATCH
from progress.api.board.render import CSRF_MESSAGE, render, secure
from progress.api.board.session import (
    BoardUser,
    LoginFailed,
    LoginThrottled,
    UserDep,
    change_password,
    form_fields,
    registry_post,
    set_session,
)
from progress.api.deps import service

router = APIRouter(prefix="/board", include_in_schema=False)


def _password_form(
    user: BoardUser, *, status: int = 200, error: str | None = None, code: str | None = None
) -> HTMLResponse:
    return render("password.html.j2", status=status, user=user, error=error, code=code)


@router.get("/password")
async def password_page(user: UserDep) -> HTMLResponse:
    """The change-password form of the logged-in person."""
    return _password_form(user)


@router.post("/password")
async def password(request: Request, user: UserDep) -> Response:
    """Change the logged-in person's password at the registry: their sessions elsewhere end,
    this one goes on with the new session the registry answers."""
    fields = await form_fields(request)
    if not user.csrf_ok(fields.get("csrf")):
        return _password_form(user, status=403, error=CSRF_MESSAGE, code="csrf_failed")
    if user.principal.person is None:
        return _password_form(
            user, status=403, error="只有个人账号可以修改密码。", code="person_only"
        )
    current, new = fields.get("current_password", ""), fields.get("new_password", "")
    if not current or not new:
        return _password_form(
            user, status=400, error="请填写当前密码和新密码。", code="credentials_missing"
        )
    if new != fields.get("new_password_again"):
        return _password_form(user, status=400, error=PASSWORD_MISMATCH, code="password_mismatch")
    svc = service(request)
    try:
        session = await change_password(
            svc.board_http, svc.settings.registry_base_url, user.token, current, new
        )
    except LoginThrottled as exc:
        wait = max(1, math.ceil(exc.seconds))
        return _password_form(
            user, status=429, error=f"请在{wait}秒后再试。", code="too_many_attempts"
        )
    except LoginFailed as exc:
        status = {"wrong_password": 403, "weak_password": 422}.get(exc.code, 401)
        message = "当前密码不正确,请核对后重试。" if exc.code == "wrong_password" else str(exc)
        return _password_form(user, status=status, error=message, code=exc.code)
    svc.verifier.revoke(user.token)
    response = render("password.html.j2", user=user, done=True)
    set_session(response, session.token, session.seconds, secure=secure(request))
    return response


TOTP_MESSAGES = {
    "invalid_totp": "验证码不正确,请核对手机时间,并输入身份验证器当前显示的6位数字。",
    "totp_not_started": "请先点击“开始绑定”。",
    "wrong_password": "密码不正确,请核对后重试。",
}


def _totp_page(
    user: BoardUser,
    *,
    status: int = 200,
    enrolled: bool | None = None,
    secret: str | None = None,
    uri: str | None = None,
    notice: str | None = None,
    error: str | None = None,
    code: str | None = None,
) -> HTMLResponse:
    return render(
        "totp.html.j2",
        status=status,
        user=user,
        enrolled=enrolled,
        secret=secret,
        uri=uri,
        notice=notice,
        error=error,
        code=code,
    )


@router.get("/totp")
async def totp_page(user: UserDep) -> HTMLResponse:
    """The authenticator app (TOTP) page: start enrolling, or remove it."""
    return _totp_page(user)


@router.post("/totp")
async def totp(request: Request, user: UserDep) -> Response:
    """One step of the TOTP page (field `step`): `start` (a new secret to add to the app),
    `confirm` (its first code turns TOTP on), `disable` (with the password)."""
    fields = await form_fields(request)
    if not user.csrf_ok(fields.get("csrf")):
        return _totp_page(user, status=403, error=CSRF_MESSAGE, code="csrf_failed")
    svc = service(request)
    base = f"{svc.settings.registry_base_url}/v1/me/totp"
    step = fields.get("step", "")
    calls = {
        "start": (base, {}),
        "confirm": (f"{base}/confirm", {"code": fields.get("code", "").strip()}),
        "disable": (f"{base}/disable", {"password": fields.get("password", "")}),
    }
    if step not in calls:
        return _totp_page(user, status=400, error="请从页面上的按钮提交。", code="invalid_step")
    url, body = calls[step]
    try:
        answer = await registry_post(svc.board_http, url, body, token=user.token)
    except LoginThrottled as exc:
        wait = max(1, math.ceil(exc.seconds))
        return _totp_page(user, status=429, error=f"请在{wait}秒后再试。", code="too_many_attempts")
    except LoginFailed as exc:
        status = {"wrong_password": 403, "invalid_totp": 422, "totp_not_started": 409}.get(
            exc.code, 400
        )
        return _totp_page(
            user,
            status=status,
            error=TOTP_MESSAGES.get(exc.code, "请检查填写的内容:验证码为6位数字。"),
            code=exc.code,
        )
    if step == "start":
        return _totp_page(user, secret=answer.get("secret"), uri=answer.get("otpauth_uri"))
    if step == "confirm":
        return _totp_page(user, enrolled=True, notice="已绑定身份验证器:今后登录需填写动态验证码。")
    return _totp_page(user, enrolled=False, notice="已解除身份验证器:今后登录只需用户名和密码。")

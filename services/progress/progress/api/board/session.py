"""Who is looking at the board: a person's login, the token cookie, CSRF.

The board holds no password of its own: a person logs in with their personal account's
username, password and, when enrolled, TOTP code (`duban-registry create-account`, or the
office's `POST /v1/accounts`). Progress opens a session at the registry's `POST /v1/sessions`,
verifies the token as every request's token is verified, and keeps it in an HttpOnly,
SameSite=Lax cookie, Secure whenever the request came over HTTPS (directly, or per
X-Forwarded-Proto from a trusted proxy) and always in production. API clients' secrets are for
machines only: the board refuses them. When the session ends (a working day,
DUBAN_REGISTRY_SESSION_HOURS) or is revoked, the next page asks to log in again and comes back
to that page afterwards; logging out revokes the token at the registry, so no service accepts
it afterwards.

Every form carries a CSRF token derived from a secret another site can neither read nor guess:
the session's access token once logged in, and before that a random value in a short-lived
login cookie (so a login cannot be forged either).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
from duban_shared.auth import AuthError, Principal, TokenVerifier
from fastapi import Depends, HTTPException, Request, Response

from progress.api.deps import service

log = logging.getLogger(__name__)

COOKIE = "duban_board"
LOGIN_PATH = "/board/login"
HOME_PATH = "/board"

WHY = {  # ?why= on the login page, and what it says
    "expired": "登录已过期,请重新登录。",
    "invalid": "登录状态无效,请重新登录。",
    "login": "请先登录。",
    "logout": "您已退出登录。",
    "revoked": "您的登录已失效(已在别处退出、密码已修改或账号已停用),请重新登录。",
    "expired-form": "登录已过期,刚才提交的内容没有保存。请重新登录,再提交一次。",
    "revoked-form": "您的登录已失效,刚才提交的内容没有保存。请重新登录,再提交一次。",
}


@dataclass(frozen=True)
class BoardUser:
    """A logged-in person: the account whose session token the cookie holds."""

    principal: Principal
    token: str

    @property
    def name(self) -> str:
        """The person's name to show (the token's `name` claim, else the username); the token
        was verified before this user was made."""
        claims = jwt.decode(self.token, options={"verify_signature": False})
        name = claims.get("name")
        return str(name) if isinstance(name, str) and name else (self.principal.person or "")

    @property
    def csrf(self) -> str:
        """The token forms must send back: derived from the session's access token, which
        another site can neither read (HttpOnly) nor guess, so no state is kept."""
        return csrf_token(self.token)

    def csrf_ok(self, sent: str | None) -> bool:
        """Tell whether a form's CSRF field is this session's."""
        return csrf_ok(self.token, sent)


def csrf_token(secret: str) -> str:
    """The CSRF token of a form, derived from a secret held in an HttpOnly cookie."""
    digest = hmac.new(secret.encode(), b"duban-board-csrf", hashlib.sha256)
    return digest.hexdigest()[:32]


def csrf_ok(secret: str | None, sent: str | None) -> bool:
    """Tell whether a form's CSRF field belongs to the secret of the cookie."""
    if not secret or not sent:
        return False
    return hmac.compare_digest(sent, csrf_token(secret))


LOGIN_COOKIE = "duban_board_login"
LOGIN_COOKIE_SECONDS = 3600


def login_secret(request: Request) -> str:
    """The login form's secret: the login cookie's, or a new one (set it with the page)."""
    return request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)


def set_login_cookie(response: Response, secret: str, *, secure: bool) -> None:
    """Keep the login form's CSRF secret in a cookie only the login path sees."""
    response.set_cookie(
        LOGIN_COOKIE,
        secret,
        max_age=LOGIN_COOKIE_SECONDS,
        path=LOGIN_PATH,
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def end_login_cookie(response: Response, *, secure: bool) -> None:
    """Forget the login form's secret once logged in."""
    response.delete_cookie(
        LOGIN_COOKIE, path=LOGIN_PATH, httponly=True, samesite="strict", secure=secure
    )


def is_https(request: Request) -> bool:
    """Tell whether the request came over HTTPS (the scheme is the trusted proxy's word when
    DUBAN_TRUSTED_PROXIES lists the peer, duban_shared.app)."""
    return request.url.scheme == "https"


def safe_next(target: str | None) -> str:
    """Where to go after login: a board path only (no open redirect)."""
    if target and target.startswith(HOME_PATH) and not target.startswith("//"):
        return target
    return HOME_PATH


def login_redirect(request: Request, why: str) -> HTTPException:
    """A 303 to the login page that comes back to this page afterwards. A form sent with a
    session that has just ended comes back to the page the form was on (its Referer, a board
    page of this site), and the login page says that what was sent was not saved."""
    if request.method in ("GET", "HEAD"):
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    else:
        here = _form_page(request)
        why = f"{why}-form" if why in ("expired", "revoked") else why
    query = urlencode({"why": why, "next": safe_next(here)})
    return HTTPException(303, headers={"Location": f"{LOGIN_PATH}?{query}"})


def _form_page(request: Request) -> str:
    """The board page a form was sent from (the Referer of this site), else the board."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc and referer.netloc != request.url.netloc:
        return HOME_PATH
    return referer.path + (f"?{referer.query}" if referer.query else "")


async def board_user(request: Request) -> BoardUser:
    """The logged-in user of a board page; a 303 to the login page otherwise."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise login_redirect(request, "login")
    verifier: TokenVerifier = service(request).verifier
    try:
        principal = await verifier.verify(token)
    except AuthError as exc:
        if exc.status != 401:  # e.g. the registry's keys cannot be fetched: not the user's fault
            raise HTTPException(exc.status, exc.message) from None
        why = {"token_expired": "expired", "token_revoked": "revoked"}.get(exc.code, "invalid")
        raise login_redirect(request, why) from None
    return BoardUser(principal, token)


UserDep = Annotated[BoardUser, Depends(board_user)]


async def form_fields(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body as a dict (first value of each field)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[0] for k, v in parse_qs(body, max_num_fields=20).items()}


class LoginFailed(Exception):
    """A login the registry refused, or a registry that did not answer; says so in Chinese,
    with the registry's code (`login_failed` when it did not answer)."""

    def __init__(self, message: str, *, code: str = "login_failed", refused: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.refused = refused  # the credentials were wrong (counts as a failed attempt)


class LoginThrottled(Exception):
    """The registry asks this person or address to wait (429) before trying again."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry in {seconds:.0f}s")
        self.seconds = seconds


UNAVAILABLE = "登录服务(注册中心)暂不可用,请稍后再试。"
LOGIN_REFUSALS = {  # the registry's codes for POST /v1/sessions, and what the board says
    "invalid_credentials": "用户名或密码不正确,请核对后重试。",
    "invalid_totp": "动态验证码不正确或已使用过,请等待身份验证器显示下一个验证码后重试。",
    "totp_required": "该账号已绑定身份验证器,请填写6位动态验证码。",
    "account_disabled": "该账号已停用;如需恢复,请联系督办办公室。",
    "password_change_required": "您使用的是一次性密码,请设置新密码后登录。",
    "invalid_request": "请检查填写的内容:动态验证码为6位数字。",
}
COUNTED = frozenset({"invalid_credentials", "invalid_totp"})


@dataclass(frozen=True)
class Session:
    """A person's session from the registry: the token and how long it lasts."""

    token: str
    seconds: int


async def registry_post(
    http: httpx.AsyncClient,
    url: str,
    body: dict[str, str],
    *,
    source: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """POST JSON to the registry for a person (a login, or with the session's token); the
    answer's JSON, or LoginThrottled (429), or LoginFailed with the registry's code and a
    Chinese message."""
    headers = {"X-Forwarded-For": source} if source else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = await http.post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        log.warning("board: registry at %s unreachable: %r", url, exc)
        raise LoginFailed(UNAVAILABLE) from None
    if response.status_code == 429:
        try:
            seconds = float(response.headers.get("retry-after", "60"))
        except ValueError:
            seconds = 60.0
        raise LoginThrottled(seconds)
    if response.status_code in (401, 403, 409, 422):
        try:
            answer = response.json()
            code, message = str(answer.get("code")), str(answer.get("message"))
        except ValueError:
            code, message = "login_failed", UNAVAILABLE
        raise LoginFailed(
            LOGIN_REFUSALS.get(code, message),
            code=code,
            refused=code in COUNTED,
        )
    if response.status_code not in (200, 201):
        log.warning("board: the registry answered %s to %s", response.status_code, url)
        raise LoginFailed(UNAVAILABLE)
    answer = response.json()
    return answer if isinstance(answer, dict) else {}


async def _registry_call(
    http: httpx.AsyncClient,
    url: str,
    body: dict[str, str],
    *,
    source: str | None = None,
    token: str | None = None,
) -> Session:
    answer = await registry_post(http, url, body, source=source, token=token)
    return Session(str(answer["access_token"]), int(answer.get("expires_in", 600)))


async def exchange(
    http: httpx.AsyncClient,
    registry_url: str,
    username: str,
    password: str,
    *,
    totp: str | None = None,
    new_password: str | None = None,
    source: str | None = None,
) -> Session:
    """Log a person in at the registry (POST /v1/sessions). `source`, the browser's address,
    goes as X-Forwarded-For: the registry throttles by it when it trusts progress as a proxy
    (DUBAN_TRUSTED_PROXIES)."""
    body = {"username": username, "password": password}
    if totp:
        body["totp"] = totp
    if new_password:
        body["new_password"] = new_password
    return await _registry_call(http, f"{registry_url}/v1/sessions", body, source=source)


async def change_password(
    http: httpx.AsyncClient, registry_url: str, token: str, current: str, new: str
) -> Session:
    """Change the logged-in person's password at the registry (POST /v1/me/password): their
    other sessions end, and this one is replaced by the new session the registry answers."""
    return await _registry_call(
        http,
        f"{registry_url}/v1/me/password",
        {"current_password": current, "new_password": new},
        token=token,
    )


def set_session(response: Response, token: str, seconds: int, *, secure: bool) -> None:
    """Keep the access token in the board's cookie for as long as it is valid."""
    response.set_cookie(
        COOKIE,
        token,
        max_age=seconds,
        path=HOME_PATH,
        httponly=True,
        samesite="lax",
        secure=secure,
    )


def end_session(response: Response, *, secure: bool) -> None:
    """Forget the token."""
    response.delete_cookie(COOKIE, path=HOME_PATH, httponly=True, samesite="lax", secure=secure)


async def revoke(http: httpx.AsyncClient, registry_url: str, token: str) -> bool:
    """Revoke a session's token at the registry (RFC 7009), so every service refuses it;
    False (logged) when the registry did not take it."""
    try:
        response = await http.post(f"{registry_url}/oauth/revoke", data={"token": token})
    except httpx.HTTPError as exc:
        log.warning(
            "board logout: registry at %s unreachable, token not revoked: %r", registry_url, exc
        )
        return False
    if response.status_code != 200:
        log.warning(
            "board logout: the registry answered %s, token not revoked", response.status_code
        )
        return False
    return True

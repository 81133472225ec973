"""Who is looking at the board: login with an API client's credentials, the token cookie, CSRF.

The board holds no password of its own: a person logs in with the client id and secret of the
coordinating office's or an agency system's API client (`duban-registry create-client`).
Progress exchanges them at the registry's `POST /oauth/token`, verifies the token as every
request's token is verified, and keeps it in an HttpOnly, SameSite=Lax cookie, Secure whenever
the request came over HTTPS (directly, or per X-Forwarded-Proto from a trusted proxy) and always
in production. When the token expires (10 minutes by default) the next page asks to log in
again; logging out revokes the token at the registry, so no service accepts it afterwards.

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
from typing import Annotated
from urllib.parse import parse_qs, urlencode

import httpx
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
}


@dataclass(frozen=True)
class BoardUser:
    """A logged-in person: the API client whose token the cookie holds."""

    principal: Principal
    token: str

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
    """A 303 to the login page that comes back to this page afterwards."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    query = urlencode({"why": why, "next": safe_next(here)})
    return HTTPException(303, headers={"Location": f"{LOGIN_PATH}?{query}"})


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
        raise login_redirect(
            request, "expired" if exc.code == "token_expired" else "invalid"
        ) from None
    return BoardUser(principal, token)


UserDep = Annotated[BoardUser, Depends(board_user)]


async def form_fields(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body as a dict (first value of each field)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[0] for k, v in parse_qs(body, max_num_fields=20).items()}


class LoginFailed(Exception):
    """Credentials the registry refused, or a registry that did not answer; says so in Chinese."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused  # the credentials were wrong (counts as a failed attempt)


class LoginThrottled(Exception):
    """The registry asks this client or address to wait (429) before trying again."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry in {seconds:.0f}s")
        self.seconds = seconds


async def exchange(
    http: httpx.AsyncClient,
    registry_url: str,
    client_id: str,
    secret: str,
    *,
    source: str | None = None,
) -> tuple[str, int]:
    """Trade client credentials for an access token at the registry; (token, seconds valid).
    `source`, the browser's address, goes as X-Forwarded-For: the registry throttles by it when
    it trusts progress as a proxy (DUBAN_TRUSTED_PROXIES)."""
    try:
        response = await http.post(
            f"{registry_url}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
            },
            headers={"X-Forwarded-For": source} if source else None,
        )
    except httpx.HTTPError as exc:
        log.warning("board login: registry at %s unreachable: %r", registry_url, exc)
        raise LoginFailed("登录服务(注册中心)暂不可用,请稍后再试。") from None
    if response.status_code == 429:
        try:
            seconds = float(response.headers.get("retry-after", "60"))
        except ValueError:
            seconds = 60.0
        raise LoginThrottled(seconds)
    if response.status_code in (400, 401):
        raise LoginFailed("客户端编号或密钥不正确,或该客户端已停用。请核对后重试。", refused=True)
    if response.status_code != 200:
        log.warning("board login: registry answered %s", response.status_code)
        raise LoginFailed("登录服务(注册中心)暂不可用,请稍后再试。")
    body = response.json()
    return str(body["access_token"]), int(body.get("expires_in", 600))


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

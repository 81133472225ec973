"""Who is looking at the board: login with an API client's credentials, the token cookie, CSRF.

The board holds no password of its own: a person logs in with the client id and secret of the
coordinating office's or an agency system's API client (`duban-registry create-client`).
Progress exchanges them at the registry's `POST /oauth/token`, verifies the token as every
request's token is verified, and keeps it in an HttpOnly, SameSite=Lax cookie (Secure in
production). When the token expires (10 minutes by default) the next page asks to log in again.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qs, urlencode

import httpx
from duban_shared.auth import AuthError, Principal, TokenVerifier
from fastapi import Depends, HTTPException, Request, Response

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
        digest = hmac.new(self.token.encode(), b"duban-board-csrf", hashlib.sha256)
        return digest.hexdigest()[:32]

    def csrf_ok(self, sent: str | None) -> bool:
        """Tell whether a form's CSRF field is this session's."""
        return sent is not None and hmac.compare_digest(sent, self.csrf)


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
    verifier: TokenVerifier = request.app.state.service.verifier
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


async def exchange(
    http: httpx.AsyncClient, registry_url: str, client_id: str, secret: str
) -> tuple[str, int]:
    """Trade client credentials for an access token at the registry; (token, seconds valid)."""
    try:
        response = await http.post(
            f"{registry_url}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
            },
        )
    except httpx.HTTPError as exc:
        log.warning("board login: registry at %s unreachable: %r", registry_url, exc)
        raise LoginFailed("登录服务(注册中心)暂不可用,请稍后再试。") from None
    if response.status_code in (400, 401):
        raise LoginFailed("客户端编号或密钥不正确,或该客户端已停用。请核对后重试。")
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

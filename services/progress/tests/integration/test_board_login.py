"""The board's login over the in-process stack: its CSRF token, throttling before the registry is
asked, secrets kept out of URLs, and the Secure flag of its cookies."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

import httpx
from progress.api.board.session import COOKIE, LOGIN_COOKIE
from progress.main import create_app as progress_app

from tests.stack import PLAN, Stack, board_login


def _code(page: httpx.Response) -> str | None:
    found = re.search(r'class="error" role="alert" data-code="([a-z_]+)"', page.text)
    return found.group(1) if found else None


async def _csrf(board: httpx.AsyncClient) -> str:
    page = await board.get("/board/login")
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


async def test_the_login_form_needs_its_csrf_token(stack: Stack, board: httpx.AsyncClient) -> None:
    office = stack.office_person
    fields = {"username": office.username, "password": office.password}
    # A form posted from another site has neither the login cookie nor its token.
    forged = await board.post("/board/login", data=fields)
    assert (forged.status_code, _code(forged)) == (403, "csrf_failed")
    csrf = await _csrf(board)
    assert board.cookies[LOGIN_COOKIE]
    wrong = await board.post("/board/login", data={**fields, "csrf": "0" * 32})
    assert (wrong.status_code, _code(wrong)) == (403, "csrf_failed")
    elsewhere = httpx.AsyncClient(transport=board._transport, base_url="http://test")
    async with elsewhere:  # the token without its cookie (another browser) does not do either
        stolen = await elsewhere.post("/board/login", data={**fields, "csrf": csrf})
    assert (stolen.status_code, _code(stolen)) == (403, "csrf_failed")
    assert COOKIE not in board.cookies
    done = await board.post("/board/login", data={**fields, "csrf": csrf})
    assert done.status_code == 303, done.text
    assert board.cookies[COOKIE]


async def test_failed_logins_are_throttled_before_the_registry_is_asked_and_lock_the_account(
    stack: Stack, board: httpx.AsyncClient
) -> None:
    forestry = stack.forestry_person
    csrf = await _csrf(board)

    async def attempt(username: str, password: str) -> httpx.Response:
        return await board.post(
            "/board/login", data={"csrf": csrf, "username": username, "password": password}
        )

    # 1. The board's own throttle: after 5 free failures a username and an address must wait,
    #    and are refused without asking the registry (an unknown username fails alike).
    for _ in range(5):
        assert _code(await attempt("nobody.here", "wrong password")) == "invalid_credentials"
    assert _code(await attempt("nobody.here", "wrong password")) == "invalid_credentials"
    asked = stack.registry_link.requests
    for _ in range(300):
        throttled = await attempt("nobody.here", "wrong password")
        assert (throttled.status_code, _code(throttled)) == (429, "too_many_attempts")
    assert throttled.headers["retry-after"] == "1"
    assert "秒后再试" in throttled.text
    assert stack.registry_link.requests == asked  # refused without asking the registry
    stack.clock.advance(timedelta(seconds=1))
    assert _code(await attempt("nobody.here", "wrong password")) == "invalid_credentials"
    throttled = await attempt("nobody.here", "wrong password")
    assert (throttled.status_code, throttled.headers["retry-after"]) == (429, "2")

    # 2. The registry's lockout: 5 wrong passwords in a row lock the account
    #    (DUBAN_REGISTRY_LOCKOUT_FAILURES) for 15 minutes, the right password included.
    stack.clock.advance(timedelta(minutes=16))  # the board's throttle forgot the failures
    for _ in range(5):
        assert _code(await attempt(forestry.username, "wrong password")) == "invalid_credentials"
    locked = await attempt(forestry.username, forestry.password)
    assert (locked.status_code, _code(locked)) == (429, "too_many_attempts")
    assert int(locked.headers["retry-after"]) > 800  # about 15 minutes
    stack.clock.advance(timedelta(minutes=15))
    assert (await attempt(forestry.username, forestry.password)).status_code == 303


async def test_secrets_in_the_login_url_are_refused(stack: Stack, board: httpx.AsyncClient) -> None:
    office = stack.office_person
    shown = await board.get("/board/login", params={"password": office.password})
    assert (shown.status_code, _code(shown)) == (400, "credentials_in_query")
    assert office.password not in shown.text
    csrf = await _csrf(board)
    asked = stack.registry_link.requests
    posted = await board.post(
        "/board/login",
        params={"username": office.username, "password": office.password},
        data={"csrf": csrf, "username": office.username, "password": office.password},
    )
    assert (posted.status_code, _code(posted)) == (400, "credentials_in_query")
    assert stack.registry_link.requests == asked and COOKIE not in board.cookies


async def test_an_api_clients_secret_does_not_log_in_to_the_board(
    stack: Stack, board: httpx.AsyncClient
) -> None:
    office = stack.office
    csrf = await _csrf(board)
    asked = stack.registry_link.requests
    refused = await board.post(
        "/board/login",
        data={"csrf": csrf, "client_id": office.client_id, "client_secret": office.secret},
    )
    assert (refused.status_code, _code(refused)) == (400, "client_login_refused")
    assert "仅供系统对接使用" in refused.text and "个人账号" in refused.text
    assert stack.registry_link.requests == asked and COOKIE not in board.cookies


def _set_cookies(response: httpx.Response) -> dict[str, str]:
    return {header.split("=", 1)[0]: header for header in response.headers.get_list("set-cookie")}


async def test_cookies_are_secure_whenever_the_request_came_over_https(
    stack: Stack, board: httpx.AsyncClient
) -> None:
    office = stack.office_person
    # Plain HTTP (make up on loopback): no Secure flag, or the browser would drop the cookie.
    plain = await board_login(board, office)
    assert plain.status_code == 303
    assert "secure" not in _set_cookies(plain)[COOKIE].lower()

    # HTTPS straight to the service.
    transport = board._transport
    async with httpx.AsyncClient(transport=transport, base_url="https://board.example") as tls:
        done = await board_login(tls, office)
    assert done.status_code == 303, done.text
    assert "; secure" in _set_cookies(done)[COOKIE].lower()

    # Behind a TLS-terminating proxy: X-Forwarded-Proto counts only from a trusted proxy.
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=proxied
    ) as untrusted:
        spoofed = await board_login(untrusted, office)
    assert "secure" not in _set_cookies(spoofed)[COOKIE].lower()
    stack.progress.settings = stack.progress.settings.model_copy(
        update={"trusted_proxies": "127.0.0.1, 10.0.0.0/8"}
    )
    behind_proxy = httpx.ASGITransport(app=progress_app(stack.progress))  # the peer: 127.0.0.1
    async with httpx.AsyncClient(
        transport=behind_proxy, base_url="http://test", headers=proxied
    ) as trusted:
        page = await trusted.get("/board/login")
        assert "; secure" in _set_cookies(page)[LOGIN_COOKIE].lower()
        # The browser talks HTTPS to the proxy, so it sends the Secure cookie back.
        secret = page.cookies[LOGIN_COOKIE]
        found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert found is not None
        csrf = found.group(1)

        async def post(username: str, password: str) -> httpx.Response:
            return await trusted.post(
                "/board/login",
                data={"csrf": csrf, "username": username, "password": password},
                headers={"Cookie": f"{LOGIN_COOKIE}={secret}"},
            )

        done = await post(office.username, office.password)
        assert done.status_code == 303, done.text
        assert "; secure" in _set_cookies(done)[COOKIE].lower()
        # ... and failed logins count against the browser's address, not the proxy's.
        for n in range(6):
            assert _code(await post(f"nobody{n}", "wrong password")) == "invalid_credentials"
    throttle = stack.progress.login_throttle
    assert throttle.wait("address:203.0.113.7") > 0
    assert throttle.wait("address:127.0.0.1") == 0.0


async def test_an_expired_session_returns_to_the_page_after_logging_in_again(
    stack: Stack, board: httpx.AsyncClient
) -> None:
    forestry = stack.forestry_person
    assert (await board_login(board, forestry)).status_code == 303
    page = f"/board/work-points/{PLAN}/35"
    assert (await board.get(page)).status_code == 200
    stack.clock.advance(timedelta(hours=10, minutes=1))  # past a working day (and the leeway)

    # A page: back to it after the login, with the reason in Chinese.
    expired = await board.get(page)
    assert expired.status_code == 303
    location = expired.headers["location"]
    assert location == f"/board/login?why=expired&next={quote(page, safe='')}"
    shown = await board.get(location)
    assert "登录已过期,请重新登录。" in shown.text and f'value="{page}"' in shown.text
    # A form sent from a page: back to that page, and told that nothing was saved.
    sent = await board.post(
        f"{page}/notices", data={"csrf": "x"}, headers={"Referer": f"http://test{page}"}
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == f"/board/login?why=expired-form&next={quote(page, safe='')}"
    assert "提交的内容没有保存" in (await board.get(sent.headers["location"])).text
    # Another site's page is never where the login goes back to.
    foreign = await board.post(
        f"{page}/notices", data={}, headers={"Referer": "http://evil.example/board/x"}
    )
    assert foreign.headers["location"].endswith("next=%2Fboard")

    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', shown.text)
    assert csrf is not None
    again = await board.post(
        "/board/login",
        data={
            "csrf": csrf.group(1),
            "username": forestry.username,
            "password": forestry.password,
            "next": page,
        },
    )
    assert (again.status_code, again.headers["location"]) == (303, page)
    assert (await board.get(page)).status_code == 200

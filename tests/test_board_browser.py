"""The supervision board in a real browser: headless Chromium (Debian's package, installed by
scripts/chromium.sh) driven by Playwright's async API, against the three services on real Kafka
and PostgreSQL, each served over its own loopback HTTP port (the board logs in at the registry
and reads alerts from the notifier over HTTP, as in production).

Screenshots go to test-artifacts/screenshots/ (kept by CI).
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pyotp
import pytest
import uvicorn
from notifier.main import create_app as notifier_app
from notifier.store.models import Alert, NotificationLog
from playwright.async_api import Browser, Page, async_playwright, expect
from progress.main import create_app as progress_app
from registry.main import create_app as registry_app
from sqlmodel import col, select

from tests.harness import ROOT, wait_for
from tests.stack import FORESTRY, PLAN, Client, Person, Stack, create_person, plan_2025_text

CHROMIUM = os.environ.get("DUBAN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
TRACE_UI = "http://127.0.0.1:16686/trace/{trace_id}"
RED = "rgb(183, 28, 28)"  # --red of board.css
PLAN_2025 = "zhaoqing-digital-2025"


@dataclass
class Served:
    """The stack's three apps on loopback ports."""

    registry: str
    progress: str
    notifier: str


def _listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    return sock


@pytest.fixture
async def served(stack: Stack) -> AsyncIterator[Served]:
    """Serve registry, notifier and progress with uvicorn in the test's event loop."""
    sockets = [_listening_socket() for _ in range(3)]
    urls = [f"http://127.0.0.1:{s.getsockname()[1]}" for s in sockets]
    stack.progress.settings = stack.progress.settings.model_copy(
        update={"registry_url": urls[0], "notifier_url": urls[2], "trace_ui_url": TRACE_UI}
    )
    apps = [
        registry_app(stack.registry),
        progress_app(stack.progress),
        notifier_app(stack.notifier),
    ]
    servers = [
        uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning")) for app in apps
    ]
    tasks = [
        asyncio.create_task(server.serve(sockets=[sock]))
        for server, sock in zip(servers, sockets, strict=True)
    ]

    async def started() -> bool:
        return all(server.started for server in servers)

    await wait_for(started, what="the three HTTP servers to start")
    try:
        yield Served(*urls)
    finally:
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks)
        for sock in sockets:
            sock.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium from Debian, launched by Playwright (no downloaded browser)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"No Chromium at {CHROMIUM}: run `bash scripts/chromium.sh`", pytrace=False)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


async def shot(page: Page, name: str) -> None:
    """Save a full-page screenshot as a test artefact."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def fill_login(page: Page, username: str, password: str, *, totp: str | None = None) -> None:
    """Fill in the login form on the page (already open) and send it."""
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码", exact=True).fill(password)
    if totp is not None:
        await page.get_by_label("动态验证码").fill(totp)
    await page.get_by_role("button", name="登录").click()


async def login_as(
    page: Page,
    base_url: str,
    username: str,
    password: str,
    *,
    totp: str | None = None,
    start: str = "/board",
    lands: str = rf"/board/plans/{PLAN}$",
) -> None:
    """Log in to the board as a person: open `start` (progress at `base_url`), which sends
    to the login page, fill it in, and wait to land on `lands` (a regex of the URL)."""
    await page.goto(f"{base_url}{start}")
    await expect(page).to_have_url(re.compile(r"/board/login\?"))
    await fill_login(page, username, password, totp=totp)
    await expect(page).to_have_url(re.compile(lands))


async def login(page: Page, served: Served, person: Person) -> None:
    """Log in to the board as one of the stack's people (its index page, the only plan)."""
    await login_as(page, served.progress, person.username, person.password)


def colour_of(item: dict[str, Any]) -> str:
    """The board's colour key of a work point from the read API's progress."""
    return {"closed": "closed", "in_review": "review"}.get(item["closure"], item["level"])


async def api_colours(stack: Stack, who: Client) -> dict[int, str]:
    response = await stack.progress_http.get(
        f"/v1/plans/{PLAN}/progress", params={"limit": 100}, headers=await stack.auth(who)
    )
    assert response.status_code == 200, response.text
    return {item["number"]: colour_of(item) for item in response.json()["items"]}


async def board_colours(page: Page) -> dict[int, str]:
    cells = await page.locator("a.cell").evaluate_all(
        "cells => cells.map(c => [Number(c.dataset.number), c.dataset.colour])"
    )
    return {int(n): str(c) for n, c in cells}


async def until_alerted(stack: Stack, number: int) -> Alert:
    """Wait until the notifier has an alert on the work point, with a planned delivery."""
    found: list[Alert] = []

    async def alerted() -> bool:
        async with stack.notifier.sessions() as session:
            alert = (
                await session.exec(select(Alert).where(Alert.work_point_id == f"{PLAN}/{number}"))
            ).first()
            if alert is None:
                return False
            traced = (
                await session.exec(
                    select(NotificationLog.id).where(
                        NotificationLog.alert_id == alert.id,
                        col(NotificationLog.traceparent).is_not(None),
                    )
                )
            ).first()
            found[:] = [alert]
            return traced is not None

    await wait_for(alerted, what=f"an alert on work point {number}")
    return found[0]


async def test_office_sees_the_board_turn_red_and_opens_the_timeline(
    stack: Stack, served: Served, browser: Browser
) -> None:
    context = await browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await login(page, served, stack.office_person)

    # The board renders the 50 work points, in colours that match the read API.
    cells = page.locator("a.cell")
    await expect(cells).to_have_count(50)
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    assert await board_colours(page) == await api_colours(stack, stack.office)
    summary = (await stack.office_get(f"/v1/plans/{PLAN}/summary")).json()["totals"]
    for level, count in summary["by_level"].items():
        await expect(page.locator(f'a.count[data-colour="{level}"] strong')).to_have_text(
            str(count)
        )
    await shot(page, "board-office")

    # A blocked report travels through Kafka and turns work point 35 red.
    report = await stack.post_event(
        stack.forestry, 35, "blocked", percent=40, note="林分优化用地审批未完成"
    )
    await stack.until_applied(report)
    alert = await until_alerted(stack, 35)
    ack = await stack.notifier_http.post(
        f"/v1/alerts/{alert.id}/ack", headers=await stack.auth(stack.forestry)
    )
    assert ack.status_code == 200, ack.text
    await page.reload()
    cell = page.locator('a.cell[data-number="35"]')
    await expect(cell).to_have_attribute("data-colour", "red")
    await expect(cell.locator(".m")).to_have_text("红")  # not by colour alone
    assert await cell.evaluate("c => getComputedStyle(c).backgroundColor") == RED
    assert await board_colours(page) == await api_colours(stack, stack.office)
    await page.get_by_label("颜色", exact=True).select_option("red")
    await page.get_by_role("button", name="筛选").click()
    await expect(page.locator('a.cell[data-number="35"]')).to_be_visible()
    assert set((await board_colours(page)).values()) == {"red"}
    await shot(page, "board-office-red")

    # A click opens the work point's timeline: the report, the transition, the alert and its
    # acknowledgement, newest first, the alert linked to its trace.
    await page.locator('a.cell[data-number="35"]').click()
    await expect(page).to_have_url(re.compile(rf"/board/work-points/{PLAN}/35$"))
    await expect(page.locator("h1")).to_contain_text("加强林业数字化应用")
    timeline = page.locator("ol.timeline")
    report_item = timeline.locator('li[data-kind="report"]').first
    await expect(report_item).to_contain_text("市林业局报送:受阻")
    await expect(report_item).to_contain_text("林分优化用地审批未完成")
    await expect(timeline.locator('li[data-kind="transition"]').first).to_contain_text("红色")
    alert_item = timeline.locator('li[data-kind="alert"]')
    await expect(alert_item).to_contain_text("督办提醒")
    await expect(alert_item.locator("a.trace")).to_have_attribute(
        "href", re.compile(r"^http://127\.0\.0\.1:16686/trace/[0-9a-f]{32}$")
    )
    await expect(timeline.locator('li[data-kind="ack"]')).to_contain_text("确认知悉")
    kinds = await timeline.locator("li").evaluate_all("items => items.map(i => i.dataset.kind)")
    assert kinds.index("ack") < kinds.index("alert") < kinds.index("report")  # newest first
    await shot(page, "work-point-35-timeline")

    # Open alerts, each linked to its trace; and the scorecards.
    await page.get_by_role("link", name="未解除告警").click()
    row = page.locator(f'tr[data-alert="{alert.id}"]')
    await expect(row).to_contain_text("加强林业数字化应用")
    await expect(row).to_contain_text("已确认")
    await expect(row.locator("a.trace")).to_have_attribute(
        "href", re.compile("/trace/[0-9a-f]{32}$")
    )
    await shot(page, "alerts-office")
    await page.get_by_role("link", name="单位记分卡").click()
    forestry_row = page.locator(f'tr[data-agency="{stack.forestry_id}"]')
    await expect(forestry_row).to_contain_text("市林业局")
    await expect(page.locator("table.scorecards tbody tr")).to_have_count(
        len((await stack.office_get(f"/v1/plans/{PLAN}/scorecards")).json())
    )
    await shot(page, "scorecards-office")

    # Logging out needs the page's CSRF token: a forged form is refused, the button works.
    cookies = {c["name"]: c["value"] for c in await context.cookies()}
    async with httpx.AsyncClient(base_url=served.progress, cookies=cookies) as http:
        forged = await http.post("/board/logout", data={"csrf": "forged"})
    assert forged.status_code == 403
    await page.get_by_role("button", name="退出登录").click()
    await expect(page.locator(".notice")).to_have_text("您已退出登录。")
    await page.goto(f"{served.progress}/board/plans/{PLAN}")
    await expect(page).to_have_url(re.compile(r"/board/login\?"))
    await context.close()


async def test_an_agency_sees_its_own_work_points_and_a_wrong_password_is_refused(
    stack: Stack, served: Served, browser: Browser
) -> None:
    context = await browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    forestry = stack.forestry_person

    await page.goto(f"{served.progress}/board/login")
    await fill_login(page, forestry.username, "not the password")
    await expect(page.locator(".error")).to_contain_text("用户名或密码不正确")
    await expect(page.get_by_label("用户名")).to_have_value(forestry.username)
    await shot(page, "login-wrong-password")

    await login(page, served, forestry)
    own = await api_colours(stack, stack.forestry)
    assert 35 in own and len(own) < 50
    await expect(page.locator("a.cell")).to_have_count(len(own))
    assert await board_colours(page) == own
    await expect(page.locator(".who")).to_contain_text("市林业局")
    await expect(page.locator(".who")).to_contain_text("林小森")
    await shot(page, "board-agency")

    # Another agency's work point is not shown to it.
    other = next(n for n in range(1, 51) if n not in own)
    response = await page.goto(f"{served.progress}/board/work-points/{PLAN}/{other}")
    assert response is not None and response.status == 403
    await expect(page.locator(".error")).to_contain_text("无权查看")

    # The notifier down: the page still renders and says so.
    stack.progress.settings = stack.progress.settings.model_copy(
        update={"notifier_url": "http://127.0.0.1:9"}
    )
    await page.goto(f"{served.progress}/board/work-points/{PLAN}/35")
    await expect(page.locator("h1")).to_contain_text("加强林业数字化应用")
    await expect(page.locator(".warning")).to_contain_text("告警服务暂不可用")

    # The session lasts a working day (10 hours); then the next page asks to log in again, in
    # Chinese, and comes back to that page afterwards.
    stack.clock.advance(timedelta(hours=9, minutes=50))
    await page.reload()
    await expect(page.locator("h1")).to_contain_text("加强林业数字化应用")
    stack.clock.advance(timedelta(minutes=11))
    await page.goto(f"{served.progress}/board/work-points/{PLAN}/35")
    await expect(page).to_have_url(re.compile(r"/board/login\?why=expired"))
    await expect(page.locator(".notice")).to_have_text("登录已过期,请重新登录。")
    await shot(page, "login-expired")
    await fill_login(page, forestry.username, forestry.password)
    await expect(page).to_have_url(re.compile(rf"/board/work-points/{PLAN}/35$"))
    await context.close()


async def test_a_person_with_totp_logs_in_changes_the_password_and_logs_out_at_phone_size(
    stack: Stack, served: Served, browser: Browser
) -> None:
    person, _ = await create_person(
        stack.registry, "zhao.office", "coordinator", display_name="赵督办"
    )
    opened = await stack.registry_http.post(
        "/v1/sessions", json={"username": person.username, "password": person.password}
    )
    mine = {"Authorization": f"Bearer {opened.json()['access_token']}"}
    secret = (await stack.registry_http.post("/v1/me/totp", headers=mine)).json()["secret"]
    totp = pyotp.TOTP(secret)
    confirmed = await stack.registry_http.post(
        "/v1/me/totp/confirm", json={"code": totp.at(stack.clock.now())}, headers=mine
    )
    assert confirmed.status_code == 200, confirmed.text
    stack.clock.advance(timedelta(seconds=30))  # the next code

    context = await browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844})
    page = await context.new_page()
    await page.goto(f"{served.progress}/board/login")
    await expect(page.locator("form")).to_contain_text("动态验证码")
    assert await _fits(page)
    await shot(page, "login-390")

    # A new account's one-time password is replaced on the login form, typed twice.
    newcomer, one_time = await create_person(
        stack.registry, "qian.new", "agency", FORESTRY, display_name="钱新", password=None
    )
    assert one_time is not None
    await fill_login(page, newcomer.username, one_time)
    await expect(page.locator(".error")).to_contain_text("一次性密码")
    await shot(page, "login-one-time-password-390")
    await page.get_by_label("一次性密码(或当前密码)").fill(one_time)
    await page.get_by_label("新密码(至少10个字符)").fill("my own password 1")
    await page.get_by_label("再次输入新密码").fill("my own password 2")
    await page.get_by_role("button", name="登录").click()
    await expect(page.locator(".error")).to_contain_text("两次输入的新密码不一致")
    await page.get_by_label("一次性密码(或当前密码)").fill(one_time)
    await page.get_by_label("新密码(至少10个字符)").fill("my own password 1")
    await page.get_by_label("再次输入新密码").fill("my own password 1")
    await page.get_by_role("button", name="登录").click()
    await expect(page).to_have_url(re.compile(rf"/board/plans/{PLAN}$"))
    await expect(page.locator(".who")).to_contain_text("钱新")
    # ... and enrols an authenticator app on the board: the secret, then its first code.
    await page.get_by_role("link", name="身份验证器").click()
    await page.get_by_role("button", name="开始绑定").click()
    shown_secret = await page.locator("code.secret").get_attribute("data-secret")
    assert shown_secret is not None
    await expect(page.locator("a.otpauth")).to_have_attribute(
        "href", re.compile(r"^otpauth://totp/.*qian\.new")
    )
    assert await _fits(page)
    await shot(page, "totp-enrol-390")
    own_code = pyotp.TOTP(shown_secret).at(stack.clock.now())
    await page.get_by_label("验证码").fill(own_code)
    await page.get_by_role("button", name="确认绑定").click()
    await expect(page.locator(".notice")).to_contain_text("已绑定身份验证器")
    me = await stack.registry_http.post(
        "/v1/sessions", json={"username": newcomer.username, "password": "my own password 1"}
    )
    assert (me.status_code, me.json()["code"]) == (401, "totp_required")
    await page.get_by_role("button", name="退出登录").click()
    await expect(page.locator(".notice")).to_have_text("您已退出登录。")

    # Without the code: asked for it; with it: in, and the page says who is logged in.
    await page.goto(f"{served.progress}/board")
    await fill_login(page, person.username, person.password)
    await expect(page.locator(".error")).to_contain_text("6位动态验证码")
    await shot(page, "login-totp-required-390")
    await fill_login(page, person.username, person.password, totp=totp.at(stack.clock.now()))
    await expect(page).to_have_url(re.compile(rf"/board/plans/{PLAN}$"))
    await expect(page.locator(".who")).to_contain_text("赵督办")
    await expect(page.locator(".who")).to_contain_text("zhao.office")
    assert await _fits(page)
    await shot(page, "board-person-390")

    # The change-password page: a wrong current password is refused, then the change works
    # and the session goes on with the new password's session.
    await page.get_by_role("link", name="修改密码").click()
    await page.get_by_label("当前密码").fill("not the password")
    await page.get_by_label("新密码", exact=True).fill("a new good password")
    await page.get_by_label("再次输入新密码").fill("a new good password")
    await page.get_by_role("button", name="修改密码").click()
    await expect(page.locator(".error")).to_contain_text("当前密码不正确")
    await page.get_by_label("当前密码").fill(person.password)
    await page.get_by_label("新密码", exact=True).fill("a new good password")
    await page.get_by_label("再次输入新密码").fill("a new good password")
    await page.get_by_role("button", name="修改密码").click()
    await expect(page.locator(".notice")).to_contain_text("密码已修改")
    assert await _fits(page)
    await shot(page, "password-changed-390")
    await page.goto(f"{served.progress}/board/plans/{PLAN}")
    await expect(page.locator("a.cell")).to_have_count(50)

    # The session opened through the API before the change is refused now (once the
    # registry's revocation went round the broker).
    async def old_session_refused() -> bool:
        old = await stack.registry_http.get("/v1/me", headers=mine)
        return (old.status_code, old.json().get("code")) == (401, "token_revoked")

    await wait_for(old_session_refused, what="the session from before the change to end")

    # Logging out revokes the session: the board asks to log in again.
    token = next(c["value"] for c in await context.cookies() if c["name"] == "duban_board")
    await page.get_by_role("button", name="退出登录").click()
    await expect(page.locator(".notice")).to_have_text("您已退出登录。")
    await shot(page, "logged-out-390")
    await page.goto(f"{served.progress}/board/plans/{PLAN}")
    await expect(page).to_have_url(re.compile(r"/board/login\?"))
    gone = await stack.registry_http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert (gone.status_code, gone.json()["code"]) == (401, "token_revoked")
    await context.close()


async def test_the_office_decides_a_closure_request_from_the_board(
    stack: Stack, served: Served, browser: Browser
) -> None:
    done = await stack.post_event(stack.forestry, 35, "done", percent=100, note="已完成验收")
    await stack.until_applied(done)
    context = await browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await login(page, served, stack.office_person)
    await expect(page.locator('a.cell[data-number="35"]')).to_have_attribute(
        "data-colour", "review"
    )
    await page.locator('a.cell[data-number="35"]').click()

    # The form carries the session's CSRF token; a form posted without it is refused.
    cookies = {c["name"]: c["value"] for c in await context.cookies()}
    async with httpx.AsyncClient(base_url=served.progress, cookies=cookies) as http:
        forged = await http.post(
            f"/board/work-points/{PLAN}/35/closure", data={"decision": "approve"}
        )
    assert forged.status_code == 403
    assert (await stack.get_progress(stack.office, 35)).json()["closure"] == "in_review"

    await page.get_by_role("button", name="退回").click()
    await expect(page.locator(".error")).to_contain_text("退回时请填写理由")
    await page.get_by_label("审核意见或退回理由").fill("验收材料齐全,同意销号")
    await page.get_by_role("button", name="审核通过,办结销号").click()
    await expect(page.locator("dl.facts")).to_contain_text("已办结销号")
    decision = page.locator('ol.timeline li[data-kind="closure_decision"]')
    await expect(decision).to_contain_text("办结审核通过")
    await expect(decision).to_contain_text("验收材料齐全,同意销号")
    assert (await stack.get_progress(stack.office, 35)).json()["closure"] == "closed"
    await shot(page, "work-point-35-closed")
    await page.get_by_role("link", name="返回看板").click()
    await expect(page.locator('a.cell[data-number="35"]')).to_have_attribute(
        "data-colour", "closed"
    )
    await context.close()


async def test_two_plans_on_the_index_and_the_scorecards_across_plans_at_phone_width(
    stack: Stack, served: Served, browser: Browser
) -> None:
    await stack.add_plan(plan_2025_text(), PLAN_2025)
    blocked = await stack.post_event(stack.forestry, 35, "blocked", percent=40)
    await stack.until_applied(blocked)
    context = await browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844})
    page = await context.new_page()
    office = stack.office_person
    await login_as(page, served.progress, office.username, office.password, lands=r"/board$")
    # two plans: the index

    plans = page.locator("li.plan")
    await expect(plans).to_have_count(2)
    for slug, red in ((PLAN, "1"), (PLAN_2025, "0")):
        counts = page.locator(f'li.plan[data-plan="{slug}"] a.count')
        await expect(counts.locator("xpath=..")).to_have_count(6)
        await expect(
            page.locator(f'li.plan[data-plan="{slug}"] a[data-colour="red"] strong')
        ).to_have_text(red)
    assert await _fits(page), "the index is wider than the phone's screen"
    await shot(page, "index-two-plans-390")

    await page.get_by_role("link", name="全部计划的单位记分卡").click()
    await expect(page).to_have_url(re.compile(r"/board/scorecards$"))
    api = (await stack.office_get("/v1/scorecards")).json()
    await expect(page.locator("tbody[data-agency]")).to_have_count(len(api))
    forestry = page.locator(f'tbody[data-agency="{stack.forestry_id}"]')
    await expect(forestry.locator("tr")).to_have_count(3)  # two plans and the totals
    await expect(forestry.locator("tr.total")).to_contain_text("合计(2 个计划)")
    await expect(page.locator("h1")).to_have_text("全部计划的单位记分卡")
    assert await _fits(page), "the scorecards page is wider than the phone's screen"
    await shot(page, "scorecards-across-plans-390")

    # Each plan's own board is one click away and still works.
    await page.goto(f"{served.progress}/board")
    await page.get_by_role("link", name="数字肇庆建设2025年工作要点").click()
    await expect(page).to_have_url(re.compile(rf"/board/plans/{PLAN_2025}$"))
    await expect(page.locator("a.cell")).to_have_count(50)
    await context.close()


async def _fits(page: Page) -> bool:
    """Whether the page needs no sideways scrolling (wide tables scroll inside their box)."""
    return bool(await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))

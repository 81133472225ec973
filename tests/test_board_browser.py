"""The supervision board in a real browser: headless Chromium (Debian's package, installed by
scripts/chromium.sh) driven by Playwright's async API, against the three services on real Kafka
and PostgreSQL, each served over its own loopback HTTP port (the board logs in at the registry
and reads alerts from the notifier over HTTP, as in production).

Screenshots go to test-artifacts/screenshots/ (kept by CI).
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pyotp
import pytest
import uvicorn
from notifier.main import create_app as notifier_app
from notifier.store.models import Alert, NotificationLog
from openpyxl import load_workbook
from playwright.async_api import Browser, Page, async_playwright, expect
from progress.main import create_app as progress_app
from progress.store.models import StatusReport
from registry.main import create_app as registry_app
from sqlmodel import col, select

from tests.axe import axe_source, violations
from tests.harness import ROOT, wait_for
from tests.stack import (
    FORESTRY,
    FORESTRY_MAIL,
    PLAN,
    Client,
    Person,
    Stack,
    create_person,
    plan_2025_text,
)

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


async def _forged(context: Any, served: Served, path: str, data: dict[str, str]) -> int:
    """Post a form with the session's cookies but without the page's CSRF token."""
    cookies = {c["name"]: c["value"] for c in await context.cookies()}
    async with httpx.AsyncClient(base_url=served.progress, cookies=cookies) as http:
        return (await http.post(path, data=data)).status_code


async def test_an_extension_requested_on_the_board_and_decided_by_the_office(
    stack: Stack, served: Served, browser: Browser
) -> None:
    due_on = date.fromisoformat((await stack.get_progress(stack.office, 35)).json()["due_on"])
    wanted = due_on + timedelta(days=30)

    # The lead agency (at a desk) asks for a later due date on the work point page.
    desk = await browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = await desk.new_page()
    await login(page, served, stack.forestry_person)
    await page.goto(f"{served.progress}/board/work-points/{PLAN}/35")
    section = page.locator("section#extensions")
    await expect(section).to_contain_text("暂无延期申请")
    await expect(page.get_by_role("link", name="延期审批")).to_have_count(0)  # office only
    assert (
        await _forged(
            desk,
            served,
            f"/board/work-points/{PLAN}/35/extensions",
            {"ext_due_on": wanted.isoformat(), "ext_reason": "伪造"},
        )
        == 403
    )
    # The registry refuses a date that is not later: its code, said in Chinese, form refilled.
    await page.get_by_label("申请延期至").fill(due_on.isoformat())
    await page.get_by_label("延期理由").fill("林地审批延后,需顺延一个月")
    await page.get_by_role("button", name="提交延期申请").click()
    await expect(page.locator(".error")).to_contain_text("须晚于现行完成时限")
    await expect(page.get_by_label("延期理由")).to_have_value("林地审批延后,需顺延一个月")
    await page.get_by_label("申请延期至").fill(wanted.isoformat())
    await page.get_by_role("button", name="提交延期申请").click()
    await expect(page).to_have_url(re.compile(rf"/board/work-points/{PLAN}/35#extensions$"))
    asked = section.locator('li.extension[data-state="requested"]')
    await expect(asked).to_contain_text("待审批")
    await expect(asked).to_contain_text(f"{wanted.year}年{wanted.month}月{wanted.day}日")
    await expect(page.get_by_role("button", name="提交延期申请")).to_have_count(0)  # one open
    assert await _fits(page)
    await shot(page, "extension-requested-1280")

    # The office (on a phone) finds it among the plan's pending requests and decides there.
    phone = await browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844})
    office = await phone.new_page()
    await login(office, served, stack.office_person)
    await office.get_by_role("link", name="延期申请审批").click()
    await expect(office).to_have_url(re.compile(rf"/board/plans/{PLAN}/extensions$"))
    pending = office.locator('li.extension[data-code="35"]')
    await expect(pending).to_contain_text("加强林业数字化应用")
    await expect(pending).to_contain_text(FORESTRY)
    await expect(pending).to_contain_text("林地审批延后,需顺延一个月")
    assert await _fits(office), "the pending requests are wider than the phone's screen"
    await shot(office, "extensions-pending-390")
    await pending.get_by_role("button", name="驳回").click()
    await expect(office.locator(".error")).to_contain_text("驳回时请填写驳回理由")
    await (
        office.locator('li.extension[data-code="35"]')
        .get_by_label("审批意见(驳回时必填)")
        .fill("同意顺延")
    )
    await (
        office.locator('li.extension[data-code="35"]')
        .get_by_role("button", name="批准延期")
        .click()
    )
    await expect(office.locator(".notice")).to_have_text("已批准该延期申请。")
    await expect(office.locator("li.extension")).to_have_count(0)
    await expect(office.locator("main")).to_contain_text("目前没有待审批的延期申请")

    # The history on the work point page, for both; progress judges with the new date.
    async def judged_with_new_date() -> bool:
        body = (await stack.get_progress(stack.office, 35)).json()
        return bool(body["due_on"] == wanted.isoformat())

    await wait_for(judged_with_new_date, what="progress to learn the approved due date")
    await office.goto(f"{served.progress}/board/work-points/{PLAN}/35#extensions")
    approved = office.locator('li.extension[data-state="approved"]')
    await expect(approved).to_contain_text("已批准")
    await expect(approved).to_contain_text("同意顺延")
    await expect(office.locator("dl.facts").first).to_contain_text(
        f"{wanted.year}年{wanted.month}月{wanted.day}日"
    )
    assert await _fits(office), "the work point page is wider than the phone's screen"
    await shot(office, "extension-approved-390")
    await page.reload()
    await expect(page.locator('li.extension[data-state="approved"]')).to_contain_text("同意顺延")
    # It may ask again; the office rejects this one on the work point page, saying why.
    later = wanted + timedelta(days=30)
    await page.get_by_label("申请延期至").fill(later.isoformat())
    await page.get_by_label("延期理由").fill("再延一个月")
    await page.get_by_role("button", name="提交延期申请").click()
    await expect(page.locator('li.extension[data-state="requested"]')).to_contain_text("再延")
    await office.reload()
    asked_again = office.locator('li.extension[data-state="requested"]')
    await asked_again.get_by_label("审批意见(驳回时必填)").fill("已延期一次,请按期完成")
    await asked_again.get_by_role("button", name="驳回").click()
    rejected = office.locator('li.extension[data-state="rejected"]')
    await expect(rejected).to_contain_text("驳回理由")
    await expect(rejected).to_contain_text("已延期一次,请按期完成")
    await expect(office.locator("li.extension")).to_have_count(2)
    # The pending list is the office's: the agency gets a refusal page.
    refused = await page.goto(f"{served.progress}/board/plans/{PLAN}/extensions")
    assert refused is not None and refused.status == 403
    await expect(page.locator(".error")).to_contain_text("延期申请审批仅向督办协调部门开放")

    # A decided request cannot be decided again: the registry's code, in Chinese.
    ext, _ = (
        await stack.registry_http.get(
            f"/v1/plans/{PLAN}/work-points/35/extensions", headers=await stack.auth(stack.office)
        )
    ).json()
    cookies = {c["name"]: c["value"] for c in await phone.cookies()}
    csrf = await office.locator('input[name="csrf"]').first.get_attribute("value")
    async with httpx.AsyncClient(base_url=served.progress, cookies=cookies) as http:
        again = await http.post(
            f"/board/work-points/{PLAN}/35/extensions/{ext['id']}",
            data={"csrf": str(csrf), "decision": "reject", "ext_note": "再议"},
        )
    assert again.status_code == 409 and "不能再次处理" in again.text

    # The registry down: the page still renders and says so; the pending page too.
    stack.progress.settings = stack.progress.settings.model_copy(
        update={"registry_url": "http://127.0.0.1:9"}
    )
    await office.goto(f"{served.progress}/board/work-points/{PLAN}/35")
    await expect(office.locator("h1")).to_contain_text("加强林业数字化应用")
    await expect(office.locator("section#extensions .warning")).to_contain_text(
        "延期申请服务(注册中心)暂不可用"
    )
    await office.goto(f"{served.progress}/board/plans/{PLAN}/extensions")
    await expect(office.locator(".warning")).to_contain_text("暂不可用")
    await desk.close()
    await phone.close()


async def test_the_office_makes_a_circular_and_reads_the_audit_trail_on_the_board(
    stack: Stack, served: Served, browser: Browser
) -> None:
    office_auth = await stack.auth(stack.office)
    # Something in each service's trail: a due date changed in the registry, a contact change
    # in the notifier, and the circular made below in progress.
    contacts = await stack.notifier_http.put(
        f"/v1/agencies/{stack.forestry_id}/contacts/email",
        json={"addresses": ["duban@linye.example.cn"]},
        headers=office_auth,
    )
    assert contacts.status_code == 200, contacts.text
    policy = await stack.registry_http.put(
        f"/v1/plans/{PLAN}/work-points/35/policy",
        json={"due_on": "2024-12-20"},
        headers=office_auth,
    )
    assert policy.status_code == 200, policy.text

    for width, height in ((1280, 900), (390, 844)):
        context = await browser.new_context(
            locale="zh-CN", viewport={"width": width, "height": height}
        )
        page = await context.new_page()
        await login(page, served, stack.office_person)
        await page.get_by_role("link", name="通报", exact=True).first.click()
        await expect(page).to_have_url(re.compile(rf"/board/plans/{PLAN}/circulars$"))
        before = await page.locator("tr[data-circular]").count()
        assert await _forged(context, served, f"/board/plans/{PLAN}/circulars", {}) == 403
        await page.get_by_role("button", name="立即生成通报").click()
        made = page.locator(".notice[data-made]")
        await expect(made).to_contain_text("已生成通报")
        listed = (await stack.office_get(f"/v1/plans/{PLAN}/circulars")).json()
        latest = listed["items"][0]
        assert listed["total"] == before + 1
        await expect(made).to_contain_text(latest["number"])
        await expect(page.locator("tr[data-circular]")).to_have_count(listed["total"])
        row = page.locator(f'tr[data-circular="{latest["id"]}"]')
        await expect(row).to_contain_text("临时生成")
        await expect(row).to_contain_text(latest["period"])
        async with page.expect_download() as download:
            await row.get_by_role("link", name="Word 文档").click()
        assert (await download.value).suggested_filename.endswith(".docx")
        assert await _fits(page), f"the circulars page is wider than {width}px"
        await shot(page, f"circulars-{width}")

        # The audit trail: all three services, newest first, each entry with its trace.
        await page.get_by_role("link", name="审计日志").first.click()
        await expect(page).to_have_url(re.compile(r"/board/audit$"))
        totals = {}
        for service, http in (
            ("registry", stack.registry_http),
            ("progress", stack.progress_http),
            ("notifier", stack.notifier_http),
        ):
            answer = await http.get("/v1/audit", params={"limit": 1}, headers=office_auth)
            totals[service] = answer.json()["total"]
            assert totals[service] >= 1, service
        await expect(page.locator("p.shown")).to_contain_text(f"共 {sum(totals.values())} 条")
        services = await page.locator("tr[data-service]").evaluate_all(
            "rows => rows.map(r => r.dataset.service)"
        )
        assert set(services) == {"registry", "progress", "notifier"}
        assert await _fits(page), f"the audit page is wider than {width}px"
        await shot(page, f"audit-{width}")

        await page.get_by_label("服务").select_option("progress")
        await page.get_by_label("操作", exact=True).select_option("circular.issued")
        await page.get_by_role("button", name="筛选").click()
        api = (
            await stack.progress_http.get(
                "/v1/audit", params={"action": "circular.issued"}, headers=office_auth
            )
        ).json()
        rows = page.locator("tr[data-entry]")
        await expect(rows).to_have_count(api["total"])
        first = api["items"][0]
        newest = page.locator(f'tr[data-entry="{first["id"]}"]')
        await expect(newest).to_contain_text("生成通报")
        await expect(newest).to_contain_text(stack.office_person.username)  # the person acted
        assert first["actor_person"] == stack.office_person.username
        if first["trace_id"]:
            await expect(newest.locator("a.trace")).to_have_attribute(
                "href", TRACE_UI.format(trace_id=first["trace_id"])
            )
        async with page.expect_download() as download:
            await page.get_by_role("link", name="进展服务").click()
        workbook = await download.value
        assert workbook.suggested_filename == "audit-progress.xlsx"
        sheet = load_workbook(io.BytesIO((await workbook.path()).read_bytes())).active
        assert sheet is not None
        assert [r[0] for r in list(sheet.iter_rows(values_only=True))[1:]] == [
            e["id"] for e in api["items"]
        ]
        await context.close()

    # Agencies get a clear refusal; a registry down leaves the other services' entries shown.
    context = await browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844})
    page = await context.new_page()
    await login(page, served, stack.forestry_person)
    for path, said in (
        (f"/board/plans/{PLAN}/circulars", "通报仅向"),
        ("/board/audit", "审计日志仅向"),
    ):
        response = await page.goto(f"{served.progress}{path}")
        assert response is not None and response.status == 403
        await expect(page.locator(".error")).to_contain_text(said)
    await shot(page, "audit-agency-refused-390")
    await context.close()
    context = await browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await login(page, served, stack.office_person)
    stack.progress.settings = stack.progress.settings.model_copy(
        update={"registry_url": "http://127.0.0.1:9"}
    )
    await page.goto(f"{served.progress}/board/audit")
    await expect(page.locator(".warning")).to_contain_text("注册中心暂不可用")
    await expect(page.locator('tr[data-service="progress"]').first).to_be_visible()
    await expect(page.locator('tr[data-service="registry"]')).to_have_count(0)
    # All services merged can be paged through their newest 500 entries; further back, the
    # page says to choose one service.
    await page.goto(f"{served.progress}/board/audit?page=11")
    await expect(page.locator(".warning").last).to_contain_text("请选择一个服务")
    await page.goto(f"{served.progress}/board/audit?from=2024-09-03&to=2024-09-02")
    await expect(page.locator(".error")).to_have_text("起始日期不能晚于截止日期。")


# ---------------------------------------------------------------- the reporting form (填报)

VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@pytest.fixture(scope="session")
def axe() -> str:
    """axe-core's source (the pinned release, cached under .cache/)."""
    return axe_source()


async def checked(page: Page, axe: str, name: str, *, phone: bool) -> None:
    """The page has no serious or critical accessibility violation, needs no sideways
    scrolling, and its screenshot is kept."""
    found = await violations(page, axe)
    assert found == [], f"{name}: {found}"
    if phone:
        assert await _fits(page), f"{name} is wider than the phone's screen"
    await shot(page, name)


async def small_targets(page: Page) -> list[str]:
    """Buttons, inputs and links in forms smaller than 44 px high (a finger's size)."""
    found: list[str] = await page.evaluate(
        """() => [...document.querySelectorAll(
              'main button, main input:not([type=hidden]), main select, main textarea, '
              + 'main a.action, header button')]
            .filter(e => e.type !== 'radio' && e.getBoundingClientRect().height < 43.5)
            .map(e => e.outerHTML.slice(0, 80))"""
    )
    return found


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
async def test_a_forestry_person_reports_on_35_from_the_form(
    stack: Stack, served: Served, browser: Browser, axe: str, viewport: str
) -> None:
    phone = viewport == "phone"
    context = await browser.new_context(locale="zh-CN", viewport=VIEWPORTS[viewport])  # type: ignore[arg-type]
    page = await context.new_page()
    await login(page, served, stack.forestry_person)
    await checked(page, axe, f"report-board-{viewport}", phone=phone)

    # From the work point's page to its form: colour, reasons, pace line and last reports.
    await page.goto(f"{served.progress}/board/work-points/{PLAN}/35")
    await checked(page, axe, f"report-work-point-{viewport}", phone=phone)
    await page.get_by_role("link", name="填报本项进展").click()
    await expect(page).to_have_url(re.compile(rf"/board/work-points/{PLAN}/35/report$"))
    await expect(page.locator("h1")).to_contain_text("加强林业数字化应用")
    await expect(page.locator("svg.pace-line")).to_be_visible()
    await expect(page.locator("#hint-kpi-0")).to_contain_text("目标:13 万亩")
    await checked(page, axe, f"report-form-{viewport}", phone=phone)
    if phone:
        assert await small_targets(page) == []

    # A percent over 100 is refused next to its field, the rest refilled.
    await page.get_by_label("受阻").check()
    await page.get_by_label("完成进度(%,0至100)").fill("120")
    await page.get_by_label("林分优化", exact=True).fill("9.5")
    await page.get_by_label("情况说明").fill("林分优化用地审批未完成")
    await page.get_by_role("button", name="提交报送").click()
    await expect(page.locator("#err-percent")).to_have_text("进度请填写0到100之间的整数。")
    await expect(page.get_by_label("完成进度(%,0至100)")).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_label("情况说明")).to_have_value("林分优化用地审批未完成")
    await checked(page, axe, f"report-form-error-{viewport}", phone=phone)

    # Corrected, with a link and a photo: accepted, and the timeline shows it with the person.
    await page.get_by_label("完成进度(%,0至100)").fill("45")
    await page.get_by_label("佐证材料链接(每行一个,以 http:// 或 https:// 开头)").fill(
        "https://lyj.zhaoqing.gov.cn/reports/2024-10.pdf"
    )
    await page.get_by_label("佐证材料文件").set_input_files(
        [{"name": "现场照片.png", "mimeType": "image/png", "buffer": PNG_1PX}]
    )
    await page.get_by_role("button", name="提交报送").click()
    await expect(page).to_have_url(re.compile(rf"/board/work-points/{PLAN}/35\?reported="))
    await expect(page.locator(".notice")).to_contain_text("报送已受理")

    async def applied() -> bool:
        async with stack.progress.sessions() as session:
            row = (
                await session.exec(
                    select(StatusReport).where(
                        StatusReport.reported_by == stack.forestry_person.username
                    )
                )
            ).first()
            return row is not None

    await wait_for(applied, what="the form's report to be applied")
    await page.reload()
    report = page.locator('ol.timeline li[data-kind="report"]').first
    await expect(report).to_contain_text(
        f"市林业局报送:受阻(填报人:{stack.forestry_person.username})"
    )
    await expect(report).to_contain_text("进度 45%;林分优化 9.5;说明:林分优化用地审批未完成")
    await expect(page.locator("h1 .badge")).to_have_class(re.compile("c-red"))
    await checked(page, axe, f"report-timeline-{viewport}", phone=phone)

    # The alert that followed: its acknowledgement page, on the same screen.
    async def mailed() -> bool:
        return len(stack.smtp.mailbox(FORESTRY_MAIL)) >= 1

    await wait_for(mailed, what="the stall email")
    body = stack.smtp.mailbox(FORESTRY_MAIL)[0].get_content()
    match = re.search(r"确认已知悉请点击:\S+?(/a/\S+)", body)
    assert match, body
    await page.goto(served.notifier + match.group(1))
    await checked(page, axe, f"ack-page-{viewport}", phone=phone)
    if phone:
        assert await small_targets(page) == []
    await page.get_by_role("button", name="确认已知悉").click()
    await expect(page.locator("p").first).to_contain_text("已确认")

    # Another agency's work point: refused, with the code.
    own = await api_colours(stack, stack.forestry)
    other = next(n for n in range(1, 51) if n not in own)
    response = await page.goto(f"{served.progress}/board/work-points/{PLAN}/{other}/report")
    assert response is not None and response.status == 403
    await expect(page.locator(".error")).to_contain_text("无权查看")
    await expect(page.locator(".error code")).to_have_text("not_your_work_point")
    await checked(page, axe, f"report-refused-{viewport}", phone=phone)

    # Logging out, and a session that ran out.
    await page.goto(f"{served.progress}/board/plans/{PLAN}")
    await page.get_by_role("button", name="退出登录").click()
    await expect(page.locator(".notice")).to_have_text("您已退出登录。")
    await checked(page, axe, f"report-logged-out-{viewport}", phone=phone)
    await login(page, served, stack.forestry_person)
    stack.clock.advance(timedelta(hours=10, minutes=1))  # a working day's session is over
    await page.goto(f"{served.progress}/board/work-points/{PLAN}/35/report")
    await expect(page).to_have_url(re.compile(r"/board/login\?why=expired"))
    await expect(page.locator(".notice")).to_have_text("登录已过期,请重新登录。")
    await checked(page, axe, f"report-expired-{viewport}", phone=phone)
    await context.close()


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
async def test_the_office_pages_pass_the_accessibility_check(
    stack: Stack, served: Served, browser: Browser, axe: str, viewport: str
) -> None:
    """The login page, the board, a work point, the scorecards and the alerts, as the office,
    with a red work point and its alert on them."""
    blocked = await stack.post_event(stack.forestry, 35, "blocked", percent=40, note="用地未批")
    await stack.until_applied(blocked)
    await until_alerted(stack, 35)
    phone = viewport == "phone"
    context = await browser.new_context(locale="zh-CN", viewport=VIEWPORTS[viewport])  # type: ignore[arg-type]
    page = await context.new_page()
    await page.goto(f"{served.progress}/board/login")
    await checked(page, axe, f"a11y-login-{viewport}", phone=phone)
    await login(page, served, stack.office_person)
    await checked(page, axe, f"a11y-board-office-{viewport}", phone=phone)
    for path, name in (
        (f"/board/work-points/{PLAN}/35", "work-point"),
        (f"/board/plans/{PLAN}/scorecards", "scorecards"),
        (f"/board/plans/{PLAN}/alerts", "alerts"),
        ("/board/scorecards", "scorecards-all"),
    ):
        await page.goto(served.progress + path)
        await checked(page, axe, f"a11y-{name}-office-{viewport}", phone=phone)
    response = await page.goto(f"{served.progress}/board/work-points/{PLAN}/35/report")
    assert response is not None and response.status == 403
    await expect(page.locator(".error code")).to_have_text("office_does_not_report")
    await context.close()

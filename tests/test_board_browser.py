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
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from notifier.main import create_app as notifier_app
from notifier.store.models import Alert, NotificationLog
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from progress.api.board.session import COOKIE
from progress.main import create_app as progress_app
from progress.store.models import StatusReport
from registry.main import create_app as registry_app
from sqlmodel import col, select

from tests.axe import axe_source, violations
from tests.harness import ROOT, wait_for
from tests.stack import FORESTRY_MAIL, PLAN, Client, Stack, plan_2025_text

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


async def login(page: Page, served: Served, client: Client) -> None:
    """Log in on the board's form with an API client's credentials."""
    await page.goto(f"{served.progress}/board")
    await expect(page).to_have_url(re.compile(r"/board/login\?"))
    await page.get_by_label("客户端编号").fill(client.client_id)
    await page.get_by_label("客户端密钥").fill(client.secret)
    await page.get_by_role("button", name="登录").click()
    await expect(page).to_have_url(re.compile(rf"/board/plans/{PLAN}$"))


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
    await login(page, served, stack.office)

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


async def test_an_agency_sees_its_own_work_points_and_a_wrong_secret_is_refused(
    stack: Stack, served: Served, browser: Browser
) -> None:
    context = await browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = await context.new_page()

    await page.goto(f"{served.progress}/board/login")
    await page.get_by_label("客户端编号").fill(stack.forestry.client_id)
    await page.get_by_label("客户端密钥").fill("dcs_" + uuid.uuid4().hex)
    await page.get_by_role("button", name="登录").click()
    await expect(page.locator(".error")).to_contain_text("客户端编号或密钥不正确")
    await expect(page.get_by_label("客户端编号")).to_have_value(stack.forestry.client_id)
    await shot(page, "login-wrong-secret")

    await login(page, served, stack.forestry)
    own = await api_colours(stack, stack.forestry)
    assert 35 in own and len(own) < 50
    await expect(page.locator("a.cell")).to_have_count(len(own))
    assert await board_colours(page) == own
    await expect(page.locator(".who")).to_contain_text("市林业局")
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

    # The token runs out (10 minutes): the next page asks to log in again, in Chinese.
    stack.clock.advance(timedelta(minutes=11))
    await page.goto(f"{served.progress}/board/plans/{PLAN}")
    await expect(page).to_have_url(re.compile(r"/board/login\?why=expired"))
    await expect(page.locator(".notice")).to_have_text("登录已过期,请重新登录。")
    await shot(page, "login-expired")
    await context.close()


async def test_the_office_decides_a_closure_request_from_the_board(
    stack: Stack, served: Served, browser: Browser
) -> None:
    done = await stack.post_event(stack.forestry, 35, "done", percent=100, note="已完成验收")
    await stack.until_applied(done)
    context = await browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await login(page, served, stack.office)
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
    await page.goto(f"{served.progress}/board")
    await page.get_by_label("客户端编号").fill(stack.office.client_id)
    await page.get_by_label("客户端密钥").fill(stack.office.secret)
    await page.get_by_role("button", name="登录").click()
    await expect(page).to_have_url(re.compile(r"/board$"))  # two plans: the index

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


async def login_as(
    context: BrowserContext, page: Page, served: Served, stack: Stack, who: Client, person: str
) -> None:
    """The one login of the reporting tests: `person` of `who`'s agency.

    Until the registry gives people their own accounts and the board logs them in, a person's
    session is a token of the agency's client that names the person (claim `person`), signed
    as the registry signs tokens, in the board's cookie: switch this helper to the person
    login form when it exists."""
    token = await stack.person_token(who, person)
    await context.add_cookies(
        [
            {
                "name": COOKIE,
                "value": token,
                "domain": "127.0.0.1",
                "path": "/board",
                "httpOnly": True,
                "sameSite": "Lax",
            }
        ]
    )
    await page.goto(f"{served.progress}/board")
    await expect(page).to_have_url(re.compile(rf"/board/plans/{PLAN}$"))


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
    await login_as(context, page, served, stack, stack.forestry, "lin.xiaoming")
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
                    select(StatusReport).where(StatusReport.reported_by == "lin.xiaoming")
                )
            ).first()
            return row is not None

    await wait_for(applied, what="the form's report to be applied")
    await page.reload()
    report = page.locator('ol.timeline li[data-kind="report"]').first
    await expect(report).to_contain_text("市林业局报送:受阻(填报人:lin.xiaoming)")
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
    await login_as(context, page, served, stack, stack.forestry, "lin.xiaoming")
    stack.clock.advance(timedelta(minutes=11))
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
    await login(page, served, stack.office)
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

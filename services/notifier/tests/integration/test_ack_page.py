"""The page an acknowledgement link opens, on PostgreSQL with an injected clock: in Chinese for
every state (firing, already acknowledged, resolved, used, expired, broken, unknown), a button
only while there is something to acknowledge, and strict headers on every answer."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from duban_shared import topics
from duban_shared.clock import ManualClock
from duban_shared.events import AgencyRef, Level, StallReason, StallTransition, StallTransitionKind
from notifier.domain.alerts import acknowledge
from notifier.main import build, create_app
from notifier.service import NotifierService
from notifier.settings import NotifierSettings
from notifier.store.models import AgencyView, Alert
from sqlmodel import select

from tests.harness import Spans

ROOT = Path(__file__).resolve().parents[4]
FORESTRY = AgencyRef(agency_id=uuid.uuid5(uuid.NAMESPACE_URL, "linye"), name="市林业局")
MONDAY = datetime.fromisoformat("2024-10-21T10:00:00+08:00")
BUTTON = 'method="post"'
HEADERS = {
    "x-frame-options": "DENY",
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}


@pytest.fixture
async def notifier(
    make_database: Callable[[str], str], spans: Spans
) -> AsyncIterator[NotifierService]:
    settings = NotifierSettings.model_validate(
        {
            "database_url": make_database("notifier"),
            "environment": "test",
            "run_loops": False,
            "escalation_dir": ROOT / "tests" / "data" / "escalation",
        }
    )
    service = build(settings, clock=ManualClock(MONDAY), tracer_provider=spans.provider("n"))
    async with service.sessions() as session, session.begin():
        session.add(
            AgencyView(id=FORESTRY.agency_id, name=FORESTRY.name, kind="bureau", snapshot_at=MONDAY)
        )
    yield service
    await service.close()


@pytest.fixture
async def http(notifier: NotifierService) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(notifier))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def _opened() -> StallTransition:
    return StallTransition(
        event_id=uuid.uuid4(),
        occurred_at=MONDAY,
        work_point_id="zhaoqing-digital-2024/35",
        episode_id=uuid.uuid4(),
        kind=StallTransitionKind.OPENED,
        level=Level.RED,
        reason=StallReason.BLOCKED,
        reasons=[StallReason.BLOCKED],
        work_point_number=35,
        work_point_code="35",
        work_point_title="加强林业数字化应用",
        lead_agencies=[FORESTRY],
        plan_slug="zhaoqing-digital-2024",
    )


async def _alert_and_link(service: NotifierService) -> tuple[StallTransition, uuid.UUID, str]:
    """An alert firing on work point 35 and a fresh link for it, as a path."""
    opened = _opened()
    await service.stall_consumer.handle(opened, topics.STALLS)
    async with service.sessions() as session, session.begin():
        [alert] = (await session.exec(select(Alert))).all()
        link = await service.ack_links.issue(
            session, alert.id, FORESTRY.agency_id, service.clock.now()
        )
    return opened, alert.id, "/" + link.split("/", 3)[3]


def _text(response: httpx.Response) -> str:
    """The page's words, without tags and without its stylesheet."""
    return re.sub(r"<[^>]+>", " ", re.sub(r"<style>.*?</style>", " ", response.text, flags=re.S))


def _assert_safe_chinese_page(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("text/html")
    for name, value in HEADERS.items():
        assert response.headers[name] == value, name
    policy = response.headers["content-security-policy"]
    for directive in ("default-src 'none'", "frame-ancestors 'none'", "form-action 'self'"):
        assert directive in policy
    # its one stylesheet, allowed by its hash: no other style, no script
    [style] = re.findall(r"<style>(.*?)</style>", response.text, flags=re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in policy and "script-src" not in policy
    assert '<html lang="zh-CN">' in response.text
    words = _text(response)
    assert not re.search(r"[A-Za-z]{3,}", words), words  # no English sentence left over
    assert re.search(r"[\u4e00-\u9fff]{4,}", words)


async def _state(service: NotifierService, alert_id: uuid.UUID) -> str:
    async with service.sessions() as session:
        alert = await session.get(Alert, alert_id)
        assert alert is not None
        return alert.state


async def test_a_firing_alerts_link_offers_the_button_and_acknowledges_once(
    notifier: NotifierService, http: httpx.AsyncClient
) -> None:
    _, alert_id, path = await _alert_and_link(notifier)
    page = await http.get(path)
    _assert_safe_chinese_page(page)
    assert page.status_code == 200 and BUTTON in page.text
    assert "第三十五项“加强林业数字化应用”:点击下方按钮确认已知悉。" in _text(page)
    assert await _state(notifier, alert_id) == "firing"  # opening never acknowledges

    done = await http.post(path)
    _assert_safe_chinese_page(done)
    assert done.status_code == 200 and "已确认:第三十五项“加强林业数字化应用”。谢谢。" in done.text
    assert await _state(notifier, alert_id) == "acknowledged"

    for used in (await http.get(path), await http.post(path)):
        _assert_safe_chinese_page(used)
        assert used.status_code == 410 and BUTTON not in used.text
        assert "这个确认链接已经使用过" in used.text
        assert "督办提醒已于2024年10月21日 10:00确认,无需再次确认" in used.text


async def test_an_alert_acknowledged_elsewhere_shows_when_and_no_button(
    notifier: NotifierService, http: httpx.AsyncClient
) -> None:
    _, alert_id, path = await _alert_and_link(notifier)
    async with notifier.sessions() as session, session.begin():
        alert = await session.get(Alert, alert_id)
        assert alert is not None
        acknowledge(alert, "office-client", MONDAY + timedelta(minutes=5))
        session.add(alert)
    page = await http.get(path)
    _assert_safe_chinese_page(page)
    assert page.status_code == 200 and BUTTON not in page.text
    assert "已于2024年10月21日 10:05确认,无需再次确认" in page.text
    pressed = await http.post(path)  # a page opened before: harmless, and says so
    _assert_safe_chinese_page(pressed)
    assert pressed.status_code == 200 and "已确认:" in pressed.text and "10:05确认" in pressed.text


async def test_a_resolved_alert_shows_its_state_instead_of_a_button(
    notifier: NotifierService, http: httpx.AsyncClient
) -> None:
    opened, alert_id, path = await _alert_and_link(notifier)
    recovered = opened.model_copy(
        update={
            "event_id": uuid.uuid4(),
            "kind": StallTransitionKind.RECOVERED,
            "level": Level.GREEN,
            "occurred_at": MONDAY + timedelta(hours=2),
        }
    )
    await notifier.stall_consumer.handle(recovered, topics.STALLS)
    page = await http.get(path)
    _assert_safe_chinese_page(page)
    assert page.status_code == 200 and BUTTON not in page.text
    assert (
        "第三十五项“加强林业数字化应用”于2024年10月21日 12:00已恢复正常,督办提醒已解除,无需确认。"
        in page.text
    )
    pressed = await http.post(path)  # a page opened before it resolved
    _assert_safe_chinese_page(pressed)
    assert pressed.status_code == 409 and "已恢复正常,督办提醒已解除,无需确认" in pressed.text
    assert await _state(notifier, alert_id) == "resolved"


async def test_an_expired_link_says_so_in_chinese(
    notifier: NotifierService, http: httpx.AsyncClient
) -> None:
    _, alert_id, path = await _alert_and_link(notifier)
    clock = notifier.clock
    assert isinstance(clock, ManualClock)
    clock.advance(timedelta(hours=notifier.settings.ack_link_hours))
    for expired in (await http.get(path), await http.post(path)):
        _assert_safe_chinese_page(expired)
        assert expired.status_code == 410 and BUTTON not in expired.text
        assert "这个确认链接已过期" in expired.text and "督办提醒尚未确认" in expired.text
    assert await _state(notifier, alert_id) == "firing"


@pytest.mark.parametrize(
    "mangle",
    [lambda p: p[:-3] + "xyz", lambda p: p[:-5], lambda p: "/a/" + "A" * 20],
    ids=["forged_signature", "cut_while_copied", "made_up"],
)
async def test_a_broken_link_says_so_in_chinese(
    notifier: NotifierService, http: httpx.AsyncClient, mangle: Callable[[str], str]
) -> None:
    _, alert_id, path = await _alert_and_link(notifier)
    for answer in (await http.get(mangle(path)), await http.post(mangle(path))):
        _assert_safe_chinese_page(answer)
        assert answer.status_code == 400 and "这个确认链接无效" in answer.text
        assert BUTTON not in answer.text
    assert await _state(notifier, alert_id) == "firing"


async def test_a_signed_link_unknown_here_says_so_in_chinese(
    notifier: NotifierService, http: httpx.AsyncClient
) -> None:
    async with notifier.sessions() as session:  # a link signed here but never stored
        link = await notifier.ack_links.issue(session, uuid.uuid4(), FORESTRY.agency_id, MONDAY)
        await session.rollback()
    path = "/" + link.split("/", 3)[3]
    answer = await http.get(path)
    _assert_safe_chinese_page(answer)
    assert answer.status_code == 404 and "督办系统中没有这个确认链接" in answer.text

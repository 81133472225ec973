"""The notifier's pipeline on PostgreSQL, a real SMTP server and a local SMS gateway, with an
injected clock: transitions become alerts, the policy's steps become deliveries, the dispatcher
sends them (grouped, held in quiet hours, retried, falling back across channels)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from duban_shared import topics
from duban_shared.clock import ManualClock
from duban_shared.events import (
    AgencyRef,
    AlertTransition,
    AlertTransitionKind,
    Level,
    StallReason,
    StallTransition,
    StallTransitionKind,
)
from notifier.adapters.channels.base import OutgoingMessage, Receipt
from notifier.domain.alerts import AckRefused
from notifier.domain.contacts import ContactIn
from notifier.main import build
from notifier.service import NotifierService
from notifier.settings import NotifierSettings
from notifier.store.contacts import replace_contacts
from notifier.store.models import AgencyView, Alert, Contact, NotificationLog, OutboxMessage
from notifier.use_cases.alert_events import republish
from sqlmodel import col, select

from services.notifier.tests.provider_servers import JsonGateway, ProviderServer, Reply, serve
from tests.harness import SmtpSink, Spans

PLAN = "zhaoqing-digital-2024"
FORESTRY = AgencyRef(agency_id=uuid.uuid5(uuid.NAMESPACE_URL, "linye"), name="市林业局")
NATURE = AgencyRef(agency_id=uuid.uuid5(uuid.NAMESPACE_URL, "ziran"), name="市自然资源局")
OFFICE = AgencyRef(agency_id=uuid.uuid5(uuid.NAMESPACE_URL, "zsj"), name="市政务服务和数据管理局")
FORESTRY_MAIL, NATURE_MAIL, OFFICE_MAIL = (
    "linye@zhaoqing.example.cn",
    "ziran@zhaoqing.example.cn",
    "zsj@zhaoqing.example.cn",
)
FORESTRY_PHONE = "+8613800138000"
TOKEN = "gateway-token"
MONDAY = datetime.fromisoformat("2024-10-21T10:00:00+08:00")

POLICY = """
working_hours: {start: "09:00", end: "18:00"}
quiet_channels: [sms, wecom]
urgent: {levels: [red], reasons: [blocked]}
group_window_minutes: 0
steps:
  - {id: lead, notify: lead}
  - {id: co, notify: co}
  - {id: lead-again, notify: lead, every: {working_hours: 8}, while: unacknowledged}
  - id: office
    notify: coordinating_office
    after: {working_hours: 16}
    while: unacknowledged
  - id: office-stuck
    notify: coordinating_office
    after: {working_days: 5}
    since: acknowledged
    while: acknowledged
"""


@pytest.fixture
def gateway() -> Iterator[ProviderServer]:
    with serve(JsonGateway(TOKEN)) as server:
        yield server


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "escalation"
    folder.mkdir()
    (folder / "default.yaml").write_text(POLICY, encoding="utf-8")
    grouped = POLICY.replace("group_window_minutes: 0", "group_window_minutes: 10")
    (folder / "grouped-plan.yaml").write_text(grouped, encoding="utf-8")
    return folder


@pytest.fixture
async def notifier(
    make_database: Callable[[str], str],
    smtp: SmtpSink,
    spans: Spans,
    gateway: ProviderServer,
    policy_dir: Path,
) -> AsyncIterator[NotifierService]:
    settings = NotifierSettings.model_validate(
        {
            "database_url": make_database("notifier"),
            "smtp_port": smtp.port,
            "smtp_timeout_seconds": 5,
            "environment": "test",
            "run_loops": False,
            "escalation_dir": policy_dir,
            "retry_base_seconds": 60,
            "channels": {
                "http_sms": {"url": gateway.url("/v1/sms"), "token": TOKEN, "timeout_seconds": 2}
            },
        }
    )
    service = build(settings, clock=ManualClock(MONDAY), tracer_provider=spans.provider("n"))
    now = service.clock.now()
    async with service.sessions() as session, session.begin():
        for agency, mail in (
            (FORESTRY, FORESTRY_MAIL),
            (NATURE, NATURE_MAIL),
            (OFFICE, OFFICE_MAIL),
        ):
            session.add(
                AgencyView(id=agency.agency_id, name=agency.name, kind="bureau", snapshot_at=now)
            )
            await replace_contacts(session, agency.agency_id, [ContactIn("email", mail)], now)
    yield service
    await service.close()


def _clock(service: NotifierService) -> ManualClock:
    assert isinstance(service.clock, ManualClock)
    return service.clock


def _opened(
    number: int = 35,
    *,
    level: Level = Level.RED,
    reason: StallReason = StallReason.SILENT,
    plan: str = PLAN,
    at: datetime = MONDAY,
) -> StallTransition:
    return StallTransition(
        event_id=uuid.uuid4(),
        occurred_at=at,
        work_point_id=f"{plan}/{number}",
        episode_id=uuid.uuid4(),
        kind=StallTransitionKind.OPENED,
        level=level,
        reason=reason,
        reasons=[reason],
        work_point_number=number,
        work_point_code=str(number),
        work_point_title="加强林业数字化应用" if number == 35 else f"工作要点{number}",
        lead_agencies=[FORESTRY],
        co_agencies=[NATURE],
        coordinating_agency_id=OFFICE.agency_id,
        plan_slug=plan,
        silent_working_days=14,
    )


def _then(t: StallTransition, kind: StallTransitionKind, **changes: Any) -> StallTransition:
    return t.model_copy(update={"event_id": uuid.uuid4(), "kind": kind, **changes})


async def _rows(service: NotifierService) -> list[NotificationLog]:
    async with service.sessions() as session:
        query = select(NotificationLog).order_by(col(NotificationLog.id))
        return list((await session.exec(query)).all())


async def _alert(service: NotifierService) -> Alert:
    async with service.sessions() as session:
        [alert] = (await session.exec(select(Alert))).all()
        return alert


async def _handle(service: NotifierService, *transitions: StallTransition) -> None:
    for t in transitions:
        await service.stall_consumer.handle(t, topics.STALLS)


async def test_an_opened_stall_tells_the_lead_and_copies_the_co_agency_once(
    notifier: NotifierService, smtp: SmtpSink
) -> None:
    opened = _opened()
    await _handle(notifier, opened, opened)  # redelivered: nothing planned twice
    assert await notifier.dispatcher.dispatch_once() == 2
    [lead] = smtp.mailbox(FORESTRY_MAIL)
    [co] = smtp.mailbox(NATURE_MAIL)
    assert lead["Subject"] == "【督办提醒】第三十五项“加强林业数字化应用”进展停滞"
    assert "/a/" in lead.get_content()
    assert "配合" in co.get_content()
    assert await notifier.dispatcher.dispatch_once() == 0
    assert [(r.role, r.status, r.attempts) for r in await _rows(notifier)] == [
        ("lead", "sent", 1),
        ("co", "sent", 1),
    ]


async def test_reminders_and_escalation_follow_working_hours_until_acknowledged(
    notifier: NotifierService, smtp: SmtpSink
) -> None:
    clock = _clock(notifier)
    await _handle(notifier, _opened())  # Mon 21 Oct 10:00
    await notifier.dispatcher.dispatch_once()
    alert = await _alert(notifier)
    assert alert.next_step_at == datetime.fromisoformat("2024-10-21T18:00:00+08:00")

    # 8 working hours later (Mon 10:00-18:00): a reminder, by email (never held).
    clock.set(datetime.fromisoformat("2024-10-21T18:00:00+08:00"))
    await notifier.escalator.escalate_once()
    await notifier.dispatcher.dispatch_once()
    assert len(smtp.mailbox(FORESTRY_MAIL)) == 2
    assert smtp.mailbox(OFFICE_MAIL) == []

    # 16 working hours: Tue 22 Oct 17:00 (the office is told) and the second reminder.
    clock.set(datetime.fromisoformat("2024-10-22T17:00:00+08:00"))
    await notifier.escalator.escalate_once()
    await notifier.dispatcher.dispatch_once()
    [escalated] = smtp.mailbox(OFFICE_MAIL)
    assert escalated["Subject"].startswith("【督办升级】")
    assert len(smtp.mailbox(FORESTRY_MAIL)) == 3

    # Acknowledged: no more reminders; five working days later the office hears it is stuck.
    async with notifier.sessions() as session, session.begin():
        stored = await session.get(Alert, alert.id)
        assert stored is not None
        stored.state, stored.acknowledged_at = "acknowledged", clock.now()
        stored.next_step_at = clock.now()
        session.add(stored)
    clock.set(datetime.fromisoformat("2024-10-28T09:00:00+08:00"))
    await notifier.escalator.escalate_once()
    await notifier.dispatcher.dispatch_once()
    assert len(smtp.mailbox(FORESTRY_MAIL)) == 3
    assert len(smtp.mailbox(OFFICE_MAIL)) == 1
    clock.set(datetime.fromisoformat("2024-10-29T17:00:00+08:00"))  # 5 working days after ack
    await notifier.escalator.escalate_once()
    await notifier.dispatcher.dispatch_once()
    assert len(smtp.mailbox(OFFICE_MAIL)) == 2


async def test_stalls_of_one_window_reach_an_agency_as_one_digest(
    notifier: NotifierService, smtp: SmtpSink
) -> None:
    clock = _clock(notifier)
    for number in (5, 12, 35):
        await _handle(notifier, _opened(number, plan="grouped-plan"))
        clock.advance(timedelta(minutes=3))
    assert await notifier.dispatcher.dispatch_once() == 0  # the window is still open
    clock.set(MONDAY + timedelta(minutes=10))
    assert await notifier.dispatcher.dispatch_once() == 2  # one to the lead, one to the co
    [digest] = smtp.mailbox(FORESTRY_MAIL)
    body = digest.get_content()
    assert all(f"第{n}项" in body for n in ("五", "十二", "三十五"))
    refs = {r.message_ref for r in await _rows(notifier) if r.agency_id == FORESTRY.agency_id}
    assert len(refs) == 1


async def _sms_first(service: NotifierService) -> None:
    now = service.clock.now()
    async with service.sessions() as session, session.begin():
        await replace_contacts(
            session,
            FORESTRY.agency_id,
            [ContactIn("sms", FORESTRY_PHONE), ContactIn("email", FORESTRY_MAIL)],
            now,
        )


async def test_sms_waits_for_working_hours_across_the_national_day_holiday(
    notifier: NotifierService, gateway: ProviderServer
) -> None:
    clock = _clock(notifier)
    await _sms_first(notifier)
    holiday = datetime.fromisoformat("2024-10-03T11:00:00+08:00")
    clock.set(holiday)
    await _handle(notifier, _opened(level=Level.YELLOW, reason=StallReason.BEHIND_PACE, at=holiday))
    await notifier.dispatcher.dispatch_once()
    assert gateway.requests == []
    held = [r for r in await _rows(notifier) if r.channel == "sms"]
    assert [(r.status, r.next_attempt_at) for r in held] == [
        ("held", datetime.fromisoformat("2024-10-08T09:00:00+08:00"))
    ]
    clock.set(datetime.fromisoformat("2024-10-08T09:00:00+08:00"))
    assert await notifier.dispatcher.dispatch_once() >= 1
    assert [r.json()["to"] for r in gateway.requests] == [FORESTRY_PHONE]


async def test_an_urgent_red_alert_is_not_held(
    notifier: NotifierService, gateway: ProviderServer
) -> None:
    clock = _clock(notifier)
    await _sms_first(notifier)
    sunday = datetime.fromisoformat("2024-10-27T22:00:00+08:00")
    clock.set(sunday)
    await _handle(notifier, _opened(reason=StallReason.BLOCKED, at=sunday))
    await notifier.dispatcher.dispatch_once()
    assert [r.json()["to"] for r in gateway.requests] == [FORESTRY_PHONE]


async def test_transient_failures_back_off_and_a_refused_number_falls_back_to_email(
    notifier: NotifierService, gateway: ProviderServer, smtp: SmtpSink
) -> None:
    clock = _clock(notifier)
    await _sms_first(notifier)
    gateway.then(Reply(status=503, payload={"code": "busy"}))
    await _handle(notifier, _opened(reason=StallReason.BLOCKED))
    await notifier.dispatcher.dispatch_once()
    [sms] = [r for r in await _rows(notifier) if r.channel == "sms"]
    assert (sms.status, sms.attempts, sms.error_code) == ("pending", 1, "provider_unavailable")
    assert sms.next_attempt_at is not None
    wait = sms.next_attempt_at - clock.now()
    assert timedelta(seconds=30) <= wait <= timedelta(seconds=60)  # base 60 s, half jittered

    gateway.then(Reply(status=422, payload={"code": "invalid_to", "message": "no such number"}))
    clock.advance(wait)
    await notifier.dispatcher.dispatch_once()
    rows = await _rows(notifier)
    forestry = [r for r in rows if r.agency_id == FORESTRY.agency_id]
    assert [(r.channel, r.status) for r in forestry] == [("sms", "failed"), ("email", "sent")]
    assert len(smtp.mailbox(FORESTRY_MAIL)) == 1
    async with notifier.sessions() as session:
        contact = (await session.exec(select(Contact).where(Contact.channel == "sms"))).one()
    assert contact.status == "active"  # a 422 is a bad request, not a condemned number


class Dies(BaseException):
    """The process dies (not an Exception: nothing catches it)."""


class DyingChannel:
    """The real email channel; dies before or after the SMTP server takes the message."""

    def __init__(self, inner: Any, after_send: bool) -> None:
        self.inner, self.after_send = inner, after_send

    @property
    def name(self) -> str:
        return "email"

    async def send(self, msg: OutgoingMessage) -> Receipt:
        if self.after_send:
            await self.inner.send(msg)
        raise Dies

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize("after_send", [False, True])
async def test_a_notifier_killed_mid_send_loses_no_alert(
    notifier: NotifierService, smtp: SmtpSink, after_send: bool
) -> None:
    clock = _clock(notifier)
    real = notifier.dispatcher.channels["email"]
    await _handle(notifier, _opened(reason=StallReason.BLOCKED))
    notifier.dispatcher.channels["email"] = DyingChannel(real, after_send)
    with pytest.raises(Dies):
        await notifier.dispatcher.dispatch_once()
    notifier.dispatcher.channels["email"] = real
    assert await notifier.dispatcher.dispatch_once() == 0  # claimed rows are leased
    clock.advance(timedelta(minutes=5))
    assert await notifier.dispatcher.dispatch_once() == 2
    # Died before the send: sent once. Died after it (the answer was lost): sent again.
    assert len(smtp.mailbox(FORESTRY_MAIL)) == (2 if after_send else 1)
    assert {r.status for r in await _rows(notifier)} == {"sent"}


async def test_two_dispatchers_side_by_side_send_each_message_once(
    notifier: NotifierService, smtp: SmtpSink, make_database: Callable[[str], str]
) -> None:
    for number in range(1, 31):
        await _handle(notifier, _opened(number))
    other = build(notifier.settings, clock=notifier.clock, tracer_provider=notifier.tracer_provider)
    try:
        for dispatcher in (other.dispatcher, notifier.dispatcher):
            dispatcher.options = replace(dispatcher.options, batch_size=5)
        sent = await asyncio.gather(
            notifier.dispatcher.dispatch_once(), other.dispatcher.dispatch_once()
        )
    finally:
        await other.close()
    rows = await _rows(notifier)
    assert len(rows) == 60
    assert {(r.status, r.attempts) for r in rows} == {("sent", 1)}  # none taken twice
    # Rows claimed together for one recipient went as one digest; each row in one message.
    for mail, agency in ((FORESTRY_MAIL, FORESTRY), (NATURE_MAIL, NATURE)):
        refs = {r.message_ref for r in rows if r.agency_id == agency.agency_id}
        assert len(smtp.mailbox(mail)) == len(refs)
    assert sum(sent) == len({r.message_ref for r in rows})


async def test_recovery_drops_unsent_reminders_and_tells_everyone_told(
    notifier: NotifierService, smtp: SmtpSink
) -> None:
    opened = _opened()
    await _handle(notifier, opened)
    await notifier.dispatcher.dispatch_once()
    recovered = _then(opened, StallTransitionKind.RECOVERED, level=Level.GREEN, reasons=[])
    await _handle(notifier, recovered)
    await notifier.dispatcher.dispatch_once()
    assert smtp.mailbox(FORESTRY_MAIL)[-1]["Subject"].endswith("已恢复正常")
    assert smtp.mailbox(NATURE_MAIL)[-1]["Subject"].endswith("已恢复正常")
    alert = await _alert(notifier)
    assert (alert.state, alert.next_step_at) == ("resolved", None)


async def test_a_channel_error_never_shows_an_address_in_the_log(
    notifier: NotifierService, gateway: ProviderServer
) -> None:
    await _sms_first(notifier)
    gateway.then(Reply(status=503))
    await _handle(notifier, _opened(reason=StallReason.BLOCKED))
    await notifier.dispatcher.dispatch_once()
    [sms] = [r for r in await _rows(notifier) if r.channel == "sms"]
    assert sms.last_error is not None and "13800138000" not in sms.last_error


async def test_a_closure_resolves_every_alert_its_work_point_still_has(
    notifier: NotifierService, smtp: SmtpSink
) -> None:
    opened = _opened()
    await _handle(notifier, opened)
    closed = _then(
        opened,
        StallTransitionKind.CLOSED,
        episode_id=None,
        level=Level.GREEN,
        reasons=[],
        note="验收通过",
    )
    await _handle(notifier, closed)
    await notifier.dispatcher.dispatch_once()
    async with notifier.sessions() as session:
        alerts = {a.episode_id: a for a in (await session.exec(select(Alert))).all()}
    assert opened.episode_id is not None
    assert (alerts[opened.episode_id].state, alerts[opened.episode_id].resolution) == (
        "resolved",
        "closed",
    )
    subjects = [m["Subject"] for m in smtp.mailbox(FORESTRY_MAIL)]
    assert subjects == [
        "【督办】第三十五项“加强林业数字化应用”已办结销号"
    ]  # the stall was never sent


async def _alert_events(service: NotifierService) -> list[AlertTransition]:
    async with service.sessions() as session:
        rows = (await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all()
    assert {(r.topic, r.key) for r in rows} <= {(topics.ALERTS, f"{PLAN}/35")}
    return [AlertTransition.model_validate_json(r.payload) for r in rows]


async def test_each_change_of_an_alert_is_in_the_outbox_with_it(
    notifier: NotifierService,
) -> None:
    opened = _opened()
    await _handle(notifier, opened)
    [fired] = await _alert_events(notifier)
    alert = await _alert(notifier)
    assert (fired.kind, fired.alert_id, fired.fired_at) == (
        AlertTransitionKind.FIRED,
        alert.id,
        MONDAY,
    )
    assert fired.lead_agencies == [FORESTRY] and fired.acknowledged_at is None
    await _handle(notifier, _then(opened, StallTransitionKind.LEVEL_CHANGED, level=Level.YELLOW))
    assert len(await _alert_events(notifier)) == 1  # a new colour is no new state

    _clock(notifier).advance(timedelta(hours=3))
    await notifier.alerts.acknowledge(alert.id, "linye-system", lambda a: None, person="zhang.san")
    await notifier.alerts.acknowledge(alert.id, "office", lambda a: None)  # twice: told once
    _, acked = await _alert_events(notifier)
    assert (acked.kind, acked.acknowledged_at, acked.acknowledged_via) == (
        AlertTransitionKind.ACKNOWLEDGED,
        MONDAY + timedelta(hours=3),
        "api",
    )
    assert (acked.acknowledged_by, acked.acknowledged_person) == ("linye-system", "zhang.san")
    assert acked.event_id != fired.event_id

    # Closed: the open alert is resolved (told), the closure's own record is not an alert.
    closed = _then(
        opened, StallTransitionKind.CLOSED, episode_id=None, level=Level.GREEN, reasons=[]
    )
    await _handle(notifier, closed)
    *_, resolved = events = await _alert_events(notifier)
    assert len(events) == 3
    assert (resolved.kind, resolved.resolution, resolved.alert_id) == (
        AlertTransitionKind.RESOLVED,
        "closed",
        alert.id,
    )
    assert resolved.acknowledged_at == acked.acknowledged_at  # the lifecycle so far
    with pytest.raises(AckRefused):  # refused: nothing more is told
        await notifier.alerts.acknowledge(alert.id, "office", lambda a: None)
    assert len(await _alert_events(notifier)) == 3

    # `duban-notifier republish-alerts`: the present state again, as the same event.
    assert await republish(notifier.sessions, notifier.clock.now()) == 1  # not the closure's
    again = (await _alert_events(notifier))[-1]
    assert (again.event_id, again.kind, again.acknowledged_via) == (
        resolved.event_id,
        AlertTransitionKind.RESOLVED,
        "api",
    )


async def test_a_recipient_over_its_rate_waits_for_the_next_token(
    notifier: NotifierService, smtp: SmtpSink
) -> None:
    from duban_shared.ratelimit import RateLimiter

    clock = _clock(notifier)
    notifier.dispatcher.limiter = RateLimiter(clock, rate=1 / 3600, burst=1)
    await _handle(notifier, _opened(5))
    await notifier.dispatcher.dispatch_once()
    clock.advance(timedelta(minutes=1))
    await _handle(notifier, _opened(6))
    await notifier.dispatcher.dispatch_once()
    assert len(smtp.mailbox(FORESTRY_MAIL)) == 1
    waiting = [r for r in await _rows(notifier) if r.status == "pending"]
    assert {r.agency_id for r in waiting} == {FORESTRY.agency_id, NATURE.agency_id}
    assert all(r.next_attempt_at == clock.now() + timedelta(minutes=59) for r in waiting)
    clock.advance(timedelta(minutes=59))
    await notifier.dispatcher.dispatch_once()
    assert len(smtp.mailbox(FORESTRY_MAIL)) == 2

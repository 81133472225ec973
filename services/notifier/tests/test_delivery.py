"""Notifier delivery on a real SMTP server (aiosmtpd) and PostgreSQL, without Kafka:
StallConsumer.handle is called with transitions built here, as the stall consumer would."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import pytest
from duban_shared import topics
from duban_shared.clock import ManualClock
from duban_shared.events import (
    AgencyRef,
    Level,
    StallReason,
    StallTransition,
    StallTransitionKind,
)
from notifier.mailer import DeliveryError
from notifier.main import NotifierService, build
from notifier.messages import chinese_number, stall_email
from notifier.models import Inbox, NotificationLog
from notifier.settings import NotifierSettings
from notifier.store import replace_email_contacts
from sqlmodel import col, select

from tests.harness import SmtpSink, Spans

FORESTRY = AgencyRef(agency_id=uuid.uuid5(uuid.NAMESPACE_URL, "linye"), name="市林业局")
NATURE = AgencyRef(agency_id=uuid.uuid5(uuid.NAMESPACE_URL, "ziran"), name="市自然资源局")
FORESTRY_MAIL = "linye@zhaoqing.example.cn"
START = datetime.fromisoformat("2024-10-22T09:00:00+08:00")


@pytest.fixture
async def notifier(
    make_database: Callable[[str], str], smtp: SmtpSink, spans: Spans
) -> AsyncIterator[NotifierService]:
    service = build(
        NotifierSettings(  # type: ignore[call-arg]
            database_url=make_database("notifier"),
            smtp_port=smtp.port,
            smtp_timeout_seconds=5,
            environment="test",
        ),
        clock=ManualClock(START),
        tracer_provider=spans.provider("duban-notifier"),
    )
    async with service.sessions() as session, session.begin():
        await replace_email_contacts(
            session, FORESTRY.agency_id, [FORESTRY_MAIL], service.clock.now()
        )
    yield service
    await service.close()


def _transition(
    *,
    kind: StallTransitionKind = StallTransitionKind.OPENED,
    reason: StallReason = StallReason.BLOCKED,
    leads: list[AgencyRef] | None = None,
    silent_working_days: int | None = 0,
    note: str | None = "林分优化用地审批未完成",
) -> StallTransition:
    return StallTransition(
        event_id=uuid.uuid4(),
        occurred_at=START,
        work_point_id="zhaoqing-digital-2024/35",
        episode_id=uuid.uuid4(),
        kind=kind,
        level=Level.GREEN if kind == StallTransitionKind.RECOVERED else Level.RED,
        reason=reason,
        reasons=[] if kind == StallTransitionKind.RECOVERED else [reason],
        work_point_number=35,
        work_point_title="加强林业数字化应用",
        lead_agencies=leads if leads is not None else [FORESTRY],
        co_agencies=[NATURE],
        silent_working_days=silent_working_days,
        note=note,
    )


async def _log(service: NotifierService, transition: StallTransition) -> list[NotificationLog]:
    async with service.sessions() as session:
        query = (
            select(NotificationLog)
            .where(NotificationLog.transition_event_id == transition.event_id)
            .order_by(col(NotificationLog.id))
        )
        return list((await session.exec(query)).all())


async def _handled(service: NotifierService, transition: StallTransition) -> bool:
    async with service.sessions() as session:
        return await session.get(Inbox, transition.event_id) is not None


async def test_transient_smtp_failure_raises_and_leaves_the_row_sending(
    notifier: NotifierService, smtp: SmtpSink
) -> None:
    transition = _transition()
    smtp.fail_next.append("451 4.3.0 try again later")

    with pytest.raises(DeliveryError) as caught:
        await notifier.stall_consumer.handle(transition, topics.STALLS)
    assert caught.value.permanent is False

    [row] = await _log(notifier, transition)
    assert (row.status, row.attempts, row.recipient) == ("sending", 1, FORESTRY_MAIL)
    assert row.last_error is not None and "451" in row.last_error
    assert smtp.mailbox(FORESTRY_MAIL) == []
    assert not await _handled(notifier, transition)  # so Kafka redelivers it


async def test_retry_after_a_transient_failure_sends_exactly_one_email(
    notifier: NotifierService, smtp: SmtpSink
) -> None:
    transition = _transition()
    smtp.fail_next.append("451 4.3.0 try again later")
    with pytest.raises(DeliveryError):
        await notifier.stall_consumer.handle(transition, topics.STALLS)

    clock = notifier.clock
    assert isinstance(clock, ManualClock)
    clock.advance(timedelta(minutes=1))
    await notifier.stall_consumer.handle(transition, topics.STALLS)

    assert len(smtp.mailbox(FORESTRY_MAIL)) == 1
    [row] = await _log(notifier, transition)
    assert (row.status, row.attempts) == ("sent", 2)
    assert row.sent_at == clock.now()
    assert await _handled(notifier, transition)


async def test_permanent_smtp_failure_marks_the_row_failed_without_raising(
    notifier: NotifierService, smtp: SmtpSink
) -> None:
    transition = _transition()
    smtp.fail_next.append("550 5.1.1 no such user")

    await notifier.stall_consumer.handle(transition, topics.STALLS)

    [row] = await _log(notifier, transition)
    assert (row.status, row.attempts, row.sent_at) == ("failed", 1, None)
    assert row.last_error is not None and "550" in row.last_error
    assert smtp.messages == []
    assert await _handled(notifier, transition)

    # A redelivery does not try the refused address again.
    await notifier.stall_consumer.handle(transition, topics.STALLS)
    assert smtp.messages == []
    assert [(r.status, r.attempts) for r in await _log(notifier, transition)] == [("failed", 1)]


async def test_handling_the_same_transition_twice_sends_one_email(
    notifier: NotifierService, smtp: SmtpSink
) -> None:
    transition = _transition()
    await notifier.stall_consumer.handle(transition, topics.STALLS)
    await notifier.stall_consumer.handle(transition, topics.STALLS)

    [mail] = smtp.mailbox(FORESTRY_MAIL)
    assert mail["Subject"] == "【督办提醒】第三十五项“加强林业数字化应用”进展停滞"
    assert "林分优化用地审批未完成" in mail.get_content()
    assert [(r.status, r.attempts) for r in await _log(notifier, transition)] == [("sent", 1)]


async def test_a_lead_agency_without_contacts_gets_a_no_contact_row(
    notifier: NotifierService, smtp: SmtpSink
) -> None:
    transition = _transition(leads=[FORESTRY, NATURE])
    await notifier.stall_consumer.handle(transition, topics.STALLS)

    rows = await _log(notifier, transition)
    assert [(r.agency_id, r.recipient, r.status, r.attempts) for r in rows] == [
        (FORESTRY.agency_id, FORESTRY_MAIL, "sent", 1),
        (NATURE.agency_id, f"agency:{NATURE.agency_id}", "no_contact", 0),
    ]
    assert len(smtp.messages) == 1  # only the agency with an address was mailed
    assert await _handled(notifier, transition)


async def test_every_contact_of_a_lead_agency_gets_its_own_email(
    notifier: NotifierService, smtp: SmtpSink
) -> None:
    async with notifier.sessions() as session, session.begin():
        await replace_email_contacts(
            session,
            FORESTRY.agency_id,
            [FORESTRY_MAIL, "duty@zhaoqing.example.cn"],
            notifier.clock.now(),
        )
    transition = _transition()
    await notifier.stall_consumer.handle(transition, topics.STALLS)

    assert len(smtp.mailbox(FORESTRY_MAIL)) == 1
    assert len(smtp.mailbox("duty@zhaoqing.example.cn")) == 1
    assert [r.status for r in await _log(notifier, transition)] == ["sent", "sent"]


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (1, "一"),
        (9, "九"),
        (10, "十"),
        (11, "十一"),
        (19, "十九"),
        (20, "二十"),
        (35, "三十五"),
        (50, "五十"),
        (99, "九十九"),
    ],
)
def test_chinese_number_writes_1_to_99_in_chinese_numerals(n: int, words: str) -> None:
    assert chinese_number(n) == words


@pytest.mark.parametrize("n", [0, 100, -3])
def test_chinese_number_leaves_numbers_outside_1_to_99_in_arabic(n: int) -> None:
    assert chinese_number(n) == str(n)


def test_blocked_opened_email_names_the_item_reason_and_note() -> None:
    subject, body = stall_email(_transition(), "市林业局")
    assert subject == "【督办提醒】第三十五项“加强林业数字化应用”进展停滞"
    assert body.startswith("市林业局:\n")
    assert "您单位牵头的第三十五项“加强林业数字化应用”已被判定为停滞。" in body
    assert "原因:牵头或责任单位报告工作受阻。" in body
    assert "报送说明:林分优化用地审批未完成" in body
    assert "个工作日" not in body  # the silence count is only for silent stalls
    assert "工作要点编号:zhaoqing-digital-2024/35" in body


def test_silent_opened_email_counts_the_silent_working_days() -> None:
    subject, body = stall_email(
        _transition(reason=StallReason.SILENT, silent_working_days=14, note=None), "市林业局"
    )
    assert subject == "【督办提醒】第三十五项“加强林业数字化应用”进展停滞"
    assert "原因:牵头单位逾期未报送进展。" in body
    assert "距上次报送已过 14 个工作日。" in body
    assert "报送说明" not in body
    assert "请尽快报送最新进展或说明困难。" in body


def test_recovered_email_says_the_reminder_is_lifted() -> None:
    subject, body = stall_email(
        _transition(kind=StallTransitionKind.RECOVERED, note=None), "市林业局"
    )
    assert subject == "【督办】第三十五项“加强林业数字化应用”已恢复正常"
    assert "您单位牵头的第三十五项“加强林业数字化应用”已恢复正常推进,此前的督办提醒解除。" in body
    assert "原因" not in body
    assert body.endswith("—— 督办系统(自动发送,请勿回复)\n")


async def test_a_closure_resolves_every_alert_its_work_point_still_has(
    notifier: NotifierService, smtp: SmtpSink
) -> None:
    from notifier.models import Alert

    opened = _transition()
    await notifier.stall_consumer.handle(opened, topics.STALLS)
    closed = _transition(kind=StallTransitionKind.CLOSED).model_copy(
        update={"episode_id": None, "note": "验收通过"}
    )
    await notifier.stall_consumer.handle(closed, topics.STALLS)

    async with notifier.sessions() as session:
        [alert] = (await session.exec(select(Alert))).all()
    assert (alert.episode_id, alert.state, alert.resolution) == (
        opened.episode_id,
        "resolved",
        "closed",
    )
    subjects = [m["Subject"] for m in smtp.mailbox(FORESTRY_MAIL)]
    assert subjects[-1] == "【督办】第三十五项“加强林业数字化应用”已办结销号"

"""No message twice after a restore: the deliveries a notifier sent are told on the deliveries
topic (through its outbox), and a notifier on a database that does not know them (restored from
a backup taken before they were sent) reads them at start-up and marks them sent instead of
sending them again. Real Kafka, PostgreSQL, an aiosmtpd server and a local SMS gateway."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from duban_shared import topics
from duban_shared.clock import ManualClock
from duban_shared.deadletters import HEADER_CODE, read_dead_letters
from duban_shared.events import (
    AgencyRef,
    CircularPublished,
    DeliverySent,
    Level,
    StallReason,
    StallTransition,
    StallTransitionKind,
)
from notifier.domain.contacts import ContactIn
from notifier.domain.delivery import delivery_key
from notifier.main import build, create_app
from notifier.service import DELIVERY_REPLAY, NotifierService
from notifier.settings import NotifierSettings
from notifier.store.contacts import replace_contacts
from notifier.store.models import AgencyView, DeliveryRecord, NotificationLog, OutboxMessage
from sqlmodel import col, select

from services.notifier.tests.provider_servers import JsonGateway, ProviderServer, serve
from tests.harness import SmtpSink, Spans, wait_for

FORESTRY = AgencyRef(agency_id=uuid.uuid5(uuid.NAMESPACE_URL, "linye"), name="市林业局")
NATURE = AgencyRef(agency_id=uuid.uuid5(uuid.NAMESPACE_URL, "ziran"), name="市自然资源局")
FORESTRY_PHONE, NATURE_MAIL = "+8613800138000", "ziran@zhaoqing.example.cn"
TOKEN = "gateway-token"
MONDAY = datetime.fromisoformat("2024-10-21T10:00:00+08:00")  # working hours: SMS not held
POLICY = """
working_hours: {start: "09:00", end: "18:00"}
quiet_channels: [sms, wecom]
group_window_minutes: 0
steps:
  - {id: lead, notify: lead}
  - {id: co, notify: co}
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
    return folder


@pytest.fixture
def notifier_on(
    make_database: Callable[[str], str],
    kafka_bootstrap: str,
    topic_prefix: str,
    smtp: SmtpSink,
    spans: Spans,
    gateway: ProviderServer,
    policy_dir: Path,
) -> Callable[[], AsyncIterator[NotifierService]]:
    """A notifier on a fresh database (the same topics each time), its producer started and
    its contacts set; the loops are driven by the test."""

    @asynccontextmanager
    async def make(**more: object) -> AsyncIterator[NotifierService]:
        settings = NotifierSettings.model_validate(
            {
                "database_url": make_database("notifier"),
                "kafka_bootstrap_servers": kafka_bootstrap,
                "topic_prefix": topic_prefix,
                "smtp_port": smtp.port,
                "smtp_timeout_seconds": 5,
                "environment": "test",
                "run_loops": False,
                "dispatch_interval_seconds": 0.2,
                "consumer_retry_seconds": 0.2,
                "consumer_retry_max_seconds": 0.5,
                "escalation_dir": policy_dir,
                "channels": {
                    "http_sms": {
                        "url": gateway.url("/v1/sms"),
                        "token": TOKEN,
                        "timeout_seconds": 2,
                    }
                },
                **more,
            }
        )
        service = build(settings, clock=ManualClock(MONDAY), tracer_provider=spans.provider("n"))
        now = service.clock.now()
        async with service.sessions() as session, session.begin():
            for agency, contact in (
                (FORESTRY, ContactIn("sms", FORESTRY_PHONE)),
                (NATURE, ContactIn("email", NATURE_MAIL)),
            ):
                session.add(
                    AgencyView(
                        id=agency.agency_id, name=agency.name, kind="bureau", snapshot_at=now
                    )
                )
                await replace_contacts(session, agency.agency_id, [contact], now)
        await service.producer.start()
        try:
            yield service
        finally:
            await service.close()

    return make  # type: ignore[return-value]


def _opened() -> StallTransition:
    return StallTransition(
        event_id=uuid.uuid4(),
        occurred_at=MONDAY,
        work_point_id="zhaoqing-digital-2024/35",
        episode_id=uuid.uuid4(),
        kind=StallTransitionKind.OPENED,
        level=Level.RED,
        reason=StallReason.SILENT,
        reasons=[StallReason.SILENT],
        work_point_number=35,
        work_point_code="35",
        work_point_title="加强林业数字化应用",
        lead_agencies=[FORESTRY],
        co_agencies=[NATURE],
        plan_slug="zhaoqing-digital-2024",
        silent_working_days=14,
    )


async def _rows(service: NotifierService) -> list[NotificationLog]:
    async with service.sessions() as session:
        query = select(NotificationLog).order_by(col(NotificationLog.id))
        return list((await session.exec(query)).all())


async def _relay_all(service: NotifierService) -> None:
    while await service.relay.relay_once():
        pass


async def test_a_notifier_that_did_not_know_of_a_send_does_not_send_it_again(
    notifier_on: Callable[[], AsyncIterator[NotifierService]],
    smtp: SmtpSink,
    gateway: ProviderServer,
) -> None:
    opened = _opened()
    # The notifier sends an SMS to the lead and an email to the co-agency, and tells the
    # deliveries topic (through its outbox, with the rows marked sent).
    async with notifier_on() as first:  # type: ignore[attr-defined]
        await first.stall_consumer.handle(opened, topics.STALLS)
        assert await first.dispatcher.dispatch_once() == 2
        sent = await _rows(first)
        async with first.sessions() as session:
            told = (await session.exec(select(OutboxMessage))).all()
        assert sorted(r.topic for r in told) == [
            topics.ALERTS,
            topics.DELIVERIES,
            topics.DELIVERIES,
        ]
        records = [
            DeliverySent.model_validate_json(r.payload)
            for r in told
            if r.topic == topics.DELIVERIES
        ]
        assert {r.delivery_key for r in records} == {
            delivery_key(r.transition_event_id, r.channel, r.recipient) for r in sent
        }
        assert not any(FORESTRY_PHONE in r.payload.decode() for r in told)  # no address travels
        await _relay_all(first)
    assert len(gateway.requests) == 1 and len(smtp.mailbox(NATURE_MAIL)) == 1

    # A database restored from a backup taken before the transition: it reads the topic at
    # start-up, the consumer plans the same deliveries again, and nothing goes out twice.
    async with notifier_on() as restored:  # type: ignore[attr-defined]
        await restored.delivery_replay.run()
        assert restored.delivery_replay.kept == 2  # type: ignore[attr-defined]
        await restored.stall_consumer.handle(opened, topics.STALLS)
        assert await restored.dispatcher.dispatch_once() == 0
        again = await _rows(restored)
        assert [(r.channel, r.status, r.message_ref, r.attempts) for r in again] == [
            (r.channel, "sent", r.message_ref, 0) for r in sent
        ]
        # Read again at the next start: nothing new, nothing twice.
        await restored.delivery_replay.run()
        assert restored.delivery_replay.kept == 0  # type: ignore[attr-defined]
    assert len(gateway.requests) == 1 and len(smtp.mailbox(NATURE_MAIL)) == 1


async def test_a_record_that_is_no_delivery_is_parked_and_the_rest_is_read(
    notifier_on: Callable[[], AsyncIterator[NotifierService]],
    kafka_bootstrap: str,
    topic_prefix: str,
    gateway: ProviderServer,
) -> None:
    opened = _opened()
    async with notifier_on() as first:  # type: ignore[attr-defined]
        await first.stall_consumer.handle(opened, topics.STALLS)
        await first.dispatcher.dispatch_once()
        topic = topic_prefix + topics.DELIVERIES
        await first.producer.send_and_wait(topic, b"not a delivery", key=b"x", partition=0)
        await _relay_all(first)
    async with notifier_on() as restored:  # type: ignore[attr-defined]
        await restored.delivery_replay.run()
        async with restored.sessions() as session:
            kept = (await session.exec(select(DeliveryRecord))).all()
        assert len(kept) == 2
        [parked] = await read_dead_letters(kafka_bootstrap, topic_prefix + topics.NOTIFIER_DLQ)
        assert dict(parked.headers)[HEADER_CODE] == b"invalid_delivery_record"
        await restored.stall_consumer.handle(opened, topics.STALLS)
        assert await restored.dispatcher.dispatch_once() == 0
    assert len(gateway.requests) == 1


async def test_a_circular_read_again_after_a_restore_is_not_mailed_again(
    notifier_on: Callable[..., AsyncIterator[NotifierService]], smtp: SmtpSink
) -> None:
    circular_id = uuid.uuid4()
    published = CircularPublished(
        event_id=uuid.uuid5(circular_id, "published"),
        occurred_at=MONDAY,
        circular_id=circular_id,
        plan_slug="zhaoqing-digital-2024",
        number="肇数督通〔2024〕3号",
        kind="weekly",
        period="2024-W43",
        version=1,
        title="第43周督办通报",
        docx_base64=base64.b64encode(b"docx").decode(),
        xlsx_base64=base64.b64encode(b"xlsx").decode(),
    )
    leaders = {"circular_recipients": "leader@zhaoqing.example.cn,office@zhaoqing.example.cn"}
    async with notifier_on(**leaders) as first:  # type: ignore[attr-defined]
        assert await first.circular_mail.apply(published, topics.CIRCULARS) == 2
        await _relay_all(first)
    async with notifier_on(**leaders) as restored:  # type: ignore[attr-defined]
        await restored.delivery_replay.run()
        assert await restored.circular_mail.apply(published, topics.CIRCULARS) == 0
        assert await restored.circular_mail.apply(published, topics.CIRCULARS) == 0  # inbox
    assert len(smtp.messages) == 2


async def test_the_notifier_is_not_ready_and_sends_nothing_until_the_topic_is_read(
    notifier_on: Callable[..., AsyncIterator[NotifierService]],
    kafka_bootstrap: str,
    topic_prefix: str,
    gateway: ProviderServer,
) -> None:
    async with notifier_on(run_loops=True) as service:  # type: ignore[attr-defined]
        await service.stall_consumer.handle(_opened(), topics.STALLS)  # two deliveries due
        # Its deliveries topic does not exist yet: the read is retried, the dispatcher waits.
        late = topic_prefix + "late." + topics.DELIVERIES
        service.delivery_replay.topic = late  # type: ignore[attr-defined]
        await service.start()
        app = create_app(service)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://notifier"
        ) as http:

            async def waiting_for_the_read_only() -> bool:
                return service.background.pending == [DELIVERY_REPLAY]

            await wait_for(waiting_for_the_read_only, what="every start but the read")
            answer = await http.get("/healthz")
            assert answer.status_code == 503, answer.text
            assert answer.json()["code"] == "not_ready"
            assert answer.json()["details"] == [DELIVERY_REPLAY]
            assert {r.status for r in await _rows(service)} == {"pending"}
            assert gateway.requests == []

            admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
            await admin.start()
            try:
                await admin.create_topics([NewTopic(late, 1, 1)])
            finally:
                await admin.close()

            async def sent() -> bool:
                return {r.status for r in await _rows(service)} == {"sent"}

            await wait_for(sent, within=60, what="the deliveries sent once the topic is read")
            assert (await http.get("/healthz")).json() == {"status": "ok"}
    assert len(gateway.requests) == 1

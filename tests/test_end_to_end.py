"""The walking skeleton end to end: agency report -> Kafka -> progress -> Kafka -> email."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial

from aiokafka import AIOKafkaProducer
from duban_shared import topics
from duban_shared.attributes import LINK_KIND
from notifier.store.models import NotificationLog
from opentelemetry.trace import SpanKind
from progress.store.models import StatusReport
from sqlmodel import func, select

from tests.harness import committed_offsets, end_offsets, service_of, wait_for
from tests.stack import FORESTRY_MAIL, Stack


async def _mail_count(stack: Stack, expected: int) -> bool:
    return len(stack.smtp.mailbox(FORESTRY_MAIL)) >= expected


async def _consumed(stack: Stack, group: str, topic: str, partition: int, offset: int) -> bool:
    committed = await committed_offsets(stack.kafka_bootstrap, stack.topic_prefix + group)
    return committed.get((stack.topic_prefix + topic, partition), -1) > offset


async def test_blocked_report_emails_the_lead_agency_within_one_trace(stack: Stack) -> None:
    response = await stack.post_event(
        stack.forestry, 35, "blocked", percent=40, note="林分优化用地审批未完成"
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "accepted"

    await wait_for(lambda: _mail_count(stack, 1), what="the stall email to 市林业局")
    [mail] = stack.smtp.mailbox(FORESTRY_MAIL)
    assert mail["Subject"] == "【督办提醒】第三十五项“加强林业数字化应用”进展停滞"
    body = mail.get_content()
    assert "市林业局" in body and "报告工作受阻" in body and "林分优化用地审批未完成" in body

    # One trace from the POST to the SMTP send, parent to child across Kafka twice.
    async def smtp_span_ended() -> bool:  # the mail arrives before the client span ends
        return any(s.name == "email send" for s in stack.spans.all())

    await wait_for(smtp_span_ended, what="the SMTP client span to end")
    smtp_span = next(s for s in stack.spans.all() if s.name == "email send")

    async def chain_complete() -> bool:  # the notifier's consumer span ends after the send
        return stack.spans.chain_to_root(smtp_span)[-1].parent is None

    await wait_for(chain_complete, what="every span from the POST to the SMTP send to end")
    chain = stack.spans.chain_to_root(smtp_span)
    root = chain[-1]
    assert root.kind == SpanKind.SERVER
    assert root.name == "POST /v1/events"
    path = [(service_of(s), s.kind) for s in reversed(chain)]
    assert [p for p in path if p[1] != SpanKind.INTERNAL] == [
        ("duban-progress", SpanKind.SERVER),
        ("duban-progress", SpanKind.PRODUCER),
        ("duban-progress", SpanKind.CONSUMER),
        ("duban-progress", SpanKind.PRODUCER),
        ("duban-notifier", SpanKind.CONSUMER),
        ("duban-notifier", SpanKind.CLIENT),
    ]
    # The registry's part: the ingestion span links to the registry's publication of the
    # work point it validated against (a link, so ingestion never waits on the registry).
    registry_sends = [
        s
        for s in stack.spans.all()
        if service_of(s) == "duban-registry" and s.kind == SpanKind.PRODUCER
    ]
    registry_traces = {s.context.trace_id for s in registry_sends}
    by_kind = sorted(
        ((str((link.attributes or {})[LINK_KIND]), link) for link in root.links),
        key=lambda kind_link: kind_link[0],
    )
    assert [kind for kind, _ in by_kind] == [
        "ingest round",  # the database rounds that answered it (look-up, record)
        "ingest round",
        "registry work point snapshot",
    ]
    assert by_kind[-1][1].context.trace_id in registry_traces


async def test_silent_lead_agency_stalls_after_period_and_grace(stack: Stack) -> None:
    response = await stack.post_event(stack.forestry, 35, "on_track", percent=70)
    assert response.status_code == 202
    await wait_for(
        lambda: _consumed(
            stack,
            "duban-progress.status",
            topics.STATUS,
            response.json()["partition"],
            response.json()["offset"],
        ),
        what="progress to apply the report",
    )

    # 10 + 3 working days after Mon 2 Sep 2024: Sat 14 Sep is a working day (中秋 调休),
    # 15-17 Sep are holidays, so the 13th working day is Fri 20 Sep. Still fine then:
    stack.clock.set(datetime.fromisoformat("2024-09-20T18:00:00+08:00"))
    assert await stack.progress.sweeper.sweep_once() == 0
    # ...and silent from the start of Mon 23 Sep, the 14th working day.
    stack.clock.set(datetime.fromisoformat("2024-09-23T08:00:00+08:00"))
    assert await stack.progress.sweeper.sweep_once() == 50  # every lead went quiet
    await wait_for(lambda: _mail_count(stack, 1), what="the silence email")
    [mail] = stack.smtp.mailbox(FORESTRY_MAIL)
    assert "逾期未报送" in mail.get_content()
    assert "14 个工作日" in mail.get_content()

    # A second sweep finds nothing new: one episode, one email.
    assert await stack.progress.sweeper.sweep_once() == 0
    progress = await stack.get_progress(stack.office, 35)
    assert progress.json()["stall_reason"] == "silent"

    # Agencies without a contact are logged, not forgotten.
    async def no_contact_rows() -> bool:
        async with stack.notifier.sessions() as session:
            query = (
                select(func.count())
                .select_from(NotificationLog)
                .where(NotificationLog.status == "no_contact")
            )
            return int((await session.exec(query)).one()) >= 49

    await wait_for(no_contact_rows, what="no_contact log rows for the other leads")


async def test_duplicate_event_id_stores_one_report_and_sends_one_email(stack: Stack) -> None:
    event_id = uuid.uuid4()
    first = await stack.post_event(stack.forestry, 35, "blocked", event_id=event_id)
    second = await stack.post_event(stack.forestry, 35, "blocked", event_id=event_id)
    assert first.status_code == second.status_code == 202
    await wait_for(lambda: _mail_count(stack, 1), what="the stall email")
    await wait_for(
        lambda: _consumed(
            stack,
            "duban-progress.status",
            topics.STATUS,
            second.json()["partition"],
            second.json()["offset"],
        ),
        what="progress to consume the duplicate",
    )
    async with stack.progress.sessions() as session:
        stored = (await session.exec(select(func.count()).select_from(StatusReport))).one()
    assert stored == 1

    # Redeliver the stall transition itself: the notifier must not send again.
    async with stack.progress.sessions() as session:
        from progress.store.models import OutboxMessage

        row = (await session.exec(select(OutboxMessage))).one()
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
    await producer.start()
    try:
        meta = await producer.send_and_wait(
            stack.topic_prefix + topics.STALLS, row.payload, key=row.key.encode()
        )
    finally:
        await producer.stop()
    await wait_for(
        lambda: _consumed(
            stack, "duban-notifier.stalls", topics.STALLS, meta.partition, meta.offset
        ),
        what="the notifier to consume the redelivered transition",
    )
    assert len(stack.smtp.mailbox(FORESTRY_MAIL)) == 1


async def test_invalid_events_get_a_clear_4xx_and_nothing_reaches_kafka(stack: Stack) -> None:
    key = stack.forestry
    cases = [
        (await stack.post_event(key, 99, "on_track"), 404, "unknown_work_point"),
        (await stack.post_event(key, 41, "on_track"), 403, "agency_not_responsible"),
        (await stack.post_event(key, 35, "on_track", percent=150), 422, "invalid_request"),
        (await stack.post_event(key, 35, "finished"), 422, "invalid_request"),
        (
            await stack.post_event(key, 35, "on_track", occurred_at="2030-01-01T00:00:00+08:00"),
            422,
            "occurred_at_in_future",
        ),
        (
            await stack.post_event(key, 35, "on_track", occurred_at="2024-09-02T09:00:00"),
            422,
            "invalid_request",
        ),
        (await stack.post_event("not-a-token", 35, "on_track"), 401, "invalid_token"),
    ]
    missing = await stack.progress_http.post("/v1/events", json={})
    cases.append((missing, 401, "missing_token"))
    for response, status, code in cases:
        assert (response.status_code, response.json()["code"]) == (status, code), response.text
        assert response.json()["message"]

    # Nothing was produced: the status topic is still empty on every partition.
    ends = await end_offsets(stack.kafka_bootstrap, stack.topic_prefix + topics.STATUS, 6)
    assert ends == {p: 0 for p in range(6)}


async def test_transient_smtp_failure_is_retried_with_backoff_and_sends_once(
    stack: Stack,
) -> None:
    # The SMTP server refuses twice with a transient error: the dispatcher retries after an
    # exponential backoff (on the injected clock) until the server accepts.
    stack.smtp.fail_next.extend(["451 4.3.0 try again later"] * 2)
    response = await stack.post_event(stack.forestry, 35, "blocked")
    assert response.status_code == 202

    async def row(attempts: int) -> NotificationLog | None:
        async with stack.notifier.sessions() as session:
            query = select(NotificationLog).where(NotificationLog.attempts == attempts)
            return (await session.exec(query)).first()

    for attempts in (1, 2):
        await wait_for(partial(_pending_after, row, attempts), what=f"refusal {attempts}")
        failed = await row(attempts)
        assert failed is not None and failed.next_attempt_at is not None
        stack.clock.set(failed.next_attempt_at)
        stack.notifier.dispatcher.wake()
    await wait_for(lambda: _mail_count(stack, 1), what="the email after two refusals")
    assert stack.smtp.fail_next == []

    # The server has the mail before the dispatcher hears its 250 and records the row.
    async def recorded() -> bool:
        sent = await row(3)
        return sent is not None and sent.status == "sent"

    await wait_for(recorded, what="the third attempt recorded as sent")
    assert len(stack.smtp.mailbox(FORESTRY_MAIL)) == 1


async def _pending_after(
    row: Callable[[int], Awaitable[NotificationLog | None]], attempts: int
) -> bool:
    found = await row(attempts)
    return found is not None and found.status == "pending" and found.error_code is not None

"""No span carries a contact's address: a stall alert by SMS (not configured) then e-mail."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from notifier.store.models import NotificationLog
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind
from sqlmodel import select

from tests.harness import service_of, wait_for
from tests.stack import FORESTRY_MAIL, Stack

PHONE = "+8613800138000"
RAW_PHONE = "13800138000"


async def alert_with_fallback_and_retry(stack: Stack) -> None:
    """市林业局's first contact is a phone (no SMS provider here: refused, fall back), then its
    e-mail, which the server first refuses with a reply naming the address (retried)."""
    response = await stack.notifier_http.put(
        f"/v1/agencies/{stack.forestry_id}/contacts",
        json={
            "contacts": [
                {"channel": "sms", "address": RAW_PHONE, "label": "值班"},
                {"channel": "email", "address": FORESTRY_MAIL},
            ]
        },
        headers=await stack.auth(stack.office),
    )
    assert response.status_code == 200, response.text
    stack.smtp.fail_next.append(f"451 4.2.1 mailbox {FORESTRY_MAIL} busy, try later")
    posted = await stack.post_event(stack.forestry, 35, "blocked", note="用地审批未完成")
    assert posted.status_code == 202, posted.text

    async def email_refused_once() -> NotificationLog | None:
        async with stack.notifier.sessions() as session:
            query = select(NotificationLog).where(
                NotificationLog.channel == "email",
                NotificationLog.status == "pending",
                NotificationLog.attempts == 1,
            )
            return (await session.exec(query)).first()

    async def refused() -> bool:
        return await email_refused_once() is not None

    await wait_for(refused, what="the SMS refusal, the fallback and the e-mail refusal")
    row = await email_refused_once()
    assert row is not None and row.next_attempt_at is not None
    stack.clock.set(row.next_attempt_at)
    stack.notifier.dispatcher.wake()

    async def mailed() -> bool:
        return len(stack.smtp.mailbox(FORESTRY_MAIL)) == 1

    await wait_for(mailed, what="the e-mail after the retry")

    async def sends_ended() -> bool:
        names = [s.name for s in stack.spans.all()]
        return names.count("email send") == 2 and names.count("sms send") == 1

    await wait_for(sends_ended, what="the three send spans to end")


def _values(span: ReadableSpan) -> Iterator[tuple[str, Any]]:
    """Everything a span exports that could hold text."""
    yield "name", span.name
    for key, value in (span.attributes or {}).items():
        yield key, value
    for event in span.events:
        for key, value in (event.attributes or {}).items():
            yield f"event {event.name}: {key}", value
    for link in span.links:
        for key, value in (link.attributes or {}).items():
            yield f"link: {key}", value
    yield "status", span.status.description or ""


async def test_no_span_carries_a_contact_address(stack: Stack) -> None:
    await alert_with_fallback_and_retry(stack)
    spans = stack.spans.all()
    secrets = (FORESTRY_MAIL, "linye@", PHONE, RAW_PHONE, "138 0013 8000")
    leaks = [
        (service_of(s), s.name, key, value)
        for s in spans
        for key, value in _values(s)
        if any(secret in str(value) for secret in secrets)
    ]
    assert leaks == []

    # The sends are there, with the recipient masked (enough to tell two apart).
    sends = [s for s in spans if s.name.endswith(" send") and s.kind == SpanKind.CLIENT]
    recipients = {(s.name, (s.attributes or {}).get("duban.notification.recipient")) for s in sends}
    assert recipients == {
        ("sms send", "+86***8000"),
        ("email send", "li***@zhaoqing.example.cn"),
    }
    # Database spans exist for every service (SQL with placeholders, never the values), and
    # the contact table was written through them.
    db_spans = [s for s in spans if (s.attributes or {}).get("db.system")]
    assert {service_of(s) for s in db_spans} == {
        "duban-registry",
        "duban-progress",
        "duban-notifier",
    }
    assert any("contact" in str((s.attributes or {}).get("db.statement")) for s in db_spans)


async def test_failed_and_retried_messages_are_counted(stack: Stack) -> None:
    from tests.test_metrics import scrape, value

    await alert_with_fallback_and_retry(stack)

    # The dispatcher counts a sent message after it recorded it, which is after its span ended.
    async def sent_counted() -> bool:
        scraped = await scrape(stack.notifier_http)
        return value(scraped, "duban_notifications_total", outcome="sent") > 0

    await wait_for(sent_counted, what="the sent message to be counted")
    scraped = await scrape(stack.notifier_http)
    counted = {
        (channel, outcome): value(
            scraped,
            "duban_notifications_total",
            duban_notification_channel=channel,
            outcome=outcome,
        )
        for channel in ("sms", "email")
        for outcome in ("sent", "failed", "retried", "dropped")
    }
    assert {k: v for k, v in counted.items() if v} == {
        ("sms", "failed"): 1,  # no SMS provider here: given up, fallback to e-mail
        ("email", "retried"): 1,  # 451 once
        ("email", "sent"): 1,
    }
    # The sent delivery waited for the retry's backoff (domain time moved to it).
    assert value(scraped, "duban_notification_delivery_duration_seconds_sum") > 0

"""What an SMTP server's refusal means for a contact: the classification as a table, each reply
given by a real aiosmtpd server to the real mailer, and the dispatcher on PostgreSQL: a server's
own fault (`500 Error: (FileNotFoundError)`) is retried and never condemns the address, a
`550 5.1.1 user unknown` does and the agency's next contact is used."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from duban_shared.clock import ManualClock
from notifier.adapters.channels.base import ChannelError, ErrorCode, OutgoingMessage
from notifier.adapters.channels.email import EmailChannel
from notifier.adapters.mailer import (
    DeliveryError,
    SmtpMailer,
    Stage,
    Verdict,
    classify,
    enhanced_status,
)
from notifier.domain.contacts import ContactIn
from notifier.main import build
from notifier.service import NotifierService
from notifier.settings import NotifierSettings
from notifier.store.contacts import replace_contacts
from notifier.store.models import AgencyView, Contact, NotificationLog
from notifier.use_cases.dispatching import reference
from sqlmodel import col, select

from services.notifier.tests.integration.test_pipeline import (
    FORESTRY,
    MONDAY,
    NATURE,
    NATURE_MAIL,
    OFFICE,
    OFFICE_MAIL,
    POLICY,
    _handle,
    _opened,
)
from tests.harness import SmtpSink, Spans, free_port

BAD, LOGIN, RETRY = Verdict.BAD_RECIPIENT, Verdict.LOGIN_REFUSED, Verdict.RETRY
FIRST, SECOND = "linye.duty@zhaoqing.example.cn", "linye@zhaoqing.example.cn"

REPLIES = [
    # The mailbox itself: the contact is condemned.
    (Stage.RCPT, "550 5.1.1 <linye.duty@zhaoqing.example.cn>: user unknown", BAD),
    (Stage.RCPT, "550 5.1.2 bad destination system: no such domain", BAD),
    (Stage.RCPT, "553 5.1.3 bad destination mailbox address syntax", BAD),
    (Stage.RCPT, "550 5.1.10 recipient address has null MX", BAD),
    (Stage.RCPT, "550 5.1.6 mailbox has moved", BAD),
    (Stage.RCPT, "550 Requested action not taken: mailbox unavailable", BAD),
    (Stage.RCPT, "551 User not local; please try <other@example.cn>", BAD),
    (Stage.RCPT, "553 Requested action not taken: mailbox name not allowed", BAD),
    (Stage.DATA, "550 5.1.1 recipient rejected after DATA: no such user", BAD),
    # The provider's own fault or policy: retried, the contact stays.
    (Stage.DATA, "500 Error: (FileNotFoundError)", RETRY),
    (Stage.DATA, "554 Transaction failed", RETRY),
    (Stage.DATA, "552 5.3.4 message too big for system", RETRY),
    (Stage.DATA, "554 5.7.1 message rejected as spam", RETRY),
    (Stage.DATA, "550 Error: queue file write error", RETRY),
    (Stage.RCPT, "550 5.7.1 relaying denied", RETRY),
    (Stage.RCPT, "554 5.7.1 <linye@zhaoqing.example.cn>: access denied by policy", RETRY),
    (Stage.RCPT, "552 5.2.2 mailbox full", RETRY),
    (Stage.RCPT, "553 5.3.0 system not accepting network messages", RETRY),
    (Stage.RCPT, "554 Transaction failed", RETRY),
    (Stage.RCPT, "500 Error: (FileNotFoundError)", RETRY),
    (Stage.MAIL, "553 5.1.8 sender domain does not exist", RETRY),
    (Stage.MAIL, "550 5.1.7 bad sender mailbox syntax", RETRY),
    # Try again later: retried whatever the text says.
    (Stage.RCPT, "450 4.1.1 mailbox temporarily unavailable", RETRY),
    (Stage.RCPT, "451 4.3.0 try again later", RETRY),
    (Stage.DATA, "421 4.3.2 service shutting down", RETRY),
    (Stage.DATA, "452 4.3.1 insufficient system storage", RETRY),
    # A refused login is the operator's.
    (Stage.AUTH, "535 5.7.8 authentication credentials invalid", LOGIN),
    (Stage.AUTH, "534 5.7.9 authentication mechanism too weak", LOGIN),
]


@pytest.mark.parametrize(("stage", "reply", "verdict"), REPLIES)
def test_each_reply_has_one_verdict(stage: Stage, reply: str, verdict: Verdict) -> None:
    code, _, text = reply.partition(" ")
    assert classify(stage, int(code), text) is verdict


def test_the_enhanced_status_is_read_only_at_the_start_of_the_text() -> None:
    assert enhanced_status("5.1.10 null MX") == (5, 1, 10)
    assert enhanced_status("Error: (FileNotFoundError)") is None
    assert enhanced_status("mailbox 5.1.1 unknown") is None


# ---------------------------------------------------------------- a real server, each reply


def _settings(port: int, **more: Any) -> NotifierSettings:
    return NotifierSettings.model_validate(
        {"smtp_port": port, "smtp_timeout_seconds": 5, "environment": "test", **more}
    )


def _message(to: str) -> OutgoingMessage:
    return OutgoingMessage(recipient=to, subject="主题", text="正文", reference="r1")


SERVER_REPLIES = [(s, r, v) for s, r, v in REPLIES if s in (Stage.RCPT, Stage.DATA)]


@pytest.mark.parametrize(("stage", "reply", "verdict"), SERVER_REPLIES)
async def test_the_mailer_classifies_what_a_real_server_answers(
    smtp: SmtpSink, stage: Stage, reply: str, verdict: Verdict
) -> None:
    smtp.refuse(stage.value.upper(), reply, address=FIRST)
    channel = EmailChannel(SmtpMailer(_settings(smtp.port)))
    with pytest.raises(ChannelError) as refused:
        await channel.send(_message(FIRST))
    assert smtp.replies == [(stage.value.upper(), reply)]
    cause = refused.value.__cause__
    assert isinstance(cause, DeliveryError)
    assert (cause.stage, cause.code, cause.verdict) == (stage, int(reply[:3]), verdict)
    expected = ErrorCode.INVALID_RECIPIENT if verdict is BAD else ErrorCode.PROVIDER_UNAVAILABLE
    assert refused.value.code is expected
    assert refused.value.permanent is (verdict is BAD)
    assert refused.value.provider_code is not None
    assert refused.value.provider_code.startswith(f"{stage.value.upper()} {reply[:3]}")
    # The refusal was for that mailbox only, and used up: the next send goes through.
    await channel.send(_message(FIRST))
    assert len(smtp.mailbox(FIRST)) == 1


def _refuse_login(*_: Any) -> AuthResult:
    return AuthResult(success=False, handled=False)


@pytest.fixture
def locked_smtp() -> Iterator[SmtpSink]:
    """An SMTP server that refuses every login (535 5.7.8)."""
    sink = SmtpSink(port=free_port())
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=sink.port,
        authenticator=_refuse_login,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    yield sink
    controller.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_a_refused_login_is_retried_and_said_once(
    locked_smtp: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(locked_smtp.port, smtp_username="duban", smtp_password="wrong")
    channel = EmailChannel(SmtpMailer(settings))
    errors = []
    with caplog.at_level(logging.INFO, logger="notifier.adapters.channels.email"):
        for _ in range(3):
            with pytest.raises(ChannelError) as refused:
                await channel.send(_message(FIRST))
            errors.append(refused.value)
    assert {(e.code, e.permanent, e.provider_code) for e in errors} == {
        (ErrorCode.LOGIN_REFUSED, False, "AUTH 535 5.7.8")
    }
    said = [r for r in caplog.records if r.name == "notifier.adapters.channels.email"]
    assert [(r.levelno, "DUBAN_NOTIFIER_SMTP_PASSWORD" in r.getMessage()) for r in said] == [
        (logging.ERROR, True)
    ]
    assert locked_smtp.messages == []


async def test_an_unreachable_server_is_retried() -> None:
    channel = EmailChannel(SmtpMailer(_settings(free_port())))
    with pytest.raises(ChannelError) as refused:
        await channel.send(_message(FIRST))
    assert (refused.value.code, refused.value.permanent) == (ErrorCode.PROVIDER_UNAVAILABLE, False)


# ---------------------------------------------------------------- through the dispatcher


@pytest.fixture
async def notifier(
    make_database: Callable[[str], str], smtp: SmtpSink, spans: Spans, tmp_path: Path
) -> AsyncIterator[NotifierService]:
    """The notifier with 市林业局 reachable at two addresses, FIRST then SECOND."""
    policies = tmp_path / "escalation"
    policies.mkdir()
    (policies / "default.yaml").write_text(POLICY, encoding="utf-8")
    settings = _settings(
        smtp.port,
        database_url=make_database("notifier"),
        run_loops=False,
        escalation_dir=policies,
        retry_base_seconds=60,
        max_attempts=3,
    )
    service = build(settings, clock=ManualClock(MONDAY), tracer_provider=spans.provider("n"))
    now = service.clock.now()
    async with service.sessions() as session, session.begin():
        for agency, mails in (
            (FORESTRY, [FIRST, SECOND]),
            (NATURE, [NATURE_MAIL]),
            (OFFICE, [OFFICE_MAIL]),
        ):
            session.add(
                AgencyView(id=agency.agency_id, name=agency.name, kind="bureau", snapshot_at=now)
            )
            await replace_contacts(
                session, agency.agency_id, [ContactIn("email", m) for m in mails], now
            )
    yield service
    await service.close()


async def _forestry(service: NotifierService) -> tuple[list[NotificationLog], dict[str, Contact]]:
    async with service.sessions() as session:
        rows = await session.exec(
            select(NotificationLog)
            .where(NotificationLog.agency_id == FORESTRY.agency_id)
            .order_by(col(NotificationLog.id))
        )
        mine = Contact.agency_id == FORESTRY.agency_id
        contacts = await session.exec(select(Contact).where(mine))
        return list(rows.all()), {c.address: c for c in contacts.all()}


async def _retry_due(service: NotifierService) -> None:
    rows, _ = await _forestry(service)
    [due] = [r.next_attempt_at for r in rows if r.status == "pending"]
    assert due is not None
    clock = service.clock
    assert isinstance(clock, ManualClock)
    clock.set(due)
    await service.dispatcher.dispatch_once()


async def test_a_server_fault_at_data_is_retried_and_the_contact_stays_active(
    notifier: NotifierService, smtp: SmtpSink
) -> None:
    smtp.refuse("DATA", "500 Error: (FileNotFoundError)", address=FIRST, times=None)
    await _handle(notifier, _opened())
    await notifier.dispatcher.dispatch_once()
    rows, contacts = await _forestry(notifier)
    assert [(r.recipient, r.status, r.attempts, r.error_code) for r in rows] == [
        (FIRST, "pending", 1, "provider_unavailable")
    ]
    assert contacts[FIRST].status == "active"

    await _retry_due(notifier)  # still broken: a second attempt, later again
    smtp.recover()
    await _retry_due(notifier)
    rows, contacts = await _forestry(notifier)
    assert [(r.recipient, r.status, r.attempts) for r in rows] == [(FIRST, "sent", 3)]
    assert (contacts[FIRST].status, contacts[FIRST].failed_reason) == ("active", None)
    [mail] = smtp.mailbox(FIRST)
    assert "加强林业数字化应用" in mail["Subject"]
    assert smtp.replies == [("DATA", "500 Error: (FileNotFoundError)")] * 2


async def test_a_server_fault_that_outlasts_the_retries_moves_on_without_failing_the_contact(
    notifier: NotifierService, smtp: SmtpSink
) -> None:
    smtp.refuse("DATA", "500 Error: (FileNotFoundError)", address=FIRST, times=None)
    await _handle(notifier, _opened())
    await notifier.dispatcher.dispatch_once()
    await _retry_due(notifier)
    await _retry_due(notifier)  # the third and last attempt: the next contact at once
    rows, contacts = await _forestry(notifier)
    assert [(r.recipient, r.status, r.attempts) for r in rows] == [
        (FIRST, "failed", 3),
        (SECOND, "sent", 1),
    ]
    assert {a: c.status for a, c in contacts.items()} == {FIRST: "active", SECOND: "active"}
    assert len(smtp.mailbox(SECOND)) == 1

    # The next alert still starts with the first contact.
    smtp.recover()
    await _handle(notifier, _opened(36))
    await notifier.dispatcher.dispatch_once()
    assert len(smtp.mailbox(FIRST)) == 1


async def test_an_unknown_mailbox_fails_the_contact_and_the_next_one_is_used(
    notifier: NotifierService, smtp: SmtpSink
) -> None:
    smtp.refuse("RCPT", f"550 5.1.1 <{FIRST}>: user unknown", address=FIRST, times=None)
    await _handle(notifier, _opened())
    await notifier.dispatcher.dispatch_once()
    rows, contacts = await _forestry(notifier)
    assert [(r.recipient, r.status, r.attempts, r.error_code) for r in rows] == [
        (FIRST, "failed", 1, "invalid_recipient"),
        (SECOND, "sent", 1, None),
    ]
    assert contacts[FIRST].status == "failed"
    assert (contacts[FIRST].failed_reason or "").startswith("invalid_recipient: ")
    assert contacts[SECOND].status == "active"
    assert smtp.mailbox(FIRST) == [] and len(smtp.mailbox(SECOND)) == 1

    # The next alert goes to the second contact straight away.
    await _handle(notifier, _opened(36))
    await notifier.dispatcher.dispatch_once()
    assert len(smtp.mailbox(SECOND)) == 2
    assert smtp.replies == [("RCPT", f"550 5.1.1 <{FIRST}>: user unknown")]


async def test_failed_and_retried_deliveries_are_counted_by_error_code(
    notifier: NotifierService, smtp: SmtpSink
) -> None:
    from tests.test_metrics import parse, value

    smtp.refuse("DATA", "451 4.3.0 try again later", address=FIRST)
    smtp.refuse("RCPT", "550 5.1.1 user unknown", address=NATURE_MAIL)
    await _handle(notifier, _opened())
    await notifier.dispatcher.dispatch_once()
    await _retry_due(notifier)
    scraped = parse((await notifier.metrics.exposition()).decode())

    def count(outcome: str, **labels: str) -> float:
        return value(scraped, "duban_notifications_total", outcome=outcome, **labels)

    assert count("retried", error_type="provider_unavailable") == 1  # 451 once
    assert count("failed", error_type="invalid_recipient") == 1  # 市自然资源局's only contact
    assert (count("retried"), count("failed"), count("sent")) == (1, 1, 1)


async def test_a_delivery_sent_again_is_the_same_message(smtp: SmtpSink) -> None:
    """A process killed after the server accepted a message and before it recorded it as sent
    sends it again once the send's lease ends: the same Message-ID (made from the delivery's
    reference), so the recipient's mail system shows it once; another delivery gets another."""
    channel = EmailChannel(SmtpMailer(_settings(smtp.port)))
    first = await channel.send(_message(FIRST))
    again = await channel.send(_message(FIRST))
    other = await channel.send(
        OutgoingMessage(recipient=FIRST, subject="主题", text="正文", reference="r2")
    )
    ids = [str(m["Message-ID"]) for m in smtp.mailbox(FIRST)]
    assert ids == ["<r1@duban.local>", "<r1@duban.local>", "<r2@duban.local>"]
    assert first.provider_id == again.provider_id == "<r1@duban.local>"
    assert other.provider_id == "<r2@duban.local>"


def test_a_message_reference_is_made_from_its_rows() -> None:
    """The same deliveries give the same reference whatever their order and row ids (a row
    planned again after a restore); other deliveries another one."""
    event = uuid.UUID(int=7)
    one, two, three = (
        NotificationLog(id=i, transition_event_id=event, channel="email", recipient=f"{i}@x.cn")
        for i in (1, 2, 3)
    )
    again = NotificationLog(id=9, transition_event_id=event, channel="email", recipient="1@x.cn")
    assert reference([one, two]) == reference([two, one]) == reference([two, again])
    assert reference([one, two]) != reference([one, three])
    assert len(reference([one])) == 32

"""Email over SMTP with aiosmtplib, and the one classification of what the server answered.

An SMTP reply says who is at fault, and only one kind of reply condemns the address we wrote
to: the server refusing that mailbox (enhanced status 5.1.x about the destination, RFC 3463;
or a bare 550/551/553 to RCPT TO). Everything else the server refuses is its own trouble or
ours, and the same address may work later:

- `BAD_RECIPIENT`: enhanced status 5.1.0-5.1.4, 5.1.6 or 5.1.10 answering RCPT TO or DATA, or a
  bare 550/551/553 answering RCPT TO. The contact is marked `failed`; the next contact at once.
- `LOGIN_REFUSED`: AUTH refused (535, 534, 530...). An operator fixes the login; the message is
  retried with backoff meanwhile and the contact stays active.
- `RETRY`: every 4xx; a 5xx answering the greeting, EHLO or MAIL FROM; a 5xx answering DATA
  without a 5.1.x status (the `500 Error: (...)` of a crashed server handler, 552, 554); 5.7.x
  (policy), 5.3.x (system), 5.2.x (mailbox full) at any stage; lost connections, timeouts, TLS
  failures. Retried with backoff, then the next contact; the contact stays active.

A 550 to RCPT with an enhanced status other than 5.1.x (`550 5.7.1 relaying denied`) is about
policy, not the mailbox, and is retried.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from enum import StrEnum

import aiosmtplib

from notifier.settings import NotifierSettings


class Stage(StrEnum):
    """The step of an SMTP session a reply answered."""

    CONNECT = "connect"
    HELLO = "ehlo"
    AUTH = "auth"
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"


class Verdict(StrEnum):
    """What a refusal means for the contact (see the module docstring's table)."""

    BAD_RECIPIENT = "bad_recipient"
    LOGIN_REFUSED = "login_refused"
    RETRY = "retry"


_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
# Enhanced status subjects X.1.y about the destination (RFC 3463, RFC 7505); 5.1.7 and 5.1.8
# are about the sender, 5.1.5 and 5.1.9 not about the mailbox at all.
_RECIPIENT_DETAILS = frozenset({0, 1, 2, 3, 4, 6, 10})
_BARE_RECIPIENT_CODES = frozenset({550, 551, 553})


def enhanced_status(text: str) -> tuple[int, int, int] | None:
    """The enhanced status code (`5.1.1`) a reply's text starts with, if any."""
    found = _ENHANCED.match(text)
    if found is None:
        return None
    klass, subject, detail = (int(g) for g in found.groups())
    return klass, subject, detail


def classify(stage: Stage, code: int, text: str) -> Verdict:
    """Decide what an SMTP refusal (`code` and its text, at `stage`) means for the contact.

    1. A refused login is an operator's problem, whatever the code.
    2. Only a permanent (5xx) reply can condemn an address, and only at RCPT or DATA (one
       recipient per message, so a DATA refusal about a mailbox is about ours).
    3. With an enhanced status, its subject decides: 5.1.x about the destination condemns it;
       any other (5.7.x policy, 5.3.x system, 5.2.x mailbox full...) does not.
    4. Without one, a 550/551/553 to RCPT TO is the classic "no such user".
    5. Everything else is retried.
    """
    if stage is Stage.AUTH:
        return Verdict.LOGIN_REFUSED
    if not 500 <= code < 600 or stage not in (Stage.RCPT, Stage.DATA):
        return Verdict.RETRY
    enhanced = enhanced_status(text)
    if enhanced is not None:
        klass, subject, detail = enhanced
        if klass == 5 and subject == 1 and detail in _RECIPIENT_DETAILS:
            return Verdict.BAD_RECIPIENT
        return Verdict.RETRY
    if stage is Stage.RCPT and code in _BARE_RECIPIENT_CODES:
        return Verdict.BAD_RECIPIENT
    return Verdict.RETRY


class DeliveryError(Exception):
    """A failed send with its verdict; `stage`, `code` and `text` when the server answered."""

    def __init__(
        self,
        message: str,
        *,
        verdict: Verdict,
        stage: Stage | None = None,
        code: int | None = None,
        text: str = "",
        timeout: bool = False,
    ) -> None:
        super().__init__(message)
        self.verdict = verdict
        self.stage = stage
        self.code = code
        self.text = text
        self.timeout = timeout

    @property
    def reply(self) -> str | None:
        """The refusal in short (`RCPT 550 5.1.1`), for the notification log's provider code."""
        if self.stage is None or self.code is None:
            return None
        enhanced = enhanced_status(self.text)
        extra = f" {'.'.join(map(str, enhanced))}" if enhanced else ""
        return f"{self.stage.value.upper()} {self.code}{extra}"


def refusal(exc: aiosmtplib.SMTPException) -> DeliveryError:
    """Turn what aiosmtplib raised into a classified DeliveryError."""
    stage: Stage | None = None
    code: int | None = None
    text = str(exc)
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        # One recipient per message: its refusal is the answer.
        first = exc.recipients[0]
        stage, code, text = Stage.RCPT, first.code, first.message
    elif isinstance(exc, aiosmtplib.SMTPResponseException):
        code, text = exc.code, exc.message
        if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
            stage = Stage.RCPT
        elif isinstance(exc, aiosmtplib.SMTPSenderRefused):
            stage = Stage.MAIL
        elif isinstance(exc, aiosmtplib.SMTPDataError):
            stage = Stage.DATA
        elif isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            stage = Stage.AUTH
        elif isinstance(exc, aiosmtplib.SMTPHeloError):
            stage = Stage.HELLO
        else:
            stage = Stage.CONNECT
    if stage is None or code is None:
        return DeliveryError(
            f"SMTP unavailable: {exc}",
            verdict=Verdict.RETRY,
            timeout=isinstance(exc, aiosmtplib.SMTPTimeoutError),
        )
    return DeliveryError(
        f"SMTP server answered {code} to {stage.value.upper()}: {text}".rstrip(": "),
        verdict=classify(stage, code, text),
        stage=stage,
        code=code,
        text=text,
    )


@dataclass(frozen=True)
class Attachment:
    """A file attached to a message."""

    name: str
    content: bytes
    media_type: str


MESSAGE_ID_DOMAIN = "duban.local"
"""The right side of our Message-IDs."""


class SmtpMailer:
    """Sends one message per call through the configured SMTP server."""

    def __init__(self, settings: NotifierSettings) -> None:
        self._s = settings

    async def send(
        self,
        to: str,
        subject: str,
        body: str,
        *,
        reference: str | None = None,
        attachments: Sequence[Attachment] = (),
    ) -> str:
        """Send a plain-text email (with files attached, if any); return its Message-ID or
        raise a classified DeliveryError.

        With a `reference` (our id of the delivery) the Message-ID is made from it, so a message
        sent again for the same delivery (a process killed after the server accepted it and
        before it was recorded as sent) is the same message to the recipient's mail system,
        which shows it once."""
        msg = EmailMessage()
        msg["From"] = self._s.mail_from
        msg["To"] = to
        msg["Subject"] = subject
        msg["Message-ID"] = (
            f"<{reference}@{MESSAGE_ID_DOMAIN}>"
            if reference
            else make_msgid(domain=MESSAGE_ID_DOMAIN)
        )
        msg.set_content(body)
        for attachment in attachments:
            maintype, subtype = attachment.media_type.split("/", 1)
            msg.add_attachment(
                attachment.content, maintype=maintype, subtype=subtype, filename=attachment.name
            )
        try:
            await aiosmtplib.send(
                msg,
                hostname=self._s.smtp_host,
                port=self._s.smtp_port,
                username=self._s.smtp_username,
                password=self._s.smtp_password,
                start_tls=self._s.smtp_start_tls,
                use_tls=self._s.smtp_use_tls,
                cert_bundle=str(self._s.smtp_ca_file) if self._s.smtp_ca_file else None,
                timeout=self._s.smtp_timeout_seconds,
            )
        except aiosmtplib.SMTPException as exc:
            raise refusal(exc) from exc
        except TimeoutError as exc:
            raise DeliveryError(
                f"SMTP unavailable: {exc!r}", verdict=Verdict.RETRY, timeout=True
            ) from exc
        except OSError as exc:  # refused connection, TLS certificate, DNS
            raise DeliveryError(f"SMTP unavailable: {exc}", verdict=Verdict.RETRY) from exc
        return str(msg["Message-ID"])

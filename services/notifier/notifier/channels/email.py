"""Email as a channel: the SMTP mailer behind the Channel protocol."""

from __future__ import annotations

from notifier.channels.base import ChannelError, ErrorCode, OutgoingMessage, Receipt
from notifier.mailer import DeliveryError, SmtpMailer

NAME = "email"


class EmailChannel:
    """Sends plain-text email through the configured SMTP server (aiosmtplib)."""

    def __init__(self, mailer: SmtpMailer) -> None:
        self._mailer = mailer

    @property
    def name(self) -> str:
        """The channel's name in contacts and the log."""
        return NAME

    async def send(self, msg: OutgoingMessage) -> Receipt:
        """Hand the message to the SMTP server; a 5xx refusal is permanent, the rest transient."""
        try:
            message_id = await self._mailer.send(msg.recipient, msg.subject, msg.text)
        except DeliveryError as exc:
            code = ErrorCode.INVALID_RECIPIENT if exc.permanent else ErrorCode.PROVIDER_UNAVAILABLE
            raise ChannelError(str(exc), code=code, channel=NAME) from exc
        return Receipt(channel=NAME, recipient=msg.recipient, provider_id=message_id)

    async def aclose(self) -> None:
        """Nothing to release: every send opens its own SMTP connection."""

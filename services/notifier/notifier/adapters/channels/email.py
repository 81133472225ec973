"""Email as a channel: the SMTP mailer behind the Channel protocol.

The mailer's verdict decides the error code (see `notifier.adapters.mailer` for which replies
mean what): only a refused mailbox is `invalid_recipient`, the one code that marks a contact
failed.
"""

from __future__ import annotations

import logging

from notifier.adapters.channels.base import ChannelError, ErrorCode, OutgoingMessage, Receipt
from notifier.adapters.mailer import DeliveryError, SmtpMailer, Verdict

NAME = "email"
log = logging.getLogger(__name__)


def error_code(error: DeliveryError) -> ErrorCode:
    """The channel error code of a classified SMTP failure."""
    if error.verdict is Verdict.BAD_RECIPIENT:
        return ErrorCode.INVALID_RECIPIENT
    if error.verdict is Verdict.LOGIN_REFUSED:
        return ErrorCode.LOGIN_REFUSED
    return ErrorCode.TIMEOUT if error.timeout else ErrorCode.PROVIDER_UNAVAILABLE


class EmailChannel:
    """Sends plain-text email through the configured SMTP server (aiosmtplib)."""

    def __init__(self, mailer: SmtpMailer) -> None:
        self._mailer = mailer
        self._login_refused = False  # said once, until a login works again

    @property
    def name(self) -> str:
        """The channel's name in contacts and the log."""
        return NAME

    async def send(self, msg: OutgoingMessage) -> Receipt:
        """Hand the message to the SMTP server; raise ChannelError with the reply's verdict."""
        try:
            message_id = await self._mailer.send(
                msg.recipient, msg.subject, msg.text, reference=msg.reference
            )
        except DeliveryError as exc:
            code = error_code(exc)
            if code is ErrorCode.LOGIN_REFUSED and not self._login_refused:
                self._login_refused = True
                log.error(
                    "the SMTP server refused our login (%s): check DUBAN_NOTIFIER_SMTP_USERNAME "
                    "and DUBAN_NOTIFIER_SMTP_PASSWORD; emails wait and are retried meanwhile, "
                    "no contact is marked failed",
                    exc,
                    extra={"channel": NAME, "error_code": code.value},
                )
            raise ChannelError(str(exc), code=code, channel=NAME, provider_code=exc.reply) from exc
        if self._login_refused:
            self._login_refused = False
            log.info("the SMTP server accepts our login again", extra={"channel": NAME})
        return Receipt(channel=NAME, recipient=msg.recipient, provider_id=message_id)

    async def aclose(self) -> None:
        """Nothing to release: every send opens its own SMTP connection."""

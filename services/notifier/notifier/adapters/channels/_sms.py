"""Steps every SMS channel takes before it calls its provider."""

from __future__ import annotations

from notifier.adapters.channels.base import ChannelError, ErrorCode, OutgoingMessage
from notifier.domain.phone import InvalidPhoneNumber, normalize_phone
from notifier.domain.sms_segments import truncate_to_segments


def recipient_e164(msg: OutgoingMessage, region: str, channel: str) -> str:
    """The recipient in E.164; a bad number is refused here, before a provider bills it."""
    try:
        return normalize_phone(msg.recipient, region)
    except InvalidPhoneNumber as exc:
        raise ChannelError(
            str(exc), code=ErrorCode.INVALID_RECIPIENT, channel=channel, provider_code=None
        ) from exc


def template_text(msg: OutgoingMessage, max_segments: int) -> str:
    """The message text for a template variable, cut to the configured number of parts."""
    return truncate_to_segments(msg.text, max_segments)

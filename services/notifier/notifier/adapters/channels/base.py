"""What every delivery channel promises, so the consumer can treat SMS and WeCom alike.

The dispatcher's retry model decides the shape of the errors: a transient failure keeps the
notification row pending and sends it again after a backoff (after the last attempt the next
contact gets the message); a permanent one about the address marks the contact `failed` for an
operator to see. So each failure carries exactly one stable `code`, and the code alone decides
whether a retry can help: an operator reading the log and the dispatcher deciding what to do
can never disagree.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class ErrorCode(StrEnum):
    """Stable names of delivery failures (kept in the notification log and in metrics)."""

    # Permanent: sending the same message again cannot succeed without a human fixing something.
    INVALID_RECIPIENT = "invalid_recipient"
    AUTH_FAILED = "auth_failed"
    TEMPLATE_REJECTED = "template_rejected"  # template or sign name missing or not approved
    CONTENT_REJECTED = "content_rejected"
    INVALID_REQUEST = "invalid_request"
    PROVIDER_REJECTED = "provider_rejected"  # a refusal we do not know: let a person look
    # Transient: the same message may go through later.
    LOGIN_REFUSED = "login_refused"  # the SMTP server refused our login: an operator fixes it
    RATE_LIMITED = "rate_limited"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    TIMEOUT = "timeout"
    UNEXPECTED_RESPONSE = "unexpected_response"  # outcome unknown; resending is the safe side

    @property
    def permanent(self) -> bool:
        """Whether no retry can help (see the module docstring for why codes decide this)."""
        return self not in _TRANSIENT


_TRANSIENT = frozenset(
    {
        ErrorCode.LOGIN_REFUSED,
        ErrorCode.RATE_LIMITED,
        ErrorCode.PROVIDER_UNAVAILABLE,
        ErrorCode.TIMEOUT,
        ErrorCode.UNEXPECTED_RESPONSE,
    }
)


MAX_MESSAGE = 500  # providers put whole error pages into messages; the log keeps 1000


class ChannelError(Exception):
    """A failed send, classified so the caller knows whether to retry.

    `provider_code` keeps the provider's own words (e.g. `isv.MOBILE_NUMBER_ILLEGAL`) for the
    operator; `retry_after` is set only when the provider said how long to wait.
    """

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode,
        channel: str,
        provider_code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        message = message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…"
        super().__init__(message)
        self.message = message
        self.code = code
        self.channel = channel
        self.provider_code = provider_code
        self.retry_after = retry_after

    @property
    def permanent(self) -> bool:
        """True when retrying the same message cannot help."""
        return self.code.permanent

    def __str__(self) -> str:
        provider = f" [{self.provider_code}]" if self.provider_code else ""
        return f"{self.channel}: {self.code.value}{provider}: {self.message}"


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One message to one recipient, in terms every channel understands.

    `recipient` is what the channel addresses: a phone number in any usual writing for SMS, a
    configured robot name for WeCom. `reference` is our id for this delivery (the notification
    row): providers that echo a caller's id get it, so a delivery report can be matched and a
    gateway can drop a duplicate. Template-based SMS providers cannot send free text; they fill
    an approved template, from `template_params` when given, else from `text`.
    """

    recipient: str
    subject: str
    text: str
    reference: str
    template_params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the provider answered when it accepted a message (accepted, not yet delivered)."""

    channel: str
    recipient: str  # the address as sent, e.g. the E.164 number
    provider_id: str | None = None  # Aliyun BizId, Tencent SerialNo, the gateway's message id
    request_id: str | None = None  # the provider's request id, for its support desk
    segments: int | None = None  # SMS parts billed, when the provider says (or we know)


class Channel(Protocol):
    """A way to reach someone: send one message, or raise ChannelError."""

    @property
    def name(self) -> str:
        """Short channel name for the notification log (at most 16 characters)."""
        ...

    async def send(self, msg: OutgoingMessage) -> Receipt:
        """Hand the message to the provider; raise ChannelError when it was not accepted."""
        ...

    async def aclose(self) -> None:
        """Release connections the channel holds."""
        ...


@asynccontextmanager
async def deadline(seconds: float, channel: str) -> AsyncIterator[None]:
    """Bound a whole send, whatever the SDK's own timeouts do (some only bound each read).

    A provider that trickles bytes would otherwise hold a consumer batch far past its
    configured timeout; the overrun is reported as a transient `timeout`.
    """
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError as exc:
        raise ChannelError(
            f"no answer within {seconds:g} s", code=ErrorCode.TIMEOUT, channel=channel
        ) from exc

"""WeCom (企业微信) group robots: a markdown message into an agency's work group.

A robot answers HTTP 200 with `{"errcode": 0, "errmsg": "ok"}`, or a non-zero errcode: 45009
when the robot's limit (20 messages a minute) is hit, 93000 for a webhook key that is wrong
or was removed, 40008/40058/44004 for a malformed message. Markdown content may be at most
4096 bytes of UTF-8; longer text is cut on a character boundary, never mid-character.
"""

from __future__ import annotations

import httpx
from duban_shared.clock import Clock

from notifier.adapters.channels.base import ChannelError, ErrorCode, OutgoingMessage, Receipt
from notifier.adapters.channels.http import HttpChannel, json_object
from notifier.settings import WeComSettings

NAME = "wecom"
MARKDOWN_MAX_BYTES = 4096
ELLIPSIS = "…"

ERRCODES: dict[int, ErrorCode] = {
    -1: ErrorCode.PROVIDER_UNAVAILABLE,  # "system busy"
    45009: ErrorCode.RATE_LIMITED,  # api freq out of limit
    93000: ErrorCode.INVALID_RECIPIENT,  # invalid webhook url: the key is wrong or revoked
    40008: ErrorCode.INVALID_REQUEST,  # invalid message type
    40058: ErrorCode.INVALID_REQUEST,  # a parameter is missing or invalid
    44004: ErrorCode.INVALID_REQUEST,  # empty content
    45002: ErrorCode.CONTENT_REJECTED,  # content too long
}


def classify(errcode: int) -> ErrorCode:
    """Our error code for a robot's non-zero errcode (unknown ones need a person)."""
    return ERRCODES.get(errcode, ErrorCode.PROVIDER_REJECTED)


def fit_utf8(text: str, max_bytes: int = MARKDOWN_MAX_BYTES) -> str:
    """Cut `text` to at most `max_bytes` of UTF-8, ending with an ellipsis when cut."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    room = max_bytes - len(ELLIPSIS.encode("utf-8"))
    # errors="ignore" drops the bytes of a character the cut went through.
    return data[:room].decode("utf-8", errors="ignore") + ELLIPSIS


def markdown(msg: OutgoingMessage) -> str:
    """The subject in bold above the text, within the robot's size limit."""
    return fit_utf8(f"**{msg.subject}**\n{msg.text}" if msg.subject else msg.text)


class WeComRobotChannel(HttpChannel):
    """Posts to the group robot named by the message's recipient."""

    name = NAME

    def __init__(
        self,
        settings: WeComSettings,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
    ) -> None:
        """`client` lets the caller share or instrument one; otherwise the channel owns one."""
        super().__init__(
            settings.timeout_seconds, settings.connect_timeout_seconds, client=client, clock=clock
        )
        self._s = settings

    async def send(self, msg: OutgoingMessage) -> Receipt:
        """Post the message as markdown; `msg.recipient` is a robot name from the settings."""
        key = self._s.robots.get(msg.recipient)
        if key is None:
            raise ChannelError(
                f"no robot named {msg.recipient!r} is configured",
                code=ErrorCode.INVALID_RECIPIENT,
                channel=NAME,
            )
        payload = {"msgtype": "markdown", "markdown": {"content": markdown(msg)}}
        response = await self._post(
            self._s.webhook_url, params={"key": key.get_secret_value()}, json=payload
        )
        if not response.is_success:
            raise self._refused(
                response,
                f"HTTP {response.status_code} {response.reason_phrase}",
                str(response.status_code),
            )
        body = json_object(response)
        errcode = body.get("errcode")
        if not isinstance(errcode, int):
            raise ChannelError(
                f"answer without errcode (HTTP {response.status_code})",
                code=ErrorCode.UNEXPECTED_RESPONSE,
                channel=NAME,
            )
        if errcode != 0:
            raise ChannelError(
                str(body.get("errmsg", "")),
                code=classify(errcode),
                channel=NAME,
                provider_code=str(errcode),
            )
        return Receipt(channel=NAME, recipient=msg.recipient)

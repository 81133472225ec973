"""What the channels that speak HTTP themselves share (the SMS gateway, WeCom robots): one client
policy, one bounded POST, one reading of HTTP failures.

`HttpChannel` is their base: it owns (or borrows) the httpx client, posts within the channel's
deadline, turns a request that got no answer into a transient ChannelError, and a non-2xx
answer into the ChannelError its status means (Retry-After honoured). A subclass builds the
request and reads its provider's answer. The SDK-based channels (Aliyun, Tencent) use
`transport_error` only: their SDKs make the requests.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from duban_shared.clock import Clock, SystemClock

from notifier.adapters.channels.base import ChannelError, ErrorCode, deadline


def make_client(timeout_seconds: float, connect_timeout_seconds: float) -> httpx.AsyncClient:
    """An httpx client with the channel's timeouts; redirects are not followed.

    A webhook or gateway that redirects a POST is misconfigured, and following it would carry
    the bearer token or the robot key to wherever it points.
    """
    return httpx.AsyncClient(
        timeout=httpx.Timeout(
            timeout_seconds, connect=min(timeout_seconds, connect_timeout_seconds)
        ),
        follow_redirects=False,
    )


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Read a Retry-After header: delay seconds or an HTTP date (RFC 9110 section 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT, even when written without a zone
        return None
    return max(0.0, (when - now).total_seconds())


def transport_error(exc: httpx.TransportError, channel: str) -> ChannelError:
    """A request that got no HTTP answer: transient, whatever went wrong on the way.

    The message names the exception type only: httpx messages may carry the URL, and a
    webhook URL is a credential.
    """
    if isinstance(exc, httpx.TimeoutException):
        return ChannelError(
            f"no answer in time ({type(exc).__name__})", code=ErrorCode.TIMEOUT, channel=channel
        )
    return ChannelError(
        f"cannot reach the provider ({type(exc).__name__})",
        code=ErrorCode.PROVIDER_UNAVAILABLE,
        channel=channel,
    )


def classify_status(status: int) -> ErrorCode:
    """Our error code for an HTTP status that is not 2xx."""
    if status in (401, 403):
        return ErrorCode.AUTH_FAILED
    if status == 408:
        return ErrorCode.TIMEOUT
    if status == 429:
        return ErrorCode.RATE_LIMITED
    if status >= 500:
        return ErrorCode.PROVIDER_UNAVAILABLE
    return ErrorCode.INVALID_REQUEST  # other 4xx, and 3xx: the URL or the request is wrong


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object, or {} when it is not one (an HTML error page, say)."""
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


class HttpChannel:
    """Base of the channels that POST to their provider with httpx."""

    name: str

    def __init__(
        self,
        timeout_seconds: float,
        connect_timeout_seconds: float,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
    ) -> None:
        """`client` lets the caller share or instrument one; otherwise the channel owns one."""
        self._timeout = timeout_seconds
        self._owned = client is None
        self._client = client or make_client(timeout_seconds, connect_timeout_seconds)
        self._clock = clock or SystemClock()

    async def _post(self, url: str, **request: Any) -> httpx.Response:
        """POST within the channel's deadline; no answer at all is a transient ChannelError."""
        try:
            async with deadline(self._timeout, self.name):
                return await self._client.post(url, **request)
        except httpx.TransportError as exc:
            raise transport_error(exc, self.name) from exc

    def _refused(
        self, response: httpx.Response, message: str, provider_code: str | None
    ) -> ChannelError:
        """The ChannelError a non-2xx answer means, with the wait it asked for, if any."""
        return ChannelError(
            message,
            code=classify_status(response.status_code),
            channel=self.name,
            provider_code=provider_code,
            retry_after=retry_after_seconds(response.headers.get("retry-after"), self._clock.now()),
        )

    async def aclose(self) -> None:
        """Close the HTTP client if this channel made it."""
        if self._owned:
            await self._client.aclose()

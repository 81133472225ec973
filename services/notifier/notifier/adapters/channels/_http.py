"""What the httpx-based channels share: one client policy, one reading of HTTP failures."""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from notifier.adapters.channels.base import ChannelError, ErrorCode


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

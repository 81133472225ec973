"""Aliyun SMS through the official SDK (`alibabacloud_dysmsapi20170525`), on its async path.

The SDK reports failures in three ways, all mapped here onto ChannelError:
- HTTP 200 with a business `Code` other than `OK` (e.g. `isv.MOBILE_NUMBER_ILLEGAL`);
- HTTP 4xx/5xx raised as ClientException / ServerException (ThrottlingException when the
  server sends `x-acs-retry-after`, in milliseconds), with the provider's `Code`;
- anything else wrapped in UnretryableException: connection errors as RetryError (the aiohttp
  error in its exception chain; a timeout is a TimeoutError there), an answer that is not
  JSON as RuntimeError, without the HTTP status.
The SDK's own retries stay off (its async path sleeps with time.sleep between attempts,
blocking the event loop); retrying is the consumer's business, through Kafka.
"""

from __future__ import annotations

import json
from typing import Any

from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_dysmsapi20170525.models import SendSmsRequest
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException, ThrottlingException
from alibabacloud_tea_openapi.utils_models import Config
from darabonba.exceptions import RetryError, UnretryableException
from darabonba.runtime import RuntimeOptions

from notifier.adapters.channels._sms import recipient_e164, template_text
from notifier.adapters.channels.base import (
    ChannelError,
    ErrorCode,
    OutgoingMessage,
    Receipt,
    deadline,
)
from notifier.domain.phone import national_or_international
from notifier.settings import AliyunSmsSettings

NAME = "aliyun_sms"

# Codes from Aliyun's SMS and OpenAPI error lists; any other refusal is `provider_rejected`.
CODES: dict[str, ErrorCode] = {
    "isv.MOBILE_NUMBER_ILLEGAL": ErrorCode.INVALID_RECIPIENT,
    "isv.MOBILE_COUNT_OVER_LIMIT": ErrorCode.INVALID_REQUEST,
    "isv.SMS_TEMPLATE_ILLEGAL": ErrorCode.TEMPLATE_REJECTED,
    "isv.SMS_SIGNATURE_ILLEGAL": ErrorCode.TEMPLATE_REJECTED,
    "isv.SMS_SIGN_ILLEGAL": ErrorCode.TEMPLATE_REJECTED,
    "isv.TEMPLATE_MISSING_PARAMETERS": ErrorCode.TEMPLATE_REJECTED,
    "isv.TEMPLATE_PARAMS_ILLEGAL": ErrorCode.TEMPLATE_REJECTED,
    "isv.INVALID_JSON_PARAM": ErrorCode.INVALID_REQUEST,
    "isv.INVALID_PARAMETERS": ErrorCode.INVALID_REQUEST,
    "isv.PARAM_LENGTH_LIMIT": ErrorCode.CONTENT_REJECTED,
    "isv.SMS_CONTENT_ILLEGAL": ErrorCode.CONTENT_REJECTED,
    "isv.BLACK_KEY_CONTROL_LIMIT": ErrorCode.CONTENT_REJECTED,
    "InvalidAccessKeyId.NotFound": ErrorCode.AUTH_FAILED,
    "InvalidAccessKeyId.Inactive": ErrorCode.AUTH_FAILED,
    "SignatureDoesNotMatch": ErrorCode.AUTH_FAILED,
    "IncompleteSignature": ErrorCode.AUTH_FAILED,
    "isp.RAM_PERMISSION_DENY": ErrorCode.AUTH_FAILED,
    "Forbidden.RAM": ErrorCode.AUTH_FAILED,
    "isv.BUSINESS_LIMIT_CONTROL": ErrorCode.RATE_LIMITED,
    "isv.DAY_LIMIT_CONTROL": ErrorCode.RATE_LIMITED,
    "Throttling": ErrorCode.RATE_LIMITED,
    "Throttling.User": ErrorCode.RATE_LIMITED,
    "Throttling.Api": ErrorCode.RATE_LIMITED,
    "isp.SYSTEM_ERROR": ErrorCode.PROVIDER_UNAVAILABLE,
    "InternalError": ErrorCode.PROVIDER_UNAVAILABLE,
    "ServiceUnavailable": ErrorCode.PROVIDER_UNAVAILABLE,
}


def classify(code: str | None, status: int | None = None) -> ErrorCode:
    """Our error code for an Aliyun `Code` (and HTTP status, for codes we do not know)."""
    if code and code in CODES:
        return CODES[code]
    if status is not None and status >= 500:
        return ErrorCode.PROVIDER_UNAVAILABLE
    if status == 429:
        return ErrorCode.RATE_LIMITED
    return ErrorCode.PROVIDER_REJECTED


def _timed_out(exc: BaseException | None) -> bool:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, TimeoutError):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


class AliyunSmsChannel:
    """Sends one SMS per message with Aliyun's SendSms and an approved template."""

    name = NAME

    def __init__(self, settings: AliyunSmsSettings) -> None:
        self._s = settings
        timeout_ms = round(settings.timeout_seconds * 1000)
        self._client = Client(
            Config(
                access_key_id=settings.access_key_id,
                access_key_secret=settings.access_key_secret.get_secret_value(),
                endpoint=settings.endpoint,
                protocol=settings.protocol,
                region_id=settings.region_id,
                read_timeout=timeout_ms,
                connect_timeout=min(timeout_ms, round(settings.connect_timeout_seconds * 1000)),
            )
        )

    async def send(self, msg: OutgoingMessage) -> Receipt:
        """Send the text (or the given template parameters) to one phone number."""
        e164 = recipient_e164(msg, self._s.default_region, NAME)
        params = dict(msg.template_params) or {
            self._s.text_param: template_text(msg, self._s.max_segments)
        }
        request = SendSmsRequest(
            phone_numbers=national_or_international(e164),
            sign_name=self._s.sign_name,
            template_code=self._s.template_code,
            template_param=json.dumps(params, ensure_ascii=False),
            out_id=msg.reference,
        )
        try:
            async with deadline(self._s.timeout_seconds, NAME):
                response = await self._client.send_sms_with_options_async(request, RuntimeOptions())
        except AlibabaCloudException as exc:
            raise self._refused(exc) from exc
        except UnretryableException as exc:
            raise self._transport(exc) from exc
        body: Any = response.body
        code = getattr(body, "code", None)
        if code != "OK":
            if code is None:
                raise ChannelError(
                    f"answer without a Code (HTTP {response.status_code})",
                    code=ErrorCode.UNEXPECTED_RESPONSE,
                    channel=NAME,
                )
            raise ChannelError(
                f"{body.message} (request {body.request_id})",
                code=classify(code),
                channel=NAME,
                provider_code=code,
            )
        return Receipt(
            channel=NAME,
            recipient=e164,
            provider_id=body.biz_id,
            request_id=body.request_id,
        )

    async def aclose(self) -> None:
        """Nothing to release: the SDK opens a connection per request."""

    @staticmethod
    def _refused(exc: AlibabaCloudException) -> ChannelError:
        retry_after = None
        if isinstance(exc, ThrottlingException) and exc.retry_after:
            retry_after = exc.retry_after / 1000  # the SDK keeps milliseconds
        code = str(exc.code) if exc.code not in (None, "None") else None  # the SDK writes "None"
        ours = classify(code, exc.status_code)
        if retry_after and ours == ErrorCode.PROVIDER_REJECTED:
            ours = ErrorCode.RATE_LIMITED  # told to come back later: not a refusal for good
        return ChannelError(
            f"HTTP {exc.status_code}: {exc.message}",
            code=ours,
            channel=NAME,
            provider_code=code,
            retry_after=retry_after,
        )

    @staticmethod
    def _transport(exc: UnretryableException) -> ChannelError:
        inner = exc.inner_exception
        if _timed_out(inner):
            return ChannelError("the request timed out", code=ErrorCode.TIMEOUT, channel=NAME)
        if isinstance(inner, RetryError):  # the SDK's wrapper of connection errors
            return ChannelError(
                f"cannot reach the SMS API: {inner.message}",
                code=ErrorCode.PROVIDER_UNAVAILABLE,
                channel=NAME,
            )
        # Typically an answer that is not JSON (a proxy's error page): the SDK drops the
        # HTTP status, so whether the message went out is unknown.
        return ChannelError(
            f"unreadable answer: {inner}", code=ErrorCode.UNEXPECTED_RESPONSE, channel=NAME
        )

"""Tencent Cloud SMS through the official SDK (`tencentcloud-sdk-python-sms`), async client.

The SDK ships an asyncio client (`sms_client_async`, on httpx) beside the synchronous one, so
no thread is needed. Failures come three ways, all mapped onto ChannelError:
- a per-number `SendStatusSet[].Code` other than `Ok` in a successful answer;
- TencentCloudSDKException with the `Response.Error.Code` of the envelope, or with
  `ServerNetworkError` for any HTTP status other than 200 (the status itself is not kept);
- httpx transport errors, raised as they are (httpx.TimeoutException for timeouts).
The SDK's retryer stays the no-op default: the consumer retries, through Kafka.
"""

from __future__ import annotations

import json

import httpx
from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
    TencentCloudSDKException,
)
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111.models import SendSmsRequest
from tencentcloud.sms.v20210111.sms_client_async import SmsClient

from notifier.adapters.channels._sms import recipient_e164, template_text
from notifier.adapters.channels.base import (
    ChannelError,
    ErrorCode,
    OutgoingMessage,
    Receipt,
    deadline,
)
from notifier.adapters.channels.http import transport_error
from notifier.settings import TencentSmsSettings

NAME = "tencent_sms"
OK = "Ok"

# From Tencent's SendSms error list; any other refusal is `provider_rejected`.
CODES: dict[str, ErrorCode] = {
    "InvalidParameterValue.IncorrectPhoneNumber": ErrorCode.INVALID_RECIPIENT,
    "FailedOperation.PhoneNumberInBlacklist": ErrorCode.INVALID_RECIPIENT,
    "FailedOperation.TemplateIncorrectOrUnapproved": ErrorCode.TEMPLATE_REJECTED,
    "FailedOperation.SignatureIncorrectOrUnapproved": ErrorCode.TEMPLATE_REJECTED,
    "InvalidParameterValue.TemplateParameterFormatError": ErrorCode.TEMPLATE_REJECTED,
    "InvalidParameterValue.TemplateParameterLengthLimit": ErrorCode.CONTENT_REJECTED,
    "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter": ErrorCode.CONTENT_REJECTED,
    "FailedOperation.ContainSensitiveWord": ErrorCode.CONTENT_REJECTED,
    "InvalidParameterValue.SdkAppIdNotExist": ErrorCode.INVALID_REQUEST,
    "InternalError.Timeout": ErrorCode.TIMEOUT,
    "InternalError": ErrorCode.PROVIDER_UNAVAILABLE,
    "RequestLimitExceeded": ErrorCode.RATE_LIMITED,
    "ServerNetworkError": ErrorCode.PROVIDER_UNAVAILABLE,  # the SDK's name for HTTP != 200
}
PREFIXES: tuple[tuple[str, ErrorCode], ...] = (
    ("AuthFailure", ErrorCode.AUTH_FAILED),
    ("UnauthorizedOperation", ErrorCode.AUTH_FAILED),
    ("LimitExceeded", ErrorCode.RATE_LIMITED),
    ("RequestLimitExceeded", ErrorCode.RATE_LIMITED),
    ("InternalError", ErrorCode.PROVIDER_UNAVAILABLE),
)


def classify(code: str | None) -> ErrorCode:
    """Our error code for a Tencent error or per-number status code."""
    if code is None:
        return ErrorCode.UNEXPECTED_RESPONSE
    if code in CODES:
        return CODES[code]
    head = code.split(".", 1)[0]
    for prefix, ours in PREFIXES:
        if head == prefix:
            return ours
    return ErrorCode.PROVIDER_REJECTED


def _describe(message: object, request_id: str | None) -> str:
    """The SDK passes a non-200 answer's raw body as the message: show it as text."""
    if isinstance(message, bytes):
        message = message.decode("utf-8", errors="replace")
    return f"{message}" + (f" (request {request_id})" if request_id else "")


class TencentSmsChannel:
    """Sends one SMS per message with Tencent's SendSms and an approved template."""

    name = NAME

    def __init__(self, settings: TencentSmsSettings) -> None:
        self._s = settings
        profile = ClientProfile(
            httpProfile=HttpProfile(
                protocol=settings.protocol,
                endpoint=settings.endpoint,
                reqTimeout=settings.timeout_seconds,
            )
        )
        self._client = SmsClient(
            Credential(settings.secret_id, settings.secret_key.get_secret_value()),
            settings.region,
            profile,
        )
        # The profile has one timeout for everything; connecting deserves a shorter one.
        self._client.http_client.timeout = httpx.Timeout(
            settings.timeout_seconds,
            connect=min(settings.timeout_seconds, settings.connect_timeout_seconds),
        )

    def _params(self, msg: OutgoingMessage) -> list[str]:
        """Values of the template's {1}, {2}, ... in the configured order."""
        if not msg.template_params:
            return [template_text(msg, self._s.max_segments)]
        missing = [n for n in self._s.template_param_names if n not in msg.template_params]
        if missing:
            raise ChannelError(
                f"template parameters missing: {', '.join(missing)}",
                code=ErrorCode.INVALID_REQUEST,
                channel=NAME,
            )
        return [msg.template_params[n] for n in self._s.template_param_names]

    async def send(self, msg: OutgoingMessage) -> Receipt:
        """Send the text (or the given template parameters) to one phone number."""
        e164 = recipient_e164(msg, self._s.default_region, NAME)
        request = SendSmsRequest()
        request.SmsSdkAppId = self._s.sdk_app_id
        request.SignName = self._s.sign_name
        request.TemplateId = self._s.template_id
        request.TemplateParamSet = self._params(msg)
        request.PhoneNumberSet = [e164]
        request.SessionContext = msg.reference
        try:
            async with deadline(self._s.timeout_seconds, NAME):
                response = await self._client.SendSms(request)
        except TencentCloudSDKException as exc:
            code = exc.get_code()
            raise ChannelError(
                _describe(exc.get_message(), exc.get_request_id()),
                code=classify(code),
                channel=NAME,
                provider_code=code,
            ) from exc
        except httpx.TransportError as exc:
            raise transport_error(exc, NAME) from exc
        except (ValueError, KeyError, TypeError) as exc:  # json errors, a broken envelope
            raise ChannelError(
                f"unreadable answer: {exc!r}", code=ErrorCode.UNEXPECTED_RESPONSE, channel=NAME
            ) from exc
        # One number was sent, so one status is expected; match by number in case of more.
        statuses = response.SendStatusSet or []
        status = next((s for s in statuses if s.PhoneNumber == e164), None)
        if status is None and len(statuses) == 1:
            status = statuses[0]
        if status is None:
            raise ChannelError(
                f"no send status for the number (request {response.RequestId}): "
                + json.dumps([s.PhoneNumber for s in statuses]),
                code=ErrorCode.UNEXPECTED_RESPONSE,
                channel=NAME,
            )
        if status.Code != OK:
            raise ChannelError(
                _describe(status.Message, response.RequestId),
                code=classify(status.Code),
                channel=NAME,
                provider_code=status.Code,
            )
        return Receipt(
            channel=NAME,
            recipient=e164,
            provider_id=status.SerialNo,
            request_id=response.RequestId,
            segments=status.Fee if isinstance(status.Fee, int) else None,
        )

    async def aclose(self) -> None:
        """Close the SDK's httpx client."""
        await self._client.close()

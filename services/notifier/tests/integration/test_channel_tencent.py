"""Tencent Cloud SMS through the official SDK against a local server that speaks its API.

The server checks the TC3-HMAC-SHA256 signature, so a wrong key is refused the way Tencent
Cloud refuses it; per-number failures come in `SendStatusSet`, API failures in the
`Response.Error` envelope, both with HTTP 200.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from notifier.adapters.channels import ChannelError, ErrorCode, OutgoingMessage, TencentSmsChannel
from notifier.domain.sms_segments import analyze
from notifier.settings import TencentSmsSettings
from pydantic import SecretStr

from services.notifier.tests.provider_servers import (
    ProviderServer,
    Reply,
    Seen,
    TencentSms,
    refused_address,
    serve,
    tencent_error,
    tencent_status,
)

SECRET_ID, SECRET_KEY = "AKIDfakeSecretId", "fake-secret-key"
TEXT = "【督办提醒】第三十五项“加强林业数字化应用”进展停滞,请尽快报送最新进展。"


def _settings(endpoint: str, **changes: object) -> TencentSmsSettings:
    values: dict[str, object] = {
        "secret_id": SECRET_ID,
        "secret_key": SecretStr(SECRET_KEY),
        "sdk_app_id": "1400006666",
        "sign_name": "肇庆市政数局",
        "template_id": "1850001",
        "endpoint": endpoint,
        "protocol": "http",
        "timeout_seconds": 0.5,
    }
    values.update(changes)
    return TencentSmsSettings.model_validate(values)


def _msg(recipient: str = "13800138000", **changes: object) -> OutgoingMessage:
    values: dict[str, object] = {
        "recipient": recipient,
        "subject": "进展停滞",
        "text": TEXT,
        "reference": "notification-42",
    }
    values.update(changes)
    return OutgoingMessage(**values)  # type: ignore[arg-type]


@pytest.fixture
def tencent() -> Iterator[ProviderServer]:
    with serve(TencentSms(SECRET_ID, SECRET_KEY)) as server:
        yield server


@pytest.fixture
async def channel(tencent: ProviderServer) -> AsyncIterator[TencentSmsChannel]:
    channel = TencentSmsChannel(_settings(tencent.address))
    yield channel
    await channel.aclose()


async def _refusal(channel: TencentSmsChannel, msg: OutgoingMessage | None = None) -> ChannelError:
    with pytest.raises(ChannelError) as caught:
        await channel.send(msg or _msg())
    return caught.value


async def test_sends_the_template_with_the_text(
    channel: TencentSmsChannel, tencent: ProviderServer
) -> None:
    receipt = await channel.send(_msg("138 0013 8000"))

    seen = tencent.last
    assert (seen.method, seen.path) == ("POST", "/")
    assert seen.headers["x-tc-action"] == "SendSms"
    assert seen.headers["x-tc-version"] == "2021-01-11"
    assert seen.headers["x-tc-region"] == "ap-guangzhou"
    assert seen.headers["authorization"].startswith(f"TC3-HMAC-SHA256 Credential={SECRET_ID}/")
    assert seen.json() == {
        "PhoneNumberSet": ["+8613800138000"],
        "SmsSdkAppId": "1400006666",
        "SignName": "肇庆市政数局",
        "TemplateId": "1850001",
        "TemplateParamSet": [TEXT],
        "SessionContext": "notification-42",
    }
    assert SECRET_KEY not in str(seen)
    assert receipt.channel == "tencent_sms"
    assert receipt.recipient == "+8613800138000"
    assert receipt.provider_id and receipt.provider_id.startswith("2433:")
    assert receipt.request_id
    assert receipt.segments == 1  # Tencent bills per part and says so (Fee)


async def test_template_params_follow_the_configured_order(tencent: ProviderServer) -> None:
    channel = TencentSmsChannel(
        _settings(tencent.address, template_param_names=["item", "agency", "days"])
    )
    try:
        await channel.send(
            _msg(template_params={"agency": "市林业局", "days": "13", "item": "第三十五项"})
        )
        assert tencent.last.json()["TemplateParamSet"] == ["第三十五项", "市林业局", "13"]

        err = await _refusal(channel, _msg(template_params={"item": "第三十五项"}))
        assert (err.code, err.permanent) == (ErrorCode.INVALID_REQUEST, True)
        assert "agency, days" in err.message
        assert len(tencent.requests) == 1
    finally:
        await channel.aclose()


async def test_a_long_text_is_cut_to_the_segment_budget(tencent: ProviderServer) -> None:
    channel = TencentSmsChannel(_settings(tencent.address, max_segments=2))
    try:
        await channel.send(_msg(text=TEXT * 10))
    finally:
        await channel.aclose()
    (sent,) = tencent.last.json()["TemplateParamSet"]
    assert sent.endswith("…")
    assert analyze(sent).segments == 2


async def test_a_bad_number_is_refused_without_calling_tencent(
    channel: TencentSmsChannel, tencent: ProviderServer
) -> None:
    err = await _refusal(channel, _msg("010 6552 9988"))
    assert (err.code, err.permanent) == (ErrorCode.INVALID_RECIPIENT, True)
    assert "not a mobile number" in err.message
    assert tencent.requests == []


@pytest.mark.parametrize(
    ("provider_code", "code"),
    [
        ("InvalidParameterValue.IncorrectPhoneNumber", ErrorCode.INVALID_RECIPIENT),
        ("FailedOperation.PhoneNumberInBlacklist", ErrorCode.INVALID_RECIPIENT),
        ("FailedOperation.TemplateIncorrectOrUnapproved", ErrorCode.TEMPLATE_REJECTED),
        ("FailedOperation.ContainSensitiveWord", ErrorCode.CONTENT_REJECTED),
        ("LimitExceeded.PhoneNumberDailyLimit", ErrorCode.RATE_LIMITED),
        ("LimitExceeded.PhoneNumberOneHourLimit", ErrorCode.RATE_LIMITED),
        ("InternalError.SendAndRecvFail", ErrorCode.PROVIDER_UNAVAILABLE),
        ("FailedOperation.InsufficientBalanceInSmsPackage", ErrorCode.PROVIDER_REJECTED),
    ],
)
async def test_per_number_status_codes(
    channel: TencentSmsChannel, tencent: ProviderServer, provider_code: str, code: ErrorCode
) -> None:
    tencent.then(tencent_status(provider_code))
    err = await _refusal(channel)
    assert (err.code, err.provider_code) == (code, provider_code)
    assert err.permanent is code.permanent


@pytest.mark.parametrize(
    ("provider_code", "code"),
    [
        ("FailedOperation.TemplateIncorrectOrUnapproved", ErrorCode.TEMPLATE_REJECTED),
        ("AuthFailure.SecretIdNotFound", ErrorCode.AUTH_FAILED),
        ("UnauthorizedOperation.SmsSdkAppIdVerifyFail", ErrorCode.AUTH_FAILED),
        ("LimitExceeded.AppDailyLimit", ErrorCode.RATE_LIMITED),
        ("RequestLimitExceeded", ErrorCode.RATE_LIMITED),
        ("InternalError.Timeout", ErrorCode.TIMEOUT),
        ("InternalError.RequestTimeException", ErrorCode.PROVIDER_UNAVAILABLE),
        ("InternalError", ErrorCode.PROVIDER_UNAVAILABLE),
        ("InvalidParameterValue.SdkAppIdNotExist", ErrorCode.INVALID_REQUEST),
    ],
)
async def test_api_errors_in_the_envelope(
    channel: TencentSmsChannel, tencent: ProviderServer, provider_code: str, code: ErrorCode
) -> None:
    tencent.then(tencent_error(provider_code))
    err = await _refusal(channel)
    assert (err.code, err.provider_code) == (code, provider_code)
    assert err.permanent is code.permanent
    assert "(request " in err.message


async def test_a_wrong_secret_key_fails_the_signature_check(tencent: ProviderServer) -> None:
    channel = TencentSmsChannel(_settings(tencent.address, secret_key="not-the-key"))
    try:
        err = await _refusal(channel)
    finally:
        await channel.aclose()
    assert (err.code, err.provider_code, err.permanent) == (
        ErrorCode.AUTH_FAILED,
        "AuthFailure.SignatureFailure",
        True,
    )
    assert "not-the-key" not in str(err)


@pytest.mark.parametrize(
    "reply",
    [
        Reply(status=500, body=b"Internal Server Error", content_type="text/plain"),
        Reply(status=503, body=b"<html>busy</html>", content_type="text/html"),
        Reply(status=502, payload={"message": "bad gateway"}),
    ],
)
async def test_http_failures_are_transient(
    channel: TencentSmsChannel, tencent: ProviderServer, reply: Reply
) -> None:
    tencent.then(reply)
    err = await _refusal(channel)
    assert (err.code, err.provider_code, err.permanent) == (
        ErrorCode.PROVIDER_UNAVAILABLE,
        "ServerNetworkError",
        False,
    )


def _no_status(seen: Seen) -> Reply:
    return Reply(payload={"Response": {"SendStatusSet": [], "RequestId": "r-1"}})


async def test_an_answer_without_a_status_for_the_number_is_transient(
    channel: TencentSmsChannel, tencent: ProviderServer
) -> None:
    tencent.then(_no_status)
    err = await _refusal(channel)
    assert (err.code, err.permanent) == (ErrorCode.UNEXPECTED_RESPONSE, False)


async def test_an_error_the_sdk_does_not_look_at_is_still_no_success(
    channel: TencentSmsChannel, tencent: ProviderServer
) -> None:
    # The SDK checks for Response.Error only when Content-Type is exactly application/json
    # (or text/plain); with a charset it reads the envelope as a success without statuses.
    error = tencent_error("AuthFailure.SignatureExpire")
    tencent.then(Reply(payload=error.payload, content_type="application/json; charset=utf-8"))
    err = await _refusal(channel)
    assert (err.code, err.permanent) == (ErrorCode.UNEXPECTED_RESPONSE, False)


async def test_a_hanging_server_times_out(
    channel: TencentSmsChannel, tencent: ProviderServer
) -> None:
    tencent.then(Reply(hang=True))
    err = await _refusal(channel)
    assert (err.code, err.permanent) == (ErrorCode.TIMEOUT, False)


async def test_a_refused_connection_is_transient() -> None:
    with refused_address() as address:
        channel = TencentSmsChannel(_settings(address))
        try:
            err = await _refusal(channel)
        finally:
            await channel.aclose()
    assert (err.code, err.permanent) == (ErrorCode.PROVIDER_UNAVAILABLE, False)


async def test_it_recovers_after_a_failure(
    channel: TencentSmsChannel, tencent: ProviderServer
) -> None:
    tencent.then(Reply(status=503, body=b"busy", content_type="text/plain"))
    await _refusal(channel)
    assert (await channel.send(_msg())).provider_id
    assert len(tencent.requests) == 2

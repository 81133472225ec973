"""Aliyun SMS through the official SDK against a local server that speaks the Aliyun API.

The server checks the ACS3-HMAC-SHA256 signature with the key pair, so a wrong secret is
refused the way Aliyun refuses it, not by a scripted answer.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest
from notifier.adapters.channels import AliyunSmsChannel, ChannelError, ErrorCode, OutgoingMessage
from notifier.domain.sms_segments import analyze
from notifier.settings import AliyunSmsSettings
from pydantic import SecretStr

from services.notifier.tests.provider_servers import (
    AliyunSms,
    ProviderServer,
    Reply,
    aliyun_reply,
    aliyun_throttled,
    refused_address,
    serve,
)

AK_ID, AK_SECRET = "LTAI5tFakeAccessKey", "fake-access-key-secret"
TEXT = "【督办提醒】第三十五项“加强林业数字化应用”进展停滞,请尽快报送最新进展。"


def _settings(endpoint: str, **changes: object) -> AliyunSmsSettings:
    values: dict[str, object] = {
        "access_key_id": AK_ID,
        "access_key_secret": SecretStr(AK_SECRET),
        "sign_name": "肇庆市政数局",
        "template_code": "SMS_465930001",
        "endpoint": endpoint,
        "protocol": "http",
        "timeout_seconds": 0.5,
    }
    values.update(changes)
    return AliyunSmsSettings.model_validate(values)


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
def aliyun() -> Iterator[ProviderServer]:
    with serve(AliyunSms(AK_ID, AK_SECRET)) as server:
        yield server


@pytest.fixture
async def channel(aliyun: ProviderServer) -> AsyncIterator[AliyunSmsChannel]:
    channel = AliyunSmsChannel(_settings(aliyun.address))
    yield channel
    await channel.aclose()


async def _refusal(channel: AliyunSmsChannel, msg: OutgoingMessage | None = None) -> ChannelError:
    with pytest.raises(ChannelError) as caught:
        await channel.send(msg or _msg())
    return caught.value


async def test_sends_the_template_with_the_text(
    channel: AliyunSmsChannel, aliyun: ProviderServer
) -> None:
    receipt = await channel.send(_msg("+86 138-0013-8000"))

    seen = aliyun.last
    assert (seen.method, seen.path) == ("POST", "/")
    assert seen.headers["x-acs-action"] == "SendSms"
    assert seen.headers["authorization"].startswith(f"ACS3-HMAC-SHA256 Credential={AK_ID},")
    assert seen.query["PhoneNumbers"] == "13800138000"  # mainland: 11 bare digits
    assert seen.query["SignName"] == "肇庆市政数局"
    assert seen.query["TemplateCode"] == "SMS_465930001"
    assert json.loads(seen.query["TemplateParam"]) == {"content": TEXT}
    assert seen.query["OutId"] == "notification-42"
    assert AK_SECRET not in str(seen)
    assert receipt.channel == "aliyun_sms"
    assert receipt.recipient == "+8613800138000"
    assert receipt.provider_id and receipt.provider_id.endswith("^0")
    assert receipt.request_id
    assert receipt.segments is None  # Aliyun does not say; the template adds words anyway


async def test_numbers_outside_the_mainland_keep_their_country_code(
    channel: AliyunSmsChannel, aliyun: ProviderServer
) -> None:
    receipt = await channel.send(_msg("+852 6123 4567"))
    assert aliyun.last.query["PhoneNumbers"] == "85261234567"
    assert receipt.recipient == "+85261234567"


async def test_given_template_params_are_sent_as_they_are(
    channel: AliyunSmsChannel, aliyun: ProviderServer
) -> None:
    await channel.send(_msg(template_params={"item": "第三十五项", "agency": "市林业局"}))
    assert json.loads(aliyun.last.query["TemplateParam"]) == {
        "item": "第三十五项",
        "agency": "市林业局",
    }


async def test_a_long_text_is_cut_to_the_segment_budget(aliyun: ProviderServer) -> None:
    channel = AliyunSmsChannel(_settings(aliyun.address, max_segments=1, text_param="body"))
    await channel.send(_msg(text=TEXT * 5))
    sent = json.loads(aliyun.last.query["TemplateParam"])["body"]
    assert sent.endswith("…")
    assert analyze(sent).segments == 1


async def test_a_bad_number_is_refused_without_calling_aliyun(
    channel: AliyunSmsChannel, aliyun: ProviderServer
) -> None:
    err = await _refusal(channel, _msg("12345"))
    assert (err.code, err.permanent) == (ErrorCode.INVALID_RECIPIENT, True)
    assert aliyun.requests == []


@pytest.mark.parametrize(
    ("provider_code", "code"),
    [
        ("isv.MOBILE_NUMBER_ILLEGAL", ErrorCode.INVALID_RECIPIENT),
        ("isv.SMS_TEMPLATE_ILLEGAL", ErrorCode.TEMPLATE_REJECTED),
        ("isv.SMS_SIGNATURE_ILLEGAL", ErrorCode.TEMPLATE_REJECTED),
        ("isv.BUSINESS_LIMIT_CONTROL", ErrorCode.RATE_LIMITED),
        ("isv.DAY_LIMIT_CONTROL", ErrorCode.RATE_LIMITED),
        ("isp.SYSTEM_ERROR", ErrorCode.PROVIDER_UNAVAILABLE),
        ("isv.AMOUNT_NOT_ENOUGH", ErrorCode.PROVIDER_REJECTED),  # not in our table
    ],
)
async def test_business_errors_in_a_200_answer(
    channel: AliyunSmsChannel, aliyun: ProviderServer, provider_code: str, code: ErrorCode
) -> None:
    aliyun.then(aliyun_reply(provider_code))
    err = await _refusal(channel)
    assert (err.code, err.provider_code) == (code, provider_code)
    assert err.permanent is code.permanent
    assert err.retry_after is None


async def test_a_wrong_secret_fails_the_signature_check(aliyun: ProviderServer) -> None:
    channel = AliyunSmsChannel(_settings(aliyun.address, access_key_secret="not-the-secret"))
    err = await _refusal(channel)
    assert (err.code, err.provider_code, err.permanent) == (
        ErrorCode.AUTH_FAILED,
        "SignatureDoesNotMatch",
        True,
    )
    assert "not-the-secret" not in str(err)


async def test_an_unknown_access_key_is_permanent(aliyun: ProviderServer) -> None:
    channel = AliyunSmsChannel(_settings(aliyun.address, access_key_id="LTAI5tSomeoneElse"))
    err = await _refusal(channel)
    assert (err.code, err.provider_code, err.permanent) == (
        ErrorCode.AUTH_FAILED,
        "InvalidAccessKeyId.NotFound",
        True,
    )


async def test_throttling_is_transient(channel: AliyunSmsChannel, aliyun: ProviderServer) -> None:
    aliyun.then(aliyun_reply("Throttling.User", status=400))
    err = await _refusal(channel)
    assert (err.code, err.provider_code, err.permanent) == (
        ErrorCode.RATE_LIMITED,
        "Throttling.User",
        False,
    )
    assert err.retry_after is None


async def test_throttling_with_a_wait_tells_how_long(
    channel: AliyunSmsChannel, aliyun: ProviderServer
) -> None:
    aliyun.then(aliyun_throttled(retry_after_ms=2500))
    err = await _refusal(channel)
    assert (err.code, err.retry_after, err.permanent) == (ErrorCode.RATE_LIMITED, 2.5, False)


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (aliyun_reply("InternalError", status=500), ErrorCode.PROVIDER_UNAVAILABLE),
        (aliyun_reply("ServiceUnavailable", status=503), ErrorCode.PROVIDER_UNAVAILABLE),
        (aliyun_reply("Gateway.Whatever", status=502), ErrorCode.PROVIDER_UNAVAILABLE),
        # A proxy's error page: the SDK cannot read it and drops the status.
        (
            Reply(status=503, body=b"<html>busy</html>", content_type="text/html"),
            ErrorCode.UNEXPECTED_RESPONSE,
        ),
        (Reply(status=200, payload={}), ErrorCode.UNEXPECTED_RESPONSE),
    ],
)
async def test_server_failures_are_transient(
    channel: AliyunSmsChannel, aliyun: ProviderServer, reply: Reply, code: ErrorCode
) -> None:
    aliyun.then(reply)
    err = await _refusal(channel)
    assert (err.code, err.permanent) == (code, False)


async def test_a_hanging_server_times_out(
    channel: AliyunSmsChannel, aliyun: ProviderServer
) -> None:
    aliyun.then(Reply(hang=True))
    err = await _refusal(channel)
    assert (err.code, err.permanent) == (ErrorCode.TIMEOUT, False)


async def test_a_refused_connection_is_transient() -> None:
    with refused_address() as address:
        err = await _refusal(AliyunSmsChannel(_settings(address)))
    assert (err.code, err.permanent) == (ErrorCode.PROVIDER_UNAVAILABLE, False)


async def test_it_recovers_after_a_failure(
    channel: AliyunSmsChannel, aliyun: ProviderServer
) -> None:
    aliyun.then(aliyun_reply("ServiceUnavailable", status=503))
    await _refusal(channel)
    receipt = await channel.send(_msg())
    assert receipt.provider_id
    assert len(aliyun.requests) == 2

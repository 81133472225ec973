"""The httpx channels against local servers: the JSON SMS gateway and the WeCom group robot."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
from duban_shared.clock import ManualClock
from notifier.adapters.channels import (
    ChannelError,
    ErrorCode,
    HttpSmsChannel,
    OutgoingMessage,
    WeComRobotChannel,
)
from notifier.domain.sms_segments import analyze
from notifier.settings import HttpSmsSettings, WeComSettings
from pydantic import SecretStr

from services.notifier.tests.provider_servers import (
    WECOM_PATH,
    JsonGateway,
    ProviderServer,
    Reply,
    WeComRobot,
    refused_address,
    serve,
    wecom_reply,
)

TOKEN = "gateway-token-123"
ROBOT_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
NOW = datetime(2024, 10, 22, 1, 0, tzinfo=UTC)
SUBJECT = "【督办提醒】第三十五项“加强林业数字化应用”进展停滞"
TEXT = "市林业局:\n\n您单位牵头的第三十五项已被判定为停滞。\n原因:牵头单位逾期未报送进展。"


def _msg(recipient: str, **changes: object) -> OutgoingMessage:
    values: dict[str, object] = {
        "recipient": recipient,
        "subject": SUBJECT,
        "text": TEXT,
        "reference": "notification-42",
    }
    values.update(changes)
    return OutgoingMessage(**values)  # type: ignore[arg-type]


# --- JSON SMS gateway ---------------------------------------------------------------------


def _gateway_settings(url: str, **changes: object) -> HttpSmsSettings:
    values: dict[str, object] = {"url": url, "token": SecretStr(TOKEN), "timeout_seconds": 0.5}
    values.update(changes)
    return HttpSmsSettings.model_validate(values)


@pytest.fixture
def gateway() -> Iterator[ProviderServer]:
    with serve(JsonGateway(TOKEN)) as server:
        yield server


@pytest.fixture
async def sms(gateway: ProviderServer) -> AsyncIterator[HttpSmsChannel]:
    channel = HttpSmsChannel(_gateway_settings(gateway.url("/v1/sms")), clock=ManualClock(NOW))
    yield channel
    await channel.aclose()


async def _sms_refusal(channel: HttpSmsChannel, msg: OutgoingMessage | None = None) -> ChannelError:
    with pytest.raises(ChannelError) as caught:
        await channel.send(msg or _msg("13800138000"))
    return caught.value


async def test_gateway_gets_e164_text_reference_and_the_token(
    sms: HttpSmsChannel, gateway: ProviderServer
) -> None:
    receipt = await sms.send(_msg("138 0013 8000"))

    seen = gateway.last
    assert (seen.method, seen.path) == ("POST", "/v1/sms")
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["idempotency-key"] == "notification-42"
    assert seen.json() == {"to": "+8613800138000", "text": TEXT, "reference": "notification-42"}
    assert receipt.channel == "http_sms"
    assert receipt.recipient == "+8613800138000"
    assert receipt.provider_id and receipt.provider_id.startswith("msg-")
    assert receipt.request_id
    assert receipt.segments == analyze(TEXT).segments == 1


async def test_gateway_text_is_cut_to_the_budget(gateway: ProviderServer) -> None:
    channel = HttpSmsChannel(_gateway_settings(gateway.url("/v1/sms"), max_segments=2))
    try:
        receipt = await channel.send(_msg("13800138000", text=TEXT * 10))
    finally:
        await channel.aclose()
    assert analyze(gateway.last.json()["text"]).segments == 2
    assert receipt.segments == 2


async def test_a_bad_number_never_reaches_the_gateway(
    sms: HttpSmsChannel, gateway: ProviderServer
) -> None:
    err = await _sms_refusal(sms, _msg("1380013800"))
    assert (err.code, err.permanent) == (ErrorCode.INVALID_RECIPIENT, True)
    assert gateway.requests == []


async def test_a_wrong_token_is_permanent(gateway: ProviderServer) -> None:
    channel = HttpSmsChannel(_gateway_settings(gateway.url("/v1/sms"), token="wrong"))
    try:
        err = await _sms_refusal(channel)
    finally:
        await channel.aclose()
    assert (err.code, err.provider_code, err.permanent) == (
        ErrorCode.AUTH_FAILED,
        "unauthorized",
        True,
    )
    assert TOKEN not in str(err)


@pytest.mark.parametrize(
    ("reply", "code", "retry_after"),
    [
        (Reply(status=400, payload={"code": "bad_text"}), ErrorCode.INVALID_REQUEST, None),
        (Reply(status=403, payload={}), ErrorCode.AUTH_FAILED, None),
        (Reply(status=404, body=b"no such path", content_type="text/plain"), "invalid", None),
        (Reply(status=422, payload={"code": "invalid_to"}), ErrorCode.INVALID_REQUEST, None),
        (Reply(status=408, headers={"Retry-After": "3"}), ErrorCode.TIMEOUT, 3.0),
        (Reply(status=429, headers={"Retry-After": "7"}), ErrorCode.RATE_LIMITED, 7.0),
        (
            Reply(status=429, headers={"Retry-After": "Tue, 22 Oct 2024 01:02:00 GMT"}),
            ErrorCode.RATE_LIMITED,
            120.0,
        ),
        (Reply(status=429), ErrorCode.RATE_LIMITED, None),
        (Reply(status=500, body=b"<html>oops</html>"), ErrorCode.PROVIDER_UNAVAILABLE, None),
        (
            Reply(status=503, headers={"Retry-After": "30"}),
            ErrorCode.PROVIDER_UNAVAILABLE,
            30.0,
        ),
        (Reply(status=302, headers={"Location": "http://elsewhere"}), "invalid", None),
    ],
)
async def test_gateway_statuses(
    sms: HttpSmsChannel,
    gateway: ProviderServer,
    reply: Reply,
    code: ErrorCode | str,
    retry_after: float | None,
) -> None:
    gateway.then(reply)
    err = await _sms_refusal(sms)
    expected = ErrorCode.INVALID_REQUEST if code == "invalid" else code
    assert err.code == expected
    assert err.permanent is (reply.status < 500 and reply.status not in (408, 429))
    assert err.retry_after == retry_after
    assert len(gateway.requests) == 1  # redirects are not followed


async def test_a_hanging_gateway_times_out(sms: HttpSmsChannel, gateway: ProviderServer) -> None:
    gateway.then(Reply(hang=True))
    err = await _sms_refusal(sms)
    assert (err.code, err.permanent) == (ErrorCode.TIMEOUT, False)


async def test_a_refused_connection_is_transient() -> None:
    with refused_address() as address:
        channel = HttpSmsChannel(_gateway_settings(f"http://{address}/v1/sms"))
        try:
            err = await _sms_refusal(channel)
        finally:
            await channel.aclose()
    assert (err.code, err.permanent) == (ErrorCode.PROVIDER_UNAVAILABLE, False)


# --- WeCom group robot --------------------------------------------------------------------


def _wecom_settings(base: str, **changes: object) -> WeComSettings:
    values: dict[str, object] = {
        "webhook_url": f"{base}{WECOM_PATH}",
        "robots": {"linye": SecretStr(ROBOT_KEY), "removed": SecretStr("revoked-key")},
        "timeout_seconds": 0.5,
    }
    values.update(changes)
    return WeComSettings.model_validate(values)


@pytest.fixture
def robot() -> Iterator[ProviderServer]:
    with serve(WeComRobot({ROBOT_KEY})) as server:
        yield server


@pytest.fixture
async def wecom(robot: ProviderServer) -> AsyncIterator[WeComRobotChannel]:
    channel = WeComRobotChannel(_wecom_settings(robot.url("").rstrip("/")))
    yield channel
    await channel.aclose()


async def _wecom_refusal(
    channel: WeComRobotChannel, msg: OutgoingMessage | None = None
) -> ChannelError:
    with pytest.raises(ChannelError) as caught:
        await channel.send(msg or _msg("linye"))
    return caught.value


async def test_robot_gets_markdown_with_the_subject_in_bold(
    wecom: WeComRobotChannel, robot: ProviderServer
) -> None:
    receipt = await wecom.send(_msg("linye"))

    seen = robot.last
    assert (seen.method, seen.path, seen.query) == ("POST", WECOM_PATH, {"key": ROBOT_KEY})
    assert seen.headers["content-type"] == "application/json"
    assert seen.json() == {
        "msgtype": "markdown",
        "markdown": {"content": f"**{SUBJECT}**\n{TEXT}"},
    }
    assert (receipt.channel, receipt.recipient) == ("wecom", "linye")


async def test_content_over_4096_bytes_is_cut_on_a_character_boundary(
    wecom: WeComRobotChannel, robot: ProviderServer
) -> None:
    await wecom.send(_msg("linye", text="督办" * 3000))  # the robot refuses > 4096 bytes
    content = robot.last.json()["markdown"]["content"]
    assert content.startswith(f"**{SUBJECT}**\n督办")
    assert content.endswith("…")
    assert 4096 - 3 < len(content.encode()) <= 4096


async def test_an_unconfigured_robot_name_is_permanent(
    wecom: WeComRobotChannel, robot: ProviderServer
) -> None:
    err = await _wecom_refusal(wecom, _msg("no-such-group"))
    assert (err.code, err.permanent) == (ErrorCode.INVALID_RECIPIENT, True)
    assert robot.requests == []


async def test_a_revoked_webhook_key_is_permanent(wecom: WeComRobotChannel) -> None:
    err = await _wecom_refusal(wecom, _msg("removed"))
    assert (err.code, err.provider_code, err.permanent) == (
        ErrorCode.INVALID_RECIPIENT,
        "93000",
        True,
    )
    assert "revoked-key" not in str(err)


@pytest.mark.parametrize(
    ("reply", "code", "provider_code"),
    [
        (wecom_reply(45009, "api freq out of limit"), ErrorCode.RATE_LIMITED, "45009"),
        (wecom_reply(-1, "system busy"), ErrorCode.PROVIDER_UNAVAILABLE, "-1"),
        (wecom_reply(40008, "invalid message type"), ErrorCode.INVALID_REQUEST, "40008"),
        (wecom_reply(40058, "invalid parameter"), ErrorCode.INVALID_REQUEST, "40058"),
        (wecom_reply(93000, "invalid webhook url"), ErrorCode.INVALID_RECIPIENT, "93000"),
        (wecom_reply(86001, "something new"), ErrorCode.PROVIDER_REJECTED, "86001"),
        (Reply(status=502, body=b"Bad Gateway"), ErrorCode.PROVIDER_UNAVAILABLE, "502"),
        (Reply(status=503, headers={"Retry-After": "5"}), ErrorCode.PROVIDER_UNAVAILABLE, "503"),
        (Reply(status=404, body=b"not found"), ErrorCode.INVALID_REQUEST, "404"),
        (Reply(status=200, body=b"<html></html>"), ErrorCode.UNEXPECTED_RESPONSE, None),
    ],
)
async def test_robot_answers(
    wecom: WeComRobotChannel,
    robot: ProviderServer,
    reply: Reply,
    code: ErrorCode,
    provider_code: str | None,
) -> None:
    robot.then(reply)
    err = await _wecom_refusal(wecom)
    assert (err.code, err.provider_code) == (code, provider_code)
    assert err.permanent is code.permanent
    assert err.retry_after == (5.0 if reply.headers else None)
    assert ROBOT_KEY not in str(err)


async def test_a_hanging_robot_times_out(wecom: WeComRobotChannel, robot: ProviderServer) -> None:
    robot.then(Reply(hang=True))
    err = await _wecom_refusal(wecom)
    assert (err.code, err.permanent) == (ErrorCode.TIMEOUT, False)


async def test_a_refused_robot_connection_is_transient_and_hides_the_key() -> None:
    with refused_address() as address:
        channel = WeComRobotChannel(_wecom_settings(f"http://{address}"))
        try:
            err = await _wecom_refusal(channel)
        finally:
            await channel.aclose()
    assert (err.code, err.permanent) == (ErrorCode.PROVIDER_UNAVAILABLE, False)
    assert ROBOT_KEY not in str(err)

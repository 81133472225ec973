"""The channel package's shared parts: errors, phone numbers, SMS segments, settings, wiring.

The provider channels are tested against local servers in test_channel_*.py.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from notifier.adapters.channels import (
    AliyunSmsChannel,
    ChannelError,
    ErrorCode,
    HttpSmsChannel,
    TencentSmsChannel,
    WeComRobotChannel,
    build_channels,
)
from notifier.adapters.channels.wecom import fit_utf8
from notifier.domain.phone import InvalidPhoneNumber, national_or_international, normalize_phone
from notifier.domain.sms_segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    analyze,
    encoding_of,
    truncate_to_segments,
)
from notifier.settings import (
    AliyunSmsSettings,
    ChannelsSettings,
    HttpSmsSettings,
    TencentSmsSettings,
    WeComSettings,
)
from pydantic import SecretStr

# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "permanent"),
    [
        (ErrorCode.INVALID_RECIPIENT, True),
        (ErrorCode.AUTH_FAILED, True),
        (ErrorCode.TEMPLATE_REJECTED, True),
        (ErrorCode.CONTENT_REJECTED, True),
        (ErrorCode.INVALID_REQUEST, True),
        (ErrorCode.PROVIDER_REJECTED, True),
        (ErrorCode.LOGIN_REFUSED, False),
        (ErrorCode.RATE_LIMITED, False),
        (ErrorCode.PROVIDER_UNAVAILABLE, False),
        (ErrorCode.TIMEOUT, False),
        (ErrorCode.UNEXPECTED_RESPONSE, False),
    ],
)
def test_the_code_alone_decides_whether_a_retry_can_help(code: ErrorCode, permanent: bool) -> None:
    err = ChannelError("x", code=code, channel="test", provider_code="P.1", retry_after=3)
    assert err.permanent is permanent
    assert str(err) == f"test: {code.value} [P.1]: x"


def test_error_messages_are_bounded() -> None:
    err = ChannelError("<html>" + "x" * 5000, code=ErrorCode.TIMEOUT, channel="test")
    assert len(err.message) == 500
    assert err.message.endswith("…")


# --- phone numbers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("13800138000", "+8613800138000"),
        ("138 0013 8000", "+8613800138000"),
        ("138-0013-8000", "+8613800138000"),
        ("+86 138 0013 8000", "+8613800138000"),
        ("008613800138000", "+8613800138000"),
        ("8613800138000", "+8613800138000"),
        ("+852 6123 4567", "+85261234567"),
        ("+1 650 253 0000", "+16502530000"),  # US numbers may be mobile: accepted
    ],
)
def test_phone_numbers_are_normalised_to_e164(raw: str, e164: str) -> None:
    assert normalize_phone(raw) == e164


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("abc", "not a phone number"),
        ("", "not a phone number"),
        ("12345", "too short"),
        ("1380013800013800", "too long"),
        ("1380013800", "not a number in use in CN"),
        ("+999 123", "unknown country calling code"),
        ("010 6552 9988", "not a mobile number (SMS cannot reach it)"),
    ],
)
def test_unusable_phone_numbers_say_why(raw: str, reason: str) -> None:
    with pytest.raises(InvalidPhoneNumber) as caught:
        normalize_phone(raw)
    assert caught.value.reason == reason
    assert repr(raw) in str(caught.value)


def test_landlines_pass_when_mobile_is_not_required() -> None:
    assert normalize_phone("010 6552 9988", require_mobile=False) == "+861065529988"


def test_another_default_region() -> None:
    assert normalize_phone("6123 4567", "HK") == "+85261234567"


def test_aliyun_number_format() -> None:
    assert national_or_international("+8613800138000") == "13800138000"
    assert national_or_international("+85261234567") == "85261234567"


# --- SMS segments -------------------------------------------------------------------------


def test_the_gsm_alphabet_is_complete() -> None:
    assert len(GSM7_BASIC) == 127  # 128 positions, one of them the escape
    assert len(GSM7_EXTENSION) == 10
    assert not GSM7_BASIC & GSM7_EXTENSION


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 1),
        ("hello", "GSM-7", 5, 1),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters cost two septets
        ("€" * 81, "GSM-7", 162, 2),
        # A part never ends between the escape and its character:
        ("a" * 152 + "€" + "a" * 151, "GSM-7", 305, 2),
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 306, 3),
        ("Ç", "GSM-7", 1, 1),  # in the alphabet, while ç is not
        ("ç", "UCS-2", 1, 1),
        ("督" * 70, "UCS-2", 70, 1),
        ("督" * 71, "UCS-2", 71, 2),
        ("督" * 134, "UCS-2", 134, 2),
        ("督" * 135, "UCS-2", 135, 3),
        ("a" * 159 + "办", "UCS-2", 160, 3),  # one Chinese character makes all of it UCS-2
        ("😀" * 35, "UCS-2", 70, 1),  # outside the BMP: a surrogate pair, two units
        ("😀" * 36, "UCS-2", 72, 2),
        # ...and a pair is never split between two parts:
        ("a" * 66 + "😀" + "a" * 65, "UCS-2", 133, 2),
        ("a" * 66 + "😀" + "a" * 66, "UCS-2", 134, 3),
    ],
)
def test_segments(text: str, encoding: str, units: int, segments: int) -> None:
    info = analyze(text)
    assert (info.encoding, info.characters, info.units, info.segments) == (
        encoding,
        len(text),
        units,
        segments,
    )


def test_a_text_that_fits_is_not_touched() -> None:
    text = "第三十五项“加强林业数字化应用”进展停滞"
    assert truncate_to_segments(text, 1) == text


def test_chinese_text_is_cut_with_a_unicode_ellipsis() -> None:
    text = "督" * 200
    assert truncate_to_segments(text, 1) == "督" * 69 + "…"
    assert truncate_to_segments(text, 2) == "督" * 133 + "…"


def test_gsm_text_is_cut_with_dots_so_it_stays_gsm() -> None:
    cut = truncate_to_segments("a" * 500, 1)
    assert cut == "a" * 157 + "..."
    assert analyze(cut).encoding == "GSM-7"


def test_a_cut_that_drops_the_only_chinese_characters_gains_gsm_room() -> None:
    assert truncate_to_segments("a" * 200 + "中文", 1) == "a" * 157 + "..."


def test_cutting_drops_trailing_spaces_before_the_ellipsis() -> None:
    assert truncate_to_segments("督" * 68 + "  " + "督" * 10, 1) == "督" * 68 + "…"


def test_zero_segments_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        truncate_to_segments("x", 0)


_TEXT = st.text(
    alphabet=st.sampled_from(sorted(GSM7_BASIC | GSM7_EXTENSION) + list("督办进展停滞😀ç")),
    max_size=700,
)


def _cut_at(text: str, keep: int) -> str:
    head = text[:keep].rstrip()
    return head + ("..." if encoding_of(head) == "GSM-7" else "…")


@settings(derandomize=True, max_examples=300, deadline=None)
@given(text=_TEXT, budget=st.integers(min_value=1, max_value=5))
def test_a_cut_text_always_fits_and_keeps_the_longest_prefix(text: str, budget: int) -> None:
    cut = truncate_to_segments(text, budget)
    assert analyze(cut).segments <= budget
    if cut == text:
        return
    kept = cut.removesuffix("..." if encoding_of(cut) == "GSM-7" else "…")
    assert text.startswith(kept)
    # The next longer cut would not have fitted.
    keep = len(kept) + 1
    while keep < len(text) and text[:keep].rstrip() == kept:
        keep += 1
    if keep < len(text):
        assert analyze(_cut_at(text, keep)).segments > budget


# --- WeCom size limit ---------------------------------------------------------------------


def test_utf8_cut_never_splits_a_character() -> None:
    text = "督" * 2000  # 3 bytes each: 6000 bytes
    cut = fit_utf8(text, 4096)
    assert len(cut.encode()) <= 4096
    assert cut == "督" * 1364 + "…"  # 1364 * 3 + 3 = 4095 bytes
    assert fit_utf8("short") == "short"


# --- settings and wiring ------------------------------------------------------------------


def _all_settings() -> ChannelsSettings:
    return ChannelsSettings(
        aliyun_sms=AliyunSmsSettings(
            access_key_id="LTAI-id",
            access_key_secret=SecretStr("aliyun-secret"),
            sign_name="肇庆政数",
            template_code="SMS_1",
        ),
        tencent_sms=TencentSmsSettings(
            secret_id="AKID-id",
            secret_key=SecretStr("tencent-secret"),
            sdk_app_id="1400006666",
            sign_name="肇庆政数",
            template_id="1",
        ),
        http_sms=HttpSmsSettings(url="http://127.0.0.1:1/sms", token=SecretStr("gateway-token")),
        wecom=WeComSettings(robots={"linye": SecretStr("robot-key")}),
    )


def test_secrets_do_not_show_in_settings_dumps() -> None:
    shown = repr(_all_settings()) + _all_settings().model_dump_json()
    for secret in ("aliyun-secret", "tencent-secret", "gateway-token", "robot-key"):
        assert secret not in shown


async def test_build_channels_makes_one_channel_per_configured_provider() -> None:
    channels = build_channels(_all_settings())
    try:
        assert {name: type(c) for name, c in channels.items()} == {
            "aliyun_sms": AliyunSmsChannel,
            "tencent_sms": TencentSmsChannel,
            "http_sms": HttpSmsChannel,
            "wecom": WeComRobotChannel,
        }
        assert all(len(name) <= 16 for name in channels)  # notification_log.channel
    finally:
        for channel in channels.values():
            await channel.aclose()
    assert build_channels(ChannelsSettings()) == {}

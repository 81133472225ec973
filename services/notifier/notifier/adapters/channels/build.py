"""Channels from settings: the one place that knows which class serves which setting."""

from __future__ import annotations

from duban_shared.clock import Clock

from notifier.adapters.channels.aliyun import AliyunSmsChannel
from notifier.adapters.channels.base import Channel
from notifier.adapters.channels.http_sms import HttpSmsChannel
from notifier.adapters.channels.tencent import TencentSmsChannel
from notifier.adapters.channels.wecom import WeComRobotChannel
from notifier.settings import ChannelsSettings


def build_channels(settings: ChannelsSettings, *, clock: Clock | None = None) -> dict[str, Channel]:
    """Every configured channel by name; the caller closes them (Channel.aclose)."""
    channels: list[Channel] = []
    if settings.aliyun_sms is not None:
        channels.append(AliyunSmsChannel(settings.aliyun_sms))
    if settings.tencent_sms is not None:
        channels.append(TencentSmsChannel(settings.tencent_sms))
    if settings.http_sms is not None:
        channels.append(HttpSmsChannel(settings.http_sms, clock=clock))
    if settings.wecom is not None:
        channels.append(WeComRobotChannel(settings.wecom, clock=clock))
    return {c.name: c for c in channels}

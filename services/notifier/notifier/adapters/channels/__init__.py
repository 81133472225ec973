"""Delivery channels of the notifier: email, SMS (Aliyun, Tencent Cloud, an HTTP gateway) and
WeCom.

Every channel takes an OutgoingMessage and returns a Receipt or raises ChannelError, whose
`code` says whether a retry can help; the dispatcher (`notifier.use_cases.dispatching`) sends
through them.
"""

from notifier.adapters.channels.aliyun import AliyunSmsChannel
from notifier.adapters.channels.base import (
    Channel,
    ChannelError,
    ErrorCode,
    OutgoingMessage,
    Receipt,
)
from notifier.adapters.channels.build import build_channels
from notifier.adapters.channels.http_sms import HttpSmsChannel
from notifier.adapters.channels.tencent import TencentSmsChannel
from notifier.adapters.channels.wecom import WeComRobotChannel

__all__ = [
    "AliyunSmsChannel",
    "Channel",
    "ChannelError",
    "ErrorCode",
    "HttpSmsChannel",
    "OutgoingMessage",
    "Receipt",
    "TencentSmsChannel",
    "WeComRobotChannel",
    "build_channels",
]

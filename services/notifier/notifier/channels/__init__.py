"""Delivery channels of the notifier: SMS (Aliyun, Tencent Cloud, an HTTP gateway) and WeCom.

Every channel takes an OutgoingMessage and returns a Receipt or raises ChannelError, whose
`code` says whether a retry can help. Not yet wired into the stall consumer.
"""

from notifier.channels.aliyun import AliyunSmsChannel
from notifier.channels.base import Channel, ChannelError, ErrorCode, OutgoingMessage, Receipt
from notifier.channels.build import build_channels
from notifier.channels.http_sms import HttpSmsChannel
from notifier.channels.tencent import TencentSmsChannel
from notifier.channels.wecom import WeComRobotChannel

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

"""Settings of each delivery channel, as plain models to nest in NotifierSettings later.

Credentials are SecretStr so that a settings dump, a log line or a validation error never
shows them. Every endpoint is a setting: the tests point the official SDKs at local servers,
and a deployment may need a regional or private endpoint. Timeouts bound one send as a whole;
a slow provider must fail a batch quickly rather than hold a consumer for a minute.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr


class _ChannelSettings(BaseModel):
    timeout_seconds: float = Field(
        default=10.0, gt=0, description="Longest a single send may take, connection included."
    )
    connect_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Longest wait for the connection (capped by timeout)."
    )


class _SmsSettings(_ChannelSettings):
    default_region: str = Field(
        default="CN", description="Region of phone numbers written without a country code."
    )
    max_segments: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Longest text, in SMS parts, filled into the template's text parameter.",
    )


class AliyunSmsSettings(_SmsSettings):
    """Aliyun SMS (Dysmsapi 2017-05-25) through the official SDK."""

    access_key_id: str
    access_key_secret: SecretStr
    sign_name: str = Field(description="Approved sign name (签名), e.g. 肇庆市政数局.")
    template_code: str = Field(description="Approved template, e.g. SMS_123456789.")
    text_param: str = Field(
        default="content", description="Template variable that receives the message text."
    )
    endpoint: str = Field(
        default="dysmsapi.aliyuncs.com", description="Host, or host:port, of the SMS API."
    )
    protocol: Literal["https", "http"] = "https"
    region_id: str = "cn-hangzhou"


class TencentSmsSettings(_SmsSettings):
    """Tencent Cloud SMS (2021-01-11) through the official SDK."""

    secret_id: str
    secret_key: SecretStr
    sdk_app_id: str = Field(description="SmsSdkAppId of the SMS application, e.g. 1400006666.")
    sign_name: str = Field(description="Approved sign name (签名 content, not its id).")
    template_id: str = Field(description="Approved template id.")
    template_param_names: list[str] = Field(
        default_factory=lambda: ["content"],
        min_length=1,
        description="Names of the template's {1}, {2}, ... in order; the text fills 'content'.",
    )
    endpoint: str = Field(
        default="sms.tencentcloudapi.com", description="Host, or host:port, of the SMS API."
    )
    protocol: Literal["https", "http"] = "https"
    region: str = "ap-guangzhou"


class HttpSmsSettings(_SmsSettings):
    """A generic SMS gateway that takes JSON `{to, text, reference}` with a bearer token."""

    url: str = Field(description="Full URL messages are POSTed to.")
    token: SecretStr


class WeComSettings(_ChannelSettings):
    """WeCom (企业微信) group robots.

    Robots are addressed by name: a webhook key lets anyone post into the group, so keys stay
    here as secrets and only names appear in contacts and the notification log.
    """

    webhook_url: str = Field(
        default="https://qyapi.weixin.qq.com/cgi-bin/webhook/send",
        description="Robot webhook endpoint; the robot's key is added as ?key=.",
    )
    robots: dict[str, SecretStr] = Field(
        default_factory=dict, description="Robot name -> webhook key."
    )


class ChannelsSettings(BaseModel):
    """Which channels are configured; a channel left out is not offered."""

    aliyun_sms: AliyunSmsSettings | None = None
    tencent_sms: TencentSmsSettings | None = None
    http_sms: HttpSmsSettings | None = None
    wecom: WeComSettings | None = None

"""Notifier settings (environment prefix DUBAN_NOTIFIER_), the delivery channels' included.

Channel credentials are SecretStr so that a settings dump, a log line or a validation error
never shows them. Every endpoint is a setting: the tests point the official SDKs at local
servers, and a deployment may need a regional or private endpoint. Timeouts bound one send as a
whole; a slow provider must fail a batch quickly rather than hold a consumer for a minute.
"""

from pathlib import Path
from typing import Literal

from duban_shared import topics
from duban_shared.retention import check_inbox_retention
from duban_shared.settings import ServiceSettings
from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict


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


DEVELOPMENT_ACK_SECRET = "development-only-ack-secret-do-not-use-in-production"  # noqa: S105


class NotifierSettings(ServiceSettings):
    """What the notifier needs to run."""

    model_config = SettingsConfigDict(
        env_prefix="DUBAN_NOTIFIER_",
        extra="ignore",
        populate_by_name=True,
        env_nested_delimiter="__",
    )

    database_url: str = "sqlite+aiosqlite:///.run/notifier.db"
    retention_inbox_days: int = Field(
        default=14,
        ge=0,
        description="Days the inbox keeps the id of an applied event (0: forever); at least "
        "DUBAN_KAFKA_RETENTION_MS and the broker's retention.ms of the stalls, notices and "
        "circulars topics.",
    )
    retention_notification_log_days: int = Field(
        default=400,
        ge=0,
        description="Days a finished delivery (sent, failed, superseded, no contact) of a "
        "resolved alert stays in the notification log (0: forever).",
    )
    retention_outbox_days: int = Field(
        default=7, ge=0, description="Days a published outbox row is kept (0: forever)."
    )
    retention_ack_code_days: int = Field(
        default=30,
        ge=0,
        description="Days an acknowledgement link is kept after it expired (0: forever).",
    )
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_start_tls: bool = False
    smtp_use_tls: bool = False
    smtp_timeout_seconds: float = Field(default=15.0, gt=0)
    smtp_ca_file: Path | None = Field(
        default=None,
        description="CA bundle to trust for the SMTP server's certificate (e.g. an internal CA); "
        "the system's trust store when unset.",
    )
    mail_from: str = "督办系统 <duban@localhost>"
    retry_seconds: float = Field(default=5.0, gt=0)
    public_url: str = Field(
        default="http://127.0.0.1:8003",
        description="Where people reach the notifier: acknowledgement links point here.",
    )
    ack_secret: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_ACK_SECRET),
        description="Signs acknowledgement links; production refuses the development default.",
    )
    ack_link_hours: int = Field(default=72, ge=1, le=24 * 30)
    escalation_dir: Path = Field(
        default=Path("data/escalation"),
        description="Escalation policies: <plan-slug>.yaml, default.yaml for the others.",
    )
    dispatch_interval_seconds: float = Field(default=5.0, gt=0)
    escalate_interval_seconds: float = Field(default=60.0, gt=0)
    run_loops: bool = Field(default=True, description="Run the dispatcher and the escalator.")
    retry_base_seconds: float = Field(default=30.0, gt=0)
    retry_cap_seconds: float = Field(default=3600.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    per_recipient_per_hour: float = Field(
        default=30.0, gt=0, description="Messages to one address per hour (per replica)."
    )
    per_recipient_burst: int = Field(default=10, ge=1)
    max_sms_segments: int = Field(default=2, ge=1, le=10)
    channels: ChannelsSettings = Field(
        default_factory=ChannelsSettings,
        description="SMS and WeCom providers, e.g. DUBAN_NOTIFIER_CHANNELS__WECOM__ROBOTS="
        '\'{"office": "<key>"}\'',
    )

    circular_recipients: str = Field(
        default="",
        description="Who receives circulars (通报) by email, comma-separated, e.g. "
        "leader1@example.cn,office@example.cn; none: circulars are not mailed.",
    )

    def circular_recipient_list(self) -> list[str]:
        """The circulars' recipients, in order, each once."""
        seen: list[str] = []
        for raw in self.circular_recipients.split(","):
            address = raw.strip()
            if address and address not in seen:
                seen.append(address)
        return seen

    def wecom_robots(self) -> list[str]:
        """Names of the configured WeCom robots (contacts may name only these)."""
        return sorted(self.channels.wecom.robots) if self.channels.wecom else []

    @model_validator(mode="after")
    def _real_secret_in_production(self) -> "NotifierSettings":
        if (
            self.environment == "production"
            and self.ack_secret.get_secret_value() == DEVELOPMENT_ACK_SECRET
        ):
            raise ValueError(
                "DUBAN_ENVIRONMENT=production needs DUBAN_NOTIFIER_ACK_SECRET: a random string "
                "of at least 32 characters that signs acknowledgement links"
            )
        return self

    @model_validator(mode="after")
    def _one_tls_mode(self) -> "NotifierSettings":
        if self.smtp_start_tls and self.smtp_use_tls:
            raise ValueError(
                "choose one of DUBAN_NOTIFIER_SMTP_START_TLS and DUBAN_NOTIFIER_SMTP_USE_TLS"
            )
        return self

    @property
    def consumed_inbox_topics(self) -> list[str]:
        """The topics whose event ids the inbox remembers (logical names)."""
        return [topics.STALLS, topics.NOTICES, topics.CIRCULARS]

    @model_validator(mode="after")
    def _inbox_outlives_topics(self) -> "NotifierSettings":
        retention = self.event_topic_retention_ms
        check_inbox_retention(
            self.retention_inbox_days,
            dict.fromkeys(self.consumed_inbox_topics, retention),
            source="DUBAN_KAFKA_RETENTION_MS",
            setting="DUBAN_NOTIFIER_RETENTION_INBOX_DAYS",
        )
        return self

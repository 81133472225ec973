"""Notifier settings (environment prefix DUBAN_NOTIFIER_)."""

from pathlib import Path

from duban_shared.settings import ServiceSettings
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from notifier.channels.settings import ChannelsSettings

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

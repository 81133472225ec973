"""Notifier settings (environment prefix DUBAN_NOTIFIER_)."""

from duban_shared.settings import ServiceSettings
from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict


class NotifierSettings(ServiceSettings):
    """What the notifier needs to run."""

    model_config = SettingsConfigDict(
        env_prefix="DUBAN_NOTIFIER_", extra="ignore", populate_by_name=True
    )

    database_url: str = "sqlite+aiosqlite:///.run/notifier.db"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_start_tls: bool = False
    smtp_use_tls: bool = False
    smtp_timeout_seconds: float = Field(default=15.0, gt=0)
    mail_from: str = "督办系统 <duban@localhost>"
    retry_seconds: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _one_tls_mode(self) -> "NotifierSettings":
        if self.smtp_start_tls and self.smtp_use_tls:
            raise ValueError(
                "choose one of DUBAN_NOTIFIER_SMTP_START_TLS and DUBAN_NOTIFIER_SMTP_USE_TLS"
            )
        return self

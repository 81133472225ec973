"""Settings common to every service, read from the environment when the app is built."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Base settings; each service subclasses it with its own `DUBAN_<SERVICE>_` prefix."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    environment: Literal["development", "test", "production"] = Field(
        default="development",
        validation_alias=AliasChoices("environment", "DUBAN_ENVIRONMENT"),
    )
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:19092",
        validation_alias=AliasChoices("kafka_bootstrap_servers", "DUBAN_KAFKA_BOOTSTRAP_SERVERS"),
    )
    topic_prefix: str = Field(
        default="",
        description="Prefix of every topic and consumer group name (isolates tests, tenants).",
        validation_alias=AliasChoices("topic_prefix", "DUBAN_TOPIC_PREFIX"),
    )
    auth_issuer: str = Field(
        default="duban-registry",
        description="The `iss` of access tokens: the registry issues them, every service checks.",
        validation_alias=AliasChoices("auth_issuer", "DUBAN_AUTH_ISSUER"),
    )
    auth_audience: str = Field(
        default="duban",
        description="The `aud` every access token must carry.",
        validation_alias=AliasChoices("auth_audience", "DUBAN_AUTH_AUDIENCE"),
    )
    auth_jwks_url: str = Field(
        default="http://127.0.0.1:8001/.well-known/jwks.json",
        description="Where progress and the notifier fetch the registry's public keys.",
        validation_alias=AliasChoices("auth_jwks_url", "DUBAN_AUTH_JWKS_URL"),
    )
    auth_jwks_refresh_seconds: float = Field(
        default=300.0,
        gt=0,
        description="How old the cached key set may get before it is fetched again.",
        validation_alias=AliasChoices(
            "auth_jwks_refresh_seconds", "DUBAN_AUTH_JWKS_REFRESH_SECONDS"
        ),
    )
    auth_jwks_min_refresh_seconds: float = Field(
        default=30.0,
        ge=0,
        description="Fetch at most this often, e.g. when tokens name an unknown key id.",
        validation_alias=AliasChoices(
            "auth_jwks_min_refresh_seconds", "DUBAN_AUTH_JWKS_MIN_REFRESH_SECONDS"
        ),
    )
    auth_jwks_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        validation_alias=AliasChoices(
            "auth_jwks_timeout_seconds", "DUBAN_AUTH_JWKS_TIMEOUT_SECONDS"
        ),
    )
    auth_leeway_seconds: float = Field(
        default=30.0,
        ge=0,
        description="Clock difference tolerated between the registry and a verifying service.",
        validation_alias=AliasChoices("auth_leeway_seconds", "DUBAN_AUTH_LEEWAY_SECONDS"),
    )
    calendar_dir: Path | None = Field(
        default=None,
        description="Folder of <year>.toml holiday arrangements for years chinese-calendar lacks.",
        validation_alias=AliasChoices("calendar_dir", "DUBAN_CALENDAR_DIR"),
    )
    database_url: str = "sqlite+aiosqlite:///.run/duban.db"
    outbox_poll_seconds: float = 1.0

    @model_validator(mode="after")
    def _no_embedded_database_in_production(self) -> ServiceSettings:
        if self.environment == "production" and self.database_url.startswith("sqlite"):
            raise ValueError(
                "DUBAN_ENVIRONMENT=production but the database is the embedded SQLite default; "
                "set this service's DUBAN_<SERVICE>_DATABASE_URL to a PostgreSQL URL"
            )
        return self

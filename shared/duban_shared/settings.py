"""Settings common to every service, read from the environment when the app is built."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field
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
    database_url: str = "sqlite+aiosqlite:///.run/duban.db"
    outbox_poll_seconds: float = 1.0

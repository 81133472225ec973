"""Registry settings (environment prefix DUBAN_REGISTRY_)."""

from duban_shared.settings import ServiceSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict

MAX_TOKEN_LIFETIME_SECONDS = 3600
"""No access token lives longer: how long a client's revocation must be remembered."""

MAX_SESSION_HOURS = 20
"""No person's session lives longer: the revocations topic forgets entries after a day."""


class RegistrySettings(ServiceSettings):
    """What the registry needs to run."""

    model_config = SettingsConfigDict(
        env_prefix="DUBAN_REGISTRY_", extra="ignore", populate_by_name=True
    )

    database_url: str = "sqlite+aiosqlite:///.run/registry.db"
    default_report_every_working_days: int = 10
    default_grace_working_days: int = 3
    latest_due_years_after_plan: int = Field(
        default=1,
        ge=0,
        le=50,
        description="A due date may lie from 1 January of its plan's year to 31 December this "
        "many years later (1: a 2024 plan's work points are due by 2025-12-31); outside it, "
        "422 due_on_out_of_range.",
    )
    token_lifetime_seconds: int = Field(
        default=600,
        ge=60,
        le=MAX_TOKEN_LIFETIME_SECONDS,
        description="How long an access token from POST /oauth/token is valid.",
    )
    retention_outbox_days: int = Field(
        default=7, ge=0, description="Days a published outbox row is kept (0: forever)."
    )
    retired_key_retention_seconds: int = Field(
        default=86400,
        ge=3600,
        description="How long a retired signing key stays in the JWKS (and is accepted).",
    )
    session_hours: float = Field(
        default=10,
        gt=0,
        le=MAX_SESSION_HOURS,
        description="How long a person's session (POST /v1/sessions) lasts: a working day.",
    )
    lockout_failures: int = Field(
        default=5,
        ge=1,
        le=100,
        description="Wrong passwords or TOTP codes in a row that lock a personal account.",
    )
    lockout_minutes: float = Field(
        default=15,
        gt=0,
        le=24 * 60,
        description="How long a personal account stays locked after too many failures.",
    )

"""Registry settings (environment prefix DUBAN_REGISTRY_)."""

from duban_shared.settings import ServiceSettings
from pydantic_settings import SettingsConfigDict


class RegistrySettings(ServiceSettings):
    """What the registry needs to run."""

    model_config = SettingsConfigDict(
        env_prefix="DUBAN_REGISTRY_", extra="ignore", populate_by_name=True
    )

    database_url: str = "sqlite+aiosqlite:///.run/registry.db"
    default_report_every_working_days: int = 10
    default_grace_working_days: int = 3

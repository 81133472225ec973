"""Progress settings (environment prefix DUBAN_PROGRESS_)."""

from duban_shared.settings import ServiceSettings
from pydantic import Field
from pydantic_settings import SettingsConfigDict


class ProgressSettings(ServiceSettings):
    """What progress needs to run."""

    model_config = SettingsConfigDict(
        env_prefix="DUBAN_PROGRESS_", extra="ignore", populate_by_name=True
    )

    database_url: str = "sqlite+aiosqlite:///.run/progress.db"
    sweep_interval_seconds: float = Field(default=60.0, gt=0)
    sweep_batch_size: int = Field(default=500, ge=1)
    max_clock_skew_seconds: int = Field(default=300, ge=0)
    run_sweeper: bool = True
    rate_per_second: float = Field(default=20.0, gt=0, description="Per client, per replica.")
    rate_burst: int = Field(default=200, ge=1)
    late_after_days: int = Field(
        default=7, ge=1, description="A report this much older than its arrival is marked late."
    )
    batch_max_events: int = Field(default=100, ge=1, le=1000)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)

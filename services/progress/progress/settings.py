"""Progress settings (environment prefix DUBAN_PROGRESS_)."""

from duban_shared import topics
from duban_shared.retention import check_inbox_retention
from duban_shared.settings import ServiceSettings
from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict


class ProgressSettings(ServiceSettings):
    """What progress needs to run."""

    model_config = SettingsConfigDict(
        env_prefix="DUBAN_PROGRESS_", extra="ignore", populate_by_name=True
    )

    database_url: str = "sqlite+aiosqlite:///.run/progress.db"
    sweep_interval_seconds: float = Field(default=60.0, gt=0)
    status_gather_ms: int = Field(
        default=40,
        ge=0,
        le=500,
        description="The status consumer lets the broker gather up to 64 KiB of reports for "
        "this long before a fetch returns: larger batches, fewer transactions (0: none).",
    )
    sweep_batch_size: int = Field(default=500, ge=1)
    retention_inbox_days: int = Field(
        default=14,
        ge=0,
        description="Days the inbox keeps the id of an applied status event (0: forever); at "
        "least DUBAN_KAFKA_RETENTION_MS and the broker's retention.ms of duban.status.v1.",
    )
    retention_outbox_days: int = Field(
        default=7, ge=0, description="Days a published outbox row is kept (0: forever)."
    )
    retention_ingested_days: int = Field(
        default=30,
        ge=0,
        description="Days the ingestion API remembers an accepted event id and its answer, so "
        "a resend gets the first answer (0: forever); past it a resend is accepted again and "
        "the consumer's inbox and the report history absorb it.",
    )
    max_clock_skew_seconds: int = Field(default=300, ge=0)
    run_sweeper: bool = True
    background: bool = Field(
        default=True,
        description="Run the consumers, the outbox relay and the sweeper in this process. "
        "False for API-only processes (`serve --workers N`) beside a `duban-progress worker`.",
    )
    rate_per_second: float = Field(default=20.0, gt=0, description="Per client, per API process.")
    rate_burst: int = Field(default=200, ge=1)
    late_after_days: int = Field(
        default=7, ge=1, description="A report this much older than its arrival is marked late."
    )
    earliest_report_days_before_plan: int = Field(
        default=90,
        ge=0,
        le=3650,
        description="A report about a moment more than this many days before its plan starts "
        "(1 January of the plan's year) is refused: 422 occurred_at_before_plan.",
    )
    latest_due_years_after_plan: int = Field(
        default=1,
        ge=0,
        le=50,
        description="A work point snapshot due later than 31 December of this many years after "
        "its plan's year is parked (due_on_out_of_range); keep it equal to the registry's.",
    )
    batch_max_events: int = Field(default=100, ge=1, le=1000)
    produce_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="How long a report waits for the broker's acknowledgement before it is "
        "answered 503 broker_unavailable (the agency resends it with the same event_id).",
    )
    metrics_cache_seconds: float = Field(
        default=30.0,
        ge=0,
        description="The open-stalls gauge queries the database at most this often.",
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    registry_url: str | None = Field(
        default=None,
        description="Where the board exchanges client credentials for tokens (POST /oauth/token); "
        "derived from DUBAN_AUTH_JWKS_URL when unset.",
    )
    notifier_url: str = Field(
        default="http://127.0.0.1:8003",
        description="The notifier's API: the board reads alerts there with the user's token.",
    )
    trace_ui_url: str | None = Field(
        default=None,
        description="A trace viewer's page with {trace_id}, e.g. "
        "http://127.0.0.1:16686/trace/{trace_id}; the board links each alert to its trace.",
    )
    trace_query_url: str | None = Field(
        default=None,
        description="The trace backend's query API (Jaeger), e.g. http://127.0.0.1:16686: when "
        "no trace viewer is set, the board shows an alert's trace itself at "
        "/board/traces/{trace_id} (office only).",
    )

    evidence_dir: str = Field(
        default=".run/evidence",
        description="Where evidence files uploaded with the board's reporting form are kept "
        "(a folder per agency); back it up with the database.",
    )
    evidence_max_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1024,
        le=100 * 1024 * 1024,
        description="The largest evidence file the reporting form takes (10 MiB).",
    )
    evidence_max_files: int = Field(
        default=3, ge=0, le=10, description="Evidence files per report from the form."
    )
    public_url: str | None = Field(
        default=None,
        description="The board's address as people reach it (e.g. https://duban.example.gov.cn):"
        " evidence files' links are made with it; taken from each request when unset.",
    )

    @property
    def report_form_max_bytes(self) -> int:
        """The body limit of the reporting form: its files and 1 MiB for the rest."""
        return self.evidence_max_files * self.evidence_max_bytes + 1024 * 1024

    circular_weekly: bool = Field(
        default=False,
        description="Publish a weekly circular (通报) of every tracked plan at 09:00 (Asia/"
        "Shanghai) on the first working day of each week.",
    )
    circular_monthly: bool = Field(
        default=False,
        description="Publish a monthly circular at 09:00 on the first working day of each month.",
    )
    circular_check_seconds: float = Field(
        default=60.0, gt=0, description="How often the background loop looks for a due circular."
    )
    circular_number_prefix: str = Field(
        default="肇数督通",
        min_length=1,
        max_length=20,
        description="The issuing office's prefix of a circular's 文号: 肇数督通〔2024〕3号.",
    )

    circular_issuer: str = Field(
        default="肇庆市政务服务数据管理局督查督办室",
        min_length=1,
        max_length=60,
        description="The issuing office signed at the end of a circular.",
    )

    @property
    def circular_kinds(self) -> tuple[str, ...]:
        """The scheduled circulars' kinds: weekly, monthly, both or none."""
        return tuple(
            kind
            for kind, on in (("weekly", self.circular_weekly), ("monthly", self.circular_monthly))
            if on
        )

    @property
    def consumed_inbox_topics(self) -> list[str]:
        """The topics whose event ids the inbox remembers (logical names)."""
        return [topics.STATUS, topics.ALERTS]

    @model_validator(mode="after")
    def _inbox_outlives_topics(self) -> "ProgressSettings":
        retention = self.event_topic_retention_ms
        check_inbox_retention(
            self.retention_inbox_days,
            dict.fromkeys(self.consumed_inbox_topics, retention),
            source="DUBAN_KAFKA_RETENTION_MS",
            setting="DUBAN_PROGRESS_RETENTION_INBOX_DAYS",
        )
        return self

    @property
    def registry_base_url(self) -> str:
        """The registry's base URL: the setting, else the JWKS URL without its path."""
        if self.registry_url:
            return self.registry_url.rstrip("/")
        return self.auth_jwks_url.removesuffix("/.well-known/jwks.json").rstrip("/")

"""Settings common to every service, read from the environment when the app is built."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from duban_shared.clock import Clock, ScaledClock, SystemClock
from duban_shared.kafka import RetryPolicy
from duban_shared.throttle import LoginThrottle
from duban_shared.topics import DEFAULT_EVENT_RETENTION_MS


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
    auth_throttle_free_failures: int = Field(
        default=5,
        ge=0,
        description="Failed logins (token endpoint, board) per client id and per source address "
        "before each further attempt must wait.",
        validation_alias=AliasChoices(
            "auth_throttle_free_failures", "DUBAN_AUTH_THROTTLE_FREE_FAILURES"
        ),
    )
    auth_throttle_first_delay_seconds: float = Field(
        default=1.0,
        gt=0,
        description="The wait after the first failure past the free ones; doubled after each "
        "further failure.",
        validation_alias=AliasChoices(
            "auth_throttle_first_delay_seconds", "DUBAN_AUTH_THROTTLE_FIRST_DELAY_SECONDS"
        ),
    )
    auth_throttle_max_delay_seconds: float = Field(
        default=300.0,
        gt=0,
        description="The longest wait between two attempts of a throttled client or address.",
        validation_alias=AliasChoices(
            "auth_throttle_max_delay_seconds", "DUBAN_AUTH_THROTTLE_MAX_DELAY_SECONDS"
        ),
    )
    auth_throttle_forget_seconds: float = Field(
        default=900.0,
        gt=0,
        description="Failures are forgotten this long after the last one.",
        validation_alias=AliasChoices(
            "auth_throttle_forget_seconds", "DUBAN_AUTH_THROTTLE_FORGET_SECONDS"
        ),
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses or networks (CIDR) of reverse proxies whose "
        "X-Forwarded-Proto and X-Forwarded-For are believed (the request's scheme, e.g. for the "
        "board cookie's Secure flag, and its source address, for login throttling); empty: "
        "none, the connection is what it is.",
        validation_alias=AliasChoices("trusted_proxies", "DUBAN_TRUSTED_PROXIES"),
    )
    calendar_dir: Path | None = Field(
        default=None,
        description="Folder of <year>.toml holiday arrangements for years chinese-calendar lacks.",
        validation_alias=AliasChoices("calendar_dir", "DUBAN_CALENDAR_DIR"),
    )
    database_url: str = "sqlite+aiosqlite:///.run/duban.db"
    database_pool_size: int = Field(
        default=10,
        ge=1,
        description="Connections each process keeps open to PostgreSQL (busy moments may open "
        "as many again; those are closed when returned).",
    )
    outbox_poll_seconds: float = 1.0
    consumer_attempts: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Tries of a record that fails by itself (bad data, a rule, a date that "
        "cannot be counted) before it is parked on the service's dead-letter topic.",
        validation_alias=AliasChoices("consumer_attempts", "DUBAN_CONSUMER_ATTEMPTS"),
    )
    consumer_retry_seconds: float = Field(
        default=1.0,
        gt=0,
        description="First pause of a consumer after a failure, doubled after each further one.",
        validation_alias=AliasChoices("consumer_retry_seconds", "DUBAN_CONSUMER_RETRY_SECONDS"),
    )
    consumer_retry_max_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Longest pause between a consumer's retries during an outage.",
        validation_alias=AliasChoices(
            "consumer_retry_max_seconds", "DUBAN_CONSUMER_RETRY_MAX_SECONDS"
        ),
    )
    consumer_stuck_seconds: float = Field(
        default=120.0,
        gt=0,
        description="A consumer with records waiting that has not advanced this long makes "
        "/healthz answer 503 consumer_stuck.",
        validation_alias=AliasChoices("consumer_stuck_seconds", "DUBAN_CONSUMER_STUCK_SECONDS"),
    )
    kafka_retention_ms: int = Field(
        default=DEFAULT_EVENT_RETENTION_MS,
        ge=-1,
        description="How long the event topics (delete policy, no retention.ms of their own in "
        "deploy/kafka/topics.txt) keep a record: the topic scripts create them with it, and "
        "each service's inbox must keep event ids at least this long (-1: forever).",
        validation_alias=AliasChoices("kafka_retention_ms", "DUBAN_KAFKA_RETENTION_MS"),
    )
    run_retention: bool = Field(
        default=True,
        description="Prune the tables that only grow in this process's background (the "
        "processes that run the consumers); `prune` on the command line does it by hand.",
    )
    retention_interval_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="How often the background prunes the tables that only grow.",
    )
    retention_batch_size: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="Rows deleted per statement (each its own short transaction) by retention.",
    )
    retention_pause_seconds: float = Field(
        default=0.1,
        ge=0,
        description="Pause between two batches of retention, so hot paths get the database.",
    )
    sim_clock_start: datetime | None = Field(
        default=None,
        description="Run domain time on a simulated clock from this aware moment (demos); "
        "unset: the wall clock.",
        validation_alias=AliasChoices("sim_clock_start", "DUBAN_SIM_CLOCK_START"),
    )
    sim_clock_rate: float = Field(
        default=1.0,
        gt=0,
        description="Simulated seconds per real second.",
        validation_alias=AliasChoices("sim_clock_rate", "DUBAN_SIM_CLOCK_RATE"),
    )
    sim_clock_epoch: float | None = Field(
        default=None,
        gt=0,
        description="The wall moment (unix seconds) the simulated clock shows its start; the "
        "same for every process of a stack, so they agree on the time.",
        validation_alias=AliasChoices("sim_clock_epoch", "DUBAN_SIM_CLOCK_EPOCH"),
    )
    sim_clock_end: datetime | None = Field(
        default=None,
        description="The simulated clock stops at this aware moment (optional).",
        validation_alias=AliasChoices("sim_clock_end", "DUBAN_SIM_CLOCK_END"),
    )

    @property
    def event_topic_retention_ms(self) -> int | None:
        """The event topics' retention in ms as the settings say (None: forever)."""
        return None if self.kafka_retention_ms < 0 else self.kafka_retention_ms

    def login_throttle(self, clock: Clock) -> LoginThrottle:
        """The throttle of failed logins these settings describe (duban_shared.throttle)."""
        return LoginThrottle(
            clock,
            free_failures=self.auth_throttle_free_failures,
            first_delay=self.auth_throttle_first_delay_seconds,
            max_delay=max(
                self.auth_throttle_max_delay_seconds, self.auth_throttle_first_delay_seconds
            ),
            forget_after=self.auth_throttle_forget_seconds,
        )

    @property
    def trusted_proxy_list(self) -> list[str]:
        """The trusted proxies as a list (empty: trust none)."""
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]

    def retry_policy(self, pause_seconds: float | None = None) -> RetryPolicy:
        """How this service's consumers and connections retry (duban_shared.kafka)."""
        return RetryPolicy(
            attempts=self.consumer_attempts,
            pause_seconds=pause_seconds or self.consumer_retry_seconds,
            max_pause_seconds=self.consumer_retry_max_seconds,
        )

    def domain_clock(self, wall: Clock | None = None) -> Clock:
        """The clock of domain time: a ScaledClock when DUBAN_SIM_CLOCK_* is set, else `wall`."""
        wall = wall or SystemClock()
        if self.sim_clock_start is None or self.sim_clock_epoch is None:
            return wall
        return ScaledClock(
            self.sim_clock_start,
            self.sim_clock_rate,
            datetime.fromtimestamp(self.sim_clock_epoch, UTC),
            wall=wall,
            end=self.sim_clock_end,
        )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: str) -> str:
        for entry in (p.strip() for p in value.split(",")):
            if not entry or entry == "*":
                continue
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"DUBAN_TRUSTED_PROXIES: {entry!r} is not an IP address or network (CIDR)"
                ) from None
        return value

    @model_validator(mode="after")
    def _complete_sim_clock(self) -> ServiceSettings:
        start, end = self.sim_clock_start, self.sim_clock_end
        if start is not None and start.tzinfo is None:
            raise ValueError(
                "DUBAN_SIM_CLOCK_START needs a time zone, e.g. 2024-01-02T08:30:00+08:00"
            )
        if end is not None and end.tzinfo is None:
            raise ValueError(
                "DUBAN_SIM_CLOCK_END needs a time zone, e.g. 2024-12-31T18:00:00+08:00"
            )
        if start is None and (
            self.sim_clock_epoch is not None or end is not None or self.sim_clock_rate != 1.0
        ):
            raise ValueError(
                "DUBAN_SIM_CLOCK_RATE, _EPOCH and _END need DUBAN_SIM_CLOCK_START (the simulated "
                "moment the clock starts from)"
            )
        if start is not None and self.sim_clock_epoch is None:
            raise ValueError(
                "DUBAN_SIM_CLOCK_START needs DUBAN_SIM_CLOCK_EPOCH: the wall moment in unix "
                "seconds (date +%s) it corresponds to, the same for every process"
            )
        if start is not None and end is not None and end <= start:
            raise ValueError("DUBAN_SIM_CLOCK_END must come after DUBAN_SIM_CLOCK_START")
        if self.environment == "production" and start is not None:
            raise ValueError("DUBAN_SIM_CLOCK_* is for demos; production runs on the wall clock")
        return self

    @model_validator(mode="after")
    def _no_embedded_database_in_production(self) -> ServiceSettings:
        if self.environment == "production" and self.database_url.startswith("sqlite"):
            raise ValueError(
                "DUBAN_ENVIRONMENT=production but the database is the embedded SQLite default; "
                "set this service's DUBAN_<SERVICE>_DATABASE_URL to a PostgreSQL URL"
            )
        return self

"""The one description of a hygge project's configuration.

Every key a user can write in ``hygge.yml`` (or a flow or entity file) is a field
here, with its default and its validation. Unknown keys are errors. Home and store
blocks are validated in a second stage by the model their ``type:`` registered
(see ``hygge_core.home`` and ``hygge_core.store``), so each type owns its keys.
"""

from __future__ import annotations

import typing
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from hygge_core.durations import Duration

RunType = Literal["full_drop", "incremental"]
SchemaChange = Literal["fail", "evolve", "full_drop"]
RUN_TYPES: tuple[RunType, ...] = typing.get_args(RunType)
StepMode = Literal["auto", "entity", "flow"]
"""How a flow's entities map to Dagster steps: ``entity``: one step (one process) each; ``flow``: one step
that runs them on threads; ``auto``: ``flow`` for flows of many entities, ``entity`` for a few."""
TimePeriod = Literal["hourly", "daily", "weekly", "monthly"]
AuthMode = Literal["azure_ad", "service_principal", "managed_identity", "azure_cli", "sql"]


class StrictModel(BaseModel):
    """Base for every config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ConnectionConfig(StrictModel):
    """A named database endpoint. Homes refer to it with ``connection: <name>``."""

    type: Literal["mssql", "postgres"] = Field(description="database kind")
    server: str = Field(description="host name or address")
    port: int | None = Field(default=None, description="TCP port; 1433 for mssql and 5432 for postgres when unset")
    database: str = Field(description="database (catalog) name")
    auth: AuthMode = Field(default="sql", description="how to log in; Azure modes apply to mssql only")
    user: str | None = Field(default=None, description="login name for auth: sql (and client id for service_principal)")
    password: SecretStr | None = Field(default=None, description="password for auth: sql; use ${ENV_VAR}")
    tenant_id: str | None = Field(default=None, description="Azure tenant for service_principal")
    client_id: str | None = Field(default=None, description="Azure client id (service_principal, user-assigned managed_identity)")
    client_secret: SecretStr | None = Field(default=None, description="Azure client secret for service_principal")
    driver: str | None = Field(default=None, description="ODBC driver name or file; discovered when unset")
    encrypt: bool = Field(default=True, description="mssql: encrypt the connection")
    trust_server_certificate: bool = Field(default=False, description="mssql: skip certificate validation")
    options: dict[str, str] = Field(
        default_factory=dict,
        description="extra connection keywords: ODBC keywords for reader: odbc, libpq keywords (sslmode, ...) for reader: native",
    )
    reader: Literal["native", "odbc"] | None = Field(
        default=None,
        description="postgres: native (ADBC, binary COPY; the default) or odbc (psqlODBC); mssql reads through ODBC only",
    )
    pool_size: int = Field(
        default=4, ge=1, le=256, description="most connections open at once; also the Dagster concurrency limit"
    )
    login_timeout: Duration = Field(default=timedelta(seconds=15), description="give up connecting after this long")
    acquire_timeout: Duration = Field(default=timedelta(seconds=300), description="wait this long for a free pooled connection")
    max_lifetime: Duration = Field(default=timedelta(hours=1), description="close pooled connections older than this")

    @model_validator(mode="after")
    def _reader_fits_type(self) -> ConnectionConfig:
        if self.type == "mssql" and self.reader == "native":
            raise ValueError("reader: native is for postgres connections; SQL Server reads through ODBC (leave reader unset)")
        if self.native_reader and self.driver is not None:
            raise ValueError(
                "driver: names an ODBC driver, and this postgres connection reads natively; add reader: odbc to use it"
            )
        return self

    @property
    def native_reader(self) -> bool:
        """Whether this connection reads through the native PostgreSQL reader (ADBC) rather than ODBC."""
        return self.type == "postgres" and self.reader != "odbc"


class WatermarkConfig(StrictModel):
    """What makes an incremental load incremental."""

    column: str | None = Field(default=None, description="column whose high-water mark is stored (datetime or integer)")
    key: str | list[str] | None = Field(default=None, description="unique key column(s); de-duplicates the lookback window")
    lookback: Duration | None = Field(default=None, description="re-read this far behind the watermark (late rows)")

    @property
    def key_columns(self) -> list[str]:
        if self.key is None:
            return []
        return [self.key] if isinstance(self.key, str) else list(self.key)


class RetryConfig(StrictModel):
    """How a failed entity is retried. Only transient errors are retried."""

    max: int = Field(default=2, ge=0, le=100, description="retries after the first attempt")
    delay: Duration = Field(default=timedelta(seconds=10), description="wait before the first retry")
    backoff: Literal["constant", "linear", "exponential"] = Field(
        default="exponential", description="how the delay grows between retries"
    )
    jitter: bool = Field(default=True, description="randomise delays so retries do not stampede")


class ScheduleConfig(StrictModel):
    """A flow's schedule; `schedule: "0 2 * * *"` is short for `schedule: {cron: "0 2 * * *"}`."""

    cron: str = Field(description="cron expression, e.g. '0 2 * * *'")
    timezone: str = Field(default="UTC", description="IANA timezone the cron is read in")


class FreshnessConfig(StrictModel):
    """Dagster freshness policy: the asset is stale when older than ``max_lag``."""

    max_lag: Duration = Field(description="fail freshness when the last load is older than this")
    warn_lag: Duration | None = Field(default=None, description="warn when older than this")


class ChecksConfig(StrictModel):
    """Which asset checks a flow's entities get (all on by default)."""

    row_count: bool = Field(default=True, description="rows written equal rows read from the source window (blocking)")
    schema_drift: bool = Field(default=True, description="warn when the schema differs from the previous load")
    not_empty: bool = Field(default=True, description="warn when a full drop lands zero rows")
    unique_key: bool = Field(default=True, description="declared key columns are unique and not null")


class TimePartitionsConfig(StrictModel):
    """Cut an incremental SQL entity into periods that load (and reload) on their own; Dagster backfills choose ranges.

    Each partition reads ``start <= column < end`` and its publish replaces exactly
    that partition's rows (see the README's "Time partitions").
    """

    period: TimePeriod = Field(description="length of one partition; weeks start on Monday")
    start: str = Field(description="first partition's start, e.g. 2024-01-01 (local time in timezone; opens a period)")
    column: str | None = Field(
        default=None, description="date or timestamp column the windows filter on; defaults to watermark.column"
    )
    timezone: str = Field(default="UTC", description="IANA timezone the periods are cut in")

    @field_validator("start", mode="before")
    @classmethod
    def _start_text(cls, value: Any) -> Any:
        return value.isoformat() if isinstance(value, (date, datetime)) else value  # YAML reads 2024-01-01 as a date

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}; use an IANA name such as UTC or Europe/Copenhagen") from None
        return value

    @model_validator(mode="after")
    def _start_opens_a_period(self) -> TimePartitionsConfig:
        from hygge_core.time_partitions import check_start  # the period arithmetic lives there; it imports this module

        try:
            start = datetime.fromisoformat(self.start)
        except ValueError:
            raise ValueError(f"start {self.start!r} is not a date or date-time (write 2024-01-01)") from None
        if start.tzinfo is not None:
            raise ValueError(f"start {self.start!r} has a UTC offset; give local time and set timezone instead")
        check_start(self)
        return self

    def start_at(self) -> datetime:
        """The first partition's start, in ``timezone``."""
        return datetime.fromisoformat(self.start).replace(tzinfo=ZoneInfo(self.timezone))


class EntityConfig(StrictModel):
    """One entity given as a mapping: a name plus overrides of its flow's settings."""

    name: str = Field(description="entity name: a folder name in the store, `{entity}` in templates")
    home: dict[str, Any] = Field(default_factory=dict, description="keys merged over the flow's home")
    store: dict[str, Any] = Field(default_factory=dict, description="keys merged over the flow's store")
    run_type: RunType | None = Field(default=None, description="overrides the flow's run_type")
    schema_change: SchemaChange | None = Field(default=None, description="overrides the flow's schema_change")
    watermark: WatermarkConfig | None = Field(default=None, description="overrides the flow's watermark")
    time_partitions: TimePartitionsConfig | None = Field(default=None, description="overrides the flow's time_partitions")


class EntityDiscovery(StrictModel):
    """Entities discovered from the home (folders, or a database catalog)."""

    include: list[str] = Field(default_factory=lambda: ["*"], description="glob patterns on names (schema.table for SQL)")
    exclude: list[str] = Field(default_factory=list, description="glob patterns removed after include")


class FlowDagsterConfig(StrictModel):
    """How Dagster runs this flow (the project's ``dagster:`` block holds the defaults)."""

    step: StepMode | None = Field(
        default=None, description="entity: a step (process) per entity; flow: one step for all; auto: by entity count"
    )


class FlowConfig(StrictModel):
    """One home type to one store type, with defaults for its entities."""

    home: dict[str, Any] = Field(description="where data comes from; `type:` picks the home")
    store: dict[str, Any] = Field(description="where data lands; `type:` picks the store")
    entities: list[str | EntityConfig] | EntityDiscovery | None = Field(
        default=None, description="names, mappings with overrides, or include/exclude discovery; none = the flow is one entity"
    )
    run_type: RunType = Field(default="full_drop", description="full_drop replaces each entity; incremental appends what is new")
    schema_change: SchemaChange = Field(
        default="fail",
        description="an incremental run whose schema differs from the published version's: fail (destination unchanged), "
        "evolve (add nullable columns, widen types, rewrite existing files in the same publish) or full_drop (reload the entity)",
    )
    watermark: WatermarkConfig | None = Field(default=None, description="incremental high-water mark (SQL homes)")
    time_partitions: TimePartitionsConfig | None = Field(
        default=None,
        description="load in periods, each its own atomic publish, Dagster partitions for backfills (incremental SQL homes)",
    )
    queue_size: int = Field(default=4, ge=1, le=1000, description="batches buffered between reader and writer")
    retries: RetryConfig = Field(default_factory=RetryConfig, description="retries of transient failures per entity")
    schedule: ScheduleConfig | None = Field(default=None, description="cron schedule for the flow's Dagster group")
    freshness: FreshnessConfig | None = Field(default=None, description="Dagster freshness policy for each entity")
    checks: ChecksConfig = Field(default_factory=ChecksConfig, description="which asset checks run")
    description: str | None = Field(default=None, description="shown on every entity's asset")
    owners: list[str] = Field(default_factory=list, description="Dagster asset owners (emails or team:name)")
    tags: dict[str, str] = Field(default_factory=dict, description="Dagster asset tags")
    dagster: FlowDagsterConfig = Field(default_factory=FlowDagsterConfig, description="how Dagster runs this flow")

    @field_validator("schedule", mode="before")
    @classmethod
    def _schedule_shorthand(cls, value: Any) -> Any:
        return {"cron": value} if isinstance(value, str) else value

    @field_validator("home", "store")
    @classmethod
    def _needs_type(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "type" not in value:
            raise ValueError("needs a `type:` key (for example `type: parquet`)")
        return value


class DagsterConfig(StrictModel):
    """How the Dagster face runs this project."""

    executor: Literal["multiprocess", "in_process"] = "multiprocess"
    start_method: Literal["forkserver", "spawn"] = Field(default="forkserver", description="multiprocess start method")
    source_assets: bool = Field(
        default=False,
        description="add external source assets for lineage: [connection, schema, table] for SQL homes, [files, folder] for Parquet homes",
    )
    step: StepMode = Field(
        default="auto", description="entity: a step (process) per entity; flow: one step per flow; auto: flow for many entities"
    )


class ProjectConfig(StrictModel):
    name: str = Field(description="project name (defaults to the folder name)")
    concurrency: int = Field(default=4, ge=1, le=256, description="entities run at once (CLI and Dagster executor)")
    connections: dict[str, ConnectionConfig] = Field(default_factory=dict, description="named database endpoints")
    flows: dict[str, FlowConfig] = Field(default_factory=dict, description="flows inline; or flows/<name>/flow.yml")
    dagster: DagsterConfig = Field(default_factory=DagsterConfig, description="how Dagster runs the project")

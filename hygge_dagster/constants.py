"""Names hygge puts into Dagster: metadata keys, tags, pool names. One place, so tests and UIs agree."""

from __future__ import annotations

import re

# Run tag: every entity of a run tagged with it uses this run type (one of hygge_core.config.RUN_TYPES).
RUN_TYPE_TAG = "hygge/run_type"

# Asset tags (visible and selectable in the UI: `tag:hygge/flow=files_to_lake`).
FLOW_TAG = "hygge/flow"
CONNECTION_TAG = "hygge/connection"

# Definition metadata (static, from the plan).
META_FLOW = "hygge/flow"
META_ENTITY = "hygge/entity"
META_SOURCE = "hygge/source"
META_DESTINATION = "hygge/destination"
META_RUN_TYPE = "hygge/run_type"
META_WATERMARK_COLUMN = "hygge/watermark_column"
META_KEY_COLUMNS = "hygge/key_columns"
META_TIME_PARTITIONS = "hygge/time_partitions"  # "daily on at (UTC) from 2024-01-01"
META_TABLE_NAME = "dagster/table_name"
META_COLUMN_LINEAGE = "dagster/column_lineage"
META_CODE_REFERENCES = "dagster/code_references"
META_SOURCE_ASSET = "hygge/source_asset"  # the upstream asset whose same-named columns the lake's columns come from

# Every entity asset's kinds: the home's type, the store's type and this one.
HYGGE_KIND = "hygge"

# Materialisation metadata (from the engine's EntityResult).
META_ROW_COUNT = "dagster/row_count"  # rows in the published table (what the UI plots), not this run's
META_ROWS_LOADED = "hygge/rows_loaded"  # rows this run loaded
META_URI = "dagster/uri"  # where readers find the table (never with credentials)
META_STORE_PREFIX = "hygge/"  # + a store's own facts, e.g. hygge/delta_version
META_COLUMN_SCHEMA = "dagster/column_schema"
META_ROWS_PER_SECOND = "hygge/rows_per_second"
META_DURATION = "hygge/duration_seconds"
META_BYTES = "hygge/bytes"
META_FILES = "hygge/files"
META_SOURCE_ROWS = "hygge/source_rows"
META_PARTITION = "hygge/partition"  # a partition run's key and window: "partition 2024-01-01 (at >= ... and < ...)"
META_WATERMARK_BEFORE = "hygge/watermark_before"
META_WATERMARK_AFTER = "hygge/watermark_after"
META_PUBLISHED = "hygge/published"
META_ATTEMPT = "hygge/attempt"
META_ERROR_TYPE = "hygge/error_type"

# The job over every entity asset: what `hygge start` runs, and what the UI re-executes (in the code location).
RUN_JOB_NAME = "hygge_entities"

# Dagster's own run tags on a re-execution (``dagster._core.storage.tags``; spelled out to stay off private modules).
PARENT_RUN_ID_TAG = "dagster/parent_run_id"
RESUME_RETRY_TAG = "dagster/is_resume_retry"

POOL_PREFIX = "hygge_"

# Op name of a step that carries a whole flow's entities (``dagster: {step: flow}``); entity steps are named
# after their asset key, and this prefix keeps the two apart.
SHARED_STEP_PREFIX = "hygge_flow__"

# Step failure metadata of a shared step: ``{"flow/entity": error}`` for each entity that failed in it.
META_FAILED_ENTITIES = "hygge/failed_entities"

# Modules the forkserver imports once, so step processes forked from it pay no import cost.
# ``import dagster`` alone leaves out the instance storage (sqlalchemy, alembic) and the
# step-execution machinery, which every step otherwise imported again (~0.5-0.8 s each).
PRELOAD_MODULES = (
    "dagster",
    "dagster._core.storage.sqlite_storage",
    "dagster._core.instance.factory",
    "dagster._core.execution.api",
    "dagster._core.executor.child_process_executor",
    "dagster._core.definitions.repository_definition.repository_data_builder",
    "dagster._core.workspace.autodiscovery",
    "pyarrow.parquet",
    "polars",
    "hygge_core",
    "hygge_dagster",
)

_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def sanitize(name: str) -> str:
    """A Dagster-safe name: every character outside ``A-Za-z0-9_`` becomes ``_``.

    Dagster rejects spaces, dots and non-ASCII letters in asset keys and op names;
    the raw name is kept in metadata so nothing is lost.
    """
    cleaned = _UNSAFE.sub("_", name)
    return cleaned or "_"


def pool_name(connection: str) -> str:
    """The Dagster pool holding one slot per running entity of a SQL connection."""
    return POOL_PREFIX + sanitize(connection)

"""Materialisation metadata, built only from the engine's ``EntityResult`` (never parsed from logs)."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
from dagster import AssetKey, MetadataValue, TableColumn, TableColumnDep, TableColumnLineage, TableSchema

from hygge_core.result import EntityResult
from hygge_core.state import Watermark
from hygge_core.store import PublishResult
from hygge_dagster import constants as c


def result_metadata(result: EntityResult, *, attempt: int, source: AssetKey | None = None) -> dict[str, object]:
    """What a materialisation (or, for an unchanged entity, an observation) records.

    ``dagster/row_count`` is the rows in the published table, as the store read them back
    after its commit: the UI plots it as the table's size, so an incremental append shows
    the total and a run with nothing new (an observation) records none rather than a dip
    to zero. This run's rows are ``hygge/rows_loaded``. With the ``source`` asset upstream
    of the entity, the written columns' identity lineage from it (Dagster reads column
    lineage from materialisations).
    """
    metadata: dict[str, object] = {
        c.META_ROWS_LOADED: MetadataValue.int(result.rows),
        c.META_ROWS_PER_SECOND: MetadataValue.float(round(result.rows_per_second, 1)),
        c.META_DURATION: MetadataValue.float(round(result.seconds, 6)),
        c.META_BYTES: MetadataValue.int(result.bytes),
        c.META_FILES: MetadataValue.int(result.files),
        c.META_RUN_TYPE: MetadataValue.text(result.run_type),
        c.META_DESTINATION: MetadataValue.path(result.destination),
        c.META_SOURCE: MetadataValue.text(result.source),
        c.META_PUBLISHED: MetadataValue.bool(result.published),
        c.META_WATERMARK_BEFORE: MetadataValue.text(_watermark_text(result.watermark_before)),
        c.META_WATERMARK_AFTER: MetadataValue.text(_watermark_text(result.watermark_after)),
        c.META_ATTEMPT: MetadataValue.int(attempt),
    }
    if result.partition is not None:
        metadata[c.META_PARTITION] = MetadataValue.text(result.partition.describe())
    if result.source_rows is not None:
        metadata[c.META_SOURCE_ROWS] = MetadataValue.int(result.source_rows)
    if result.publish is not None:
        metadata.update(publish_metadata(result.publish))
    if result.schema is not None:
        metadata[c.META_COLUMN_SCHEMA] = MetadataValue.table_schema(table_schema(result.schema))
        if source is not None:
            metadata[c.META_COLUMN_LINEAGE] = MetadataValue.column_lineage(column_lineage(result.schema.names, source))
    return metadata


def publish_metadata(publish: PublishResult) -> dict[str, object]:
    """What the store read back after its commit: table rows, address and its own facts (e.g. a Delta version)."""
    metadata: dict[str, object] = {}
    if publish.table_rows is not None:
        metadata[c.META_ROW_COUNT] = MetadataValue.int(publish.table_rows)
    if publish.uri is not None:
        metadata[c.META_URI] = MetadataValue.text(publish.uri)
    for name, value in publish.details().items():
        key = c.META_STORE_PREFIX + name
        metadata[key] = MetadataValue.int(value) if isinstance(value, int) else MetadataValue.text(value)
    return metadata


def table_schema(schema: pa.Schema) -> TableSchema:
    """Dagster's column schema from the Arrow schema that was written (types as Arrow spells them)."""
    return columns_schema([(field.name, str(field.type)) for field in schema])


def columns_schema(columns: Sequence[tuple[str, str]]) -> TableSchema:
    """Dagster's column schema from ``(name, arrow type)`` pairs, as a commit record keeps them."""
    return TableSchema(columns=[TableColumn(name=name, type=kind) for name, kind in columns])


def column_lineage(columns: Sequence[str], source: AssetKey) -> TableColumnLineage:
    """Identity lineage: hygge copies columns, so each lake column comes from the source's column of the same name."""
    return TableColumnLineage(deps_by_column={name: [TableColumnDep(asset_key=source, column_name=name)] for name in columns})


def _watermark_text(watermark: Watermark | None) -> str:
    """``column = value`` or ``none``: text, because a watermark may be a date, a number or a string."""
    return "none" if watermark is None else f"{watermark.column} = {watermark.value}"

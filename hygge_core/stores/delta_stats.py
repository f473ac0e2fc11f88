"""Delta ``add`` statistics for a data file hygge wrote itself, taken from its Parquet footer.

Readers skip files by these statistics (Delta's data skipping), so a wrong bound
would silently drop rows from query results. Hence only bounds that are exact in
Parquet and in Delta's JSON are written, each one safe: a minimum is never above the
file's true minimum, a maximum never below its true maximum.

- Every column: ``nullCount`` when each row group recorded one.
- Minimum and maximum for integers, booleans, dates, text of at most
  ``MAX_TEXT_CHARS`` characters, and timestamps with a zone (Delta keeps
  milliseconds: the minimum is rounded down, the maximum up).
- None for floating point (Parquet leaves NaN out of its bounds, and some readers
  order NaN above every number), decimals (delta-rs writes them as JSON floats,
  which round), binary, timestamps without a zone (readers disagree on their text
  form) and nested columns. Readers then read those files for any filter: slower,
  never wrong.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

# Spark's default for string statistics (delta.dataSkippingStringPrefixLength); longer text gets no bounds.
MAX_TEXT_CHARS = 32
_UNIT_DIVISOR = {"milliseconds": 1, "microseconds": 1_000, "nanoseconds": 1_000_000}  # to milliseconds
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def file_stats(metadata: pq.FileMetaData, schema: pa.Schema) -> str:
    """The ``stats`` JSON of one data file's ``add`` action."""
    minimum: dict[str, Any] = {}
    maximum: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    columns = {metadata.schema.column(index).path: index for index in range(metadata.num_columns)}
    for field in schema:
        index = columns.get(field.name)
        if index is None:  # a nested column: its leaves have dotted paths
            continue
        null_count = _null_count(metadata, index)
        if null_count is not None:
            nulls[field.name] = null_count
        bounds = _bounds(metadata, index, field.type)
        if bounds is not None:
            minimum[field.name], maximum[field.name] = bounds
    stats = {"numRecords": metadata.num_rows, "minValues": minimum, "maxValues": maximum, "nullCount": nulls}
    return json.dumps(stats, separators=(",", ":"))


def _null_count(metadata: pq.FileMetaData, index: int) -> int | None:
    total = 0
    for group in range(metadata.num_row_groups):
        statistics = metadata.row_group(group).column(index).statistics
        if statistics is None or not statistics.has_null_count:
            return None
        total += statistics.null_count
    return total


def _bounds(metadata: pq.FileMetaData, index: int, kind: pa.DataType) -> tuple[Any, Any] | None:
    """The file's (minimum, maximum) of one column in Delta's JSON form, or ``None`` when none is safe."""
    if not (
        pa.types.is_integer(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_date32(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or (pa.types.is_timestamp(kind) and kind.tz is not None)
    ):
        return None
    lows: list[Any] = []
    highs: list[Any] = []
    for group in range(metadata.num_row_groups):
        statistics = metadata.row_group(group).column(index).statistics
        if statistics is None:
            return None
        if not statistics.has_min_max:
            if statistics.has_null_count and statistics.null_count == metadata.row_group(group).num_rows:
                continue  # only nulls in this row group: nothing to bound
            return None
        lows.append(statistics.min_raw if pa.types.is_timestamp(kind) else statistics.min)
        highs.append(statistics.max_raw if pa.types.is_timestamp(kind) else statistics.max)
    if not lows:
        return None
    low, high = min(lows), max(highs)
    if pa.types.is_date32(kind):
        return low.isoformat(), high.isoformat()
    if pa.types.is_timestamp(kind):
        unit = json.loads(metadata.schema.column(index).logical_type.to_json()).get("timeUnit")
        divisor = _UNIT_DIVISOR.get(unit)
        if divisor is None:
            return None
        return _utc_millis(low // divisor), _utc_millis(-(-high // divisor))  # floor, ceiling
    if isinstance(low, str) and (len(low) > MAX_TEXT_CHARS or len(high) > MAX_TEXT_CHARS):
        return None
    return low, high


def _utc_millis(millis: int) -> str:
    """Delta's text of a timestamp with a zone: ISO 8601 in UTC, milliseconds, ``Z``."""
    moment = _EPOCH + dt.timedelta(milliseconds=millis)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

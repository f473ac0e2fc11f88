"""Watermarks: which Arrow types can carry one, and the high-water mark of a column across batches.

Both the flow (tracking the column in the data) and the SQL homes (asking the server
for ``MAX(column)``) name a watermark's kind and compare it with the stored one
through the two functions here, so the rules and their messages exist once.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa

from hygge_core.errors import HomeError
from hygge_core.state import Watermark, WatermarkKind


def watermark_kind(data_type: pa.DataType, *, column: str, label: str) -> WatermarkKind:
    """The kind of watermark a column of ``data_type`` holds; other types are an error naming the column."""
    if pa.types.is_integer(data_type):
        return "int"
    if pa.types.is_timestamp(data_type):
        return "datetime"
    if pa.types.is_date(data_type):
        return "date"
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return "string"
    raise HomeError(f"{label}: watermark column {column!r} is {data_type}; use an integer, date, timestamp or string column")


def make_watermark(column: str, kind: WatermarkKind, value: Any) -> Watermark:
    text = value.isoformat() if isinstance(value, (dt.datetime, dt.date)) else str(value)
    return Watermark(column=column, kind=kind, value=text)


def require_same_column(stored: Watermark | None, column: str, kind: WatermarkKind, *, label: str) -> None:
    """Refuse to compare a stored mark with one on another column or of another kind.

    Comparing an int mark with a datetime one would raise a bare TypeError, and a mark on
    another column says nothing about this one anyway.
    """
    if stored is not None and (stored.column, stored.kind) != (column, kind):
        raise HomeError(
            f"{label}: the stored watermark is on {stored.column!r} ({stored.kind}) but this run tracks "
            f"{column!r} ({kind}); run the entity once as full_drop (--full-drop) to start the new watermark"
        )


class WatermarkTracker:
    """The maximum of one column over every batch written, computed in Arrow."""

    def __init__(self, column: str, *, label: str) -> None:
        self.column = column
        self.label = label
        self.maximum: Any = None
        self.kind: WatermarkKind | None = None

    def update(self, data: pa.Table | pa.RecordBatch) -> None:
        if data.num_rows == 0:
            return
        index = data.schema.get_field_index(self.column)
        if index < 0:
            raise HomeError(
                f"{self.label}: watermark column {self.column!r} is not in the data; columns: {', '.join(data.schema.names)}"
            )
        self.kind = self.kind or watermark_kind(data.schema.field(index).type, column=self.column, label=self.label)
        import pyarrow.compute as pc  # 28 ms of import, needed only by incremental runs

        value = pc.max(data.column(index)).as_py()
        if value is not None and (self.maximum is None or value > self.maximum):
            self.maximum = value

    def result(self) -> Watermark | None:
        if self.maximum is None or self.kind is None:
            return None
        return make_watermark(self.column, self.kind, self.maximum)

"""Track the high-water mark of a column across batches, in Arrow, without touching rows in Python."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from hygge_core.errors import HomeError
from hygge_core.state import Watermark


class WatermarkTracker:
    def __init__(self, column: str, *, label: str) -> None:
        self.column = column
        self.label = label
        self.maximum: Any = None
        self.kind: str | None = None

    def update(self, data: pa.Table | pa.RecordBatch) -> None:
        if data.num_rows == 0:
            return
        index = data.schema.get_field_index(self.column)
        if index < 0:
            raise HomeError(f"{self.label}: watermark column {self.column!r} is not in the data; columns: {', '.join(data.schema.names)}")
        column_type = data.schema.field(index).type
        self.kind = self.kind or _kind(column_type, self.column, self.label)
        value = pc.max(data.column(index)).as_py()
        if value is not None and (self.maximum is None or value > self.maximum):
            self.maximum = value

    def result(self) -> Watermark | None:
        if self.maximum is None or self.kind is None:
            return None
        value = self.maximum.isoformat() if isinstance(self.maximum, (dt.datetime, dt.date)) else str(self.maximum)
        return Watermark(column=self.column, kind=self.kind, value=value)


def _kind(data_type: pa.DataType, column: str, label: str) -> str:
    if pa.types.is_integer(data_type):
        return "int"
    if pa.types.is_timestamp(data_type):
        return "datetime"
    if pa.types.is_date(data_type):
        return "date"
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return "string"
    raise HomeError(f"{label}: watermark column {column!r} is {data_type}; use an integer, date, timestamp or string column")

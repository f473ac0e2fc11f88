"""One schema per entity run: unify what sources offer, and make every batch match it.

Rules are deliberately narrow. A column may be missing from some inputs (it is
filled with nulls), or be null-typed in one and typed in another, or widen within
a family (int32 → int64, float32 → float64, timestamp units). Anything else is a
conflict, reported with both sources and the column name.
"""

from __future__ import annotations

import pyarrow as pa

from hygge_core.errors import HomeError, StoreError


def unify(named_schemas: list[tuple[str, pa.Schema]]) -> pa.Schema:
    """Merge schemas in order; raise ``HomeError`` naming both sources and the column on conflict."""
    if not named_schemas:
        raise ValueError("nothing to unify")
    merged_label, merged = named_schemas[0]
    origin = {name: merged_label for name in merged.names}
    for label, schema in named_schemas[1:]:
        if schema == merged:
            continue
        fields = list(merged)
        index = {field.name: i for i, field in enumerate(fields)}
        for field in schema:
            if field.name not in index:
                fields.append(field.with_nullable(True))
                index[field.name] = len(fields) - 1
                origin[field.name] = label
                continue
            current = fields[index[field.name]]
            widened = widen(current.type, field.type)
            if widened is None:
                raise HomeError(
                    f"column {field.name!r} is {current.type} in {origin[field.name]} but {field.type} in {label}; "
                    "make the files agree or load them as separate entities"
                )
            fields[index[field.name]] = current.with_type(widened).with_nullable(current.nullable or field.nullable)
        missing = set(merged.names) - set(schema.names)
        for name in missing:
            fields[index[name]] = fields[index[name]].with_nullable(True)
        merged = pa.schema(fields)
    return merged


def conform(data: pa.Table | pa.RecordBatch, schema: pa.Schema) -> pa.Table | pa.RecordBatch:
    """Return ``data`` with exactly ``schema``: columns reordered, missing ones null, types widened."""
    if data.schema == schema:
        return data
    if data.schema.equals(schema, check_metadata=False):
        return data.replace_schema_metadata(schema.metadata)
    columns = []
    for field in schema:
        position = data.schema.get_field_index(field.name)
        if position < 0:
            if not field.nullable:
                raise StoreError(f"column {field.name!r} is missing from a batch and is not nullable")
            columns.append(pa.nulls(data.num_rows, type=field.type))
            continue
        column = data.column(position)
        if column.type != field.type:
            if widen(field.type, column.type) != field.type:
                raise StoreError(
                    f"column {field.name!r} changed type mid-run from {field.type} to {column.type}; "
                    "the source must give one type per column"
                )
            column = column.cast(field.type)
        columns.append(column)
    extra = set(data.schema.names) - set(schema.names)
    if extra:
        raise StoreError(f"a batch has columns not in the entity's schema: {', '.join(sorted(extra))}")
    if isinstance(data, pa.RecordBatch):
        return pa.RecordBatch.from_arrays(columns, schema=schema)
    return pa.Table.from_arrays(columns, schema=schema)


def widen(a: pa.DataType, b: pa.DataType) -> pa.DataType | None:
    """The common type of ``a`` and ``b`` under hygge's narrow rules, or ``None``."""
    if a == b:
        return a
    if pa.types.is_null(a):
        return b
    if pa.types.is_null(b):
        return a
    if pa.types.is_signed_integer(a) and pa.types.is_signed_integer(b):
        return a if a.bit_width >= b.bit_width else b
    if pa.types.is_unsigned_integer(a) and pa.types.is_unsigned_integer(b):
        return a if a.bit_width >= b.bit_width else b
    if pa.types.is_floating(a) and pa.types.is_floating(b):
        return a if a.bit_width >= b.bit_width else b
    if pa.types.is_string(a) and pa.types.is_large_string(b) or pa.types.is_large_string(a) and pa.types.is_string(b):
        return pa.large_string()
    if pa.types.is_timestamp(a) and pa.types.is_timestamp(b) and a.tz == b.tz:
        finer = {"s": 0, "ms": 1, "us": 2, "ns": 3}
        return a if finer[a.unit] >= finer[b.unit] else b
    return None

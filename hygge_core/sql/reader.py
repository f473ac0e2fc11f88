"""Stream a SELECT as Arrow record batches in hygge's canonical types.

The driver is asked for the fetch schema (what it can fill directly) and every
batch leaves here in the published schema; the only difference today is the
UTC tag on zoned timestamps, a metadata-only cast.
"""

from __future__ import annotations

from collections.abc import Generator

import pyarrow as pa

from hygge_core.sql.connection import ReadOptions, SqlConnection


def stream(
    connection: SqlConnection,
    query: str,
    *,
    fetch_schema: pa.Schema | None,
    published_schema: pa.Schema | None,
    options: ReadOptions,
    during: str,
) -> Generator[pa.RecordBatch, None, None]:
    for batch in connection.read_batches(query, fetch_schema, options, during=during):
        if published_schema is None or batch.schema.equals(published_schema, check_metadata=False):
            yield batch
            continue
        columns = [
            column if column.type == field.type else column.cast(field.type)
            for column, field in zip(batch.columns, published_schema, strict=True)
        ]
        yield pa.RecordBatch.from_arrays(columns, schema=published_schema)

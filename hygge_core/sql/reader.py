"""Stream a SELECT as Arrow record batches in hygge's canonical types.

The driver is asked for the fetch schema (what it can fill directly) and every
batch leaves here in the published schema: the UTC tag on zoned timestamps (a
metadata-only cast), and decimals that travelled as their unscaled int64
(``hygge_core.sql.typemap``), re-read in place without touching the values.
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
        columns = [_published(column, field.type) for column, field in zip(batch.columns, published_schema, strict=True)]
        yield pa.RecordBatch.from_arrays(columns, schema=published_schema)


def _published(column: pa.Array, published: pa.DataType) -> pa.Array:
    if column.type == published:
        return column
    if pa.types.is_decimal(published) and pa.types.is_int64(column.type):
        # the unscaled value: 1234 of numeric(15,2) is 12.34; decimal128(p,0) and (p,s) share one layout
        return column.cast(pa.decimal128(19, 0)).view(published)  # every int64 fits 19 digits
    return column.cast(published)

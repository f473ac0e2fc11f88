"""One snapshot for a whole read, shared by the range readers of a parallel read (PostgreSQL).

The home's own connection opens a ``REPEATABLE READ READ ONLY`` transaction
before its first catalog query, so the column list, ``MAX(watermark)``,
``COUNT(*)``, ``MIN/MAX(key)`` and every row read agree. For a parallel read it
exports that snapshot (``pg_export_snapshot()``) and stays in the transaction
until every range is read (it reads ranges itself), which keeps the snapshot
importable. Each other range reader runs ``BEGIN ISOLATION LEVEL REPEATABLE READ``
and ``SET TRANSACTION SNAPSHOT '<id>'`` before its query and commits after it,
so rows committed by other sessions during the read are in no range, and a row
whose key moves between ranges is read exactly once, as it was.
"""

from __future__ import annotations

from collections.abc import Generator

import pyarrow as pa

from hygge_core.sql.connection import SqlConnection


def in_snapshot(
    connection: SqlConnection, snapshot_id: str, batches: Generator[pa.RecordBatch, None, None], *, during: str
) -> Generator[pa.RecordBatch, None, None]:
    """``batches`` (not yet started) read on ``connection`` inside the exported snapshot ``snapshot_id``."""
    connection.join_snapshot(snapshot_id, during=f"{during} (importing the read's snapshot)")
    try:
        yield from batches
    finally:
        batches.close()
    if not connection.broken:
        connection.end_snapshot(during=f"{during} (ending the snapshot)")


__all__ = ["in_snapshot"]

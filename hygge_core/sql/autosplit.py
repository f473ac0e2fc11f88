"""Automatic parallel reads: whether, on which column and in how many key ranges a table is split without ``partitions:``.

A table is split only where every range reads the same snapshot (the native
PostgreSQL reader exports one; see ``hygge_core.sql.snapshot``), so a table
that changes during the read is never published as a mix of two moments.

The column is the leading column of the primary key (its index serves each
range's ``>= / <`` scan), else the first column of a declared ``watermark.key``;
either must be an integer, date or timestamp column. The row count is the exact
``COUNT(*)`` of the window when the home counted it, else the catalog's estimate
(``pg_class.reltuples`` scaled to the relation's current pages, as the planner
does). Readers are ``min(pool_size, cores)``: each range stream needs about one
core between the driver and the server. There are ``RANGES_PER_READER`` ranges
per reader, so a skewed key (most rows in one value span) still spreads: a reader
that finishes early takes the next unread range.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from hygge_core.sql.connection import SqlConnection
from hygge_core.sql.dialect import Dialect, SelectColumn, TableName

RANGES_PER_READER = 2


@dataclass(frozen=True)
class SplitPlan:
    """A decided automatic split: ``ranges`` key ranges on ``column``, read by at most ``readers`` connections."""

    column: SelectColumn
    ranges: int
    readers: int


def splittable(column: SelectColumn) -> bool:
    """Integer, date and timestamp keys: ordered the same by the server and Python, split by arithmetic."""
    arrow = column.mapping.arrow
    return pa.types.is_integer(arrow) or pa.types.is_date(arrow) or pa.types.is_timestamp(arrow)


def choose_column(columns: Sequence[SelectColumn], primary_key: str | None, watermark_key: Sequence[str]) -> SelectColumn | None:
    """The primary key's leading column, else the watermark key's first column, when splittable; ``None`` otherwise."""
    by_name = {column.source.name: column for column in columns}
    for name in (primary_key, *watermark_key[:1]):
        column = by_name.get(name) if name else None
        if column is not None and splittable(column):
            return column
    return None


def estimated_rows(reltuples: float | None, relpages: int | None, pages_now: int | None) -> int | None:
    """The planner's estimate: tuples per page at the last ANALYZE times the pages the table has now."""
    if reltuples is None or reltuples < 0:  # never analyzed or vacuumed
        return None
    if relpages and pages_now is not None:
        return int(reltuples / relpages * pages_now)
    return int(reltuples)


def plan_split(
    column: SelectColumn | None, rows: int | None, *, min_rows: int | None, pool_size: int, cores: int | None = None
) -> SplitPlan | None:
    """A split when there is a column, the table holds at least ``min_rows`` and more than one reader can run."""
    if column is None or rows is None or min_rows is None or rows < min_rows:
        return None
    readers = min(pool_size, cores or os.cpu_count() or 1)
    if readers < 2:
        return None
    ranges = min(readers * RANGES_PER_READER, max(2, rows // max(1, min_rows // RANGES_PER_READER)))
    return SplitPlan(column, ranges, readers)


def plan_automatic(
    connection: SqlConnection,
    dialect: Dialect,
    table: TableName,
    columns: Sequence[SelectColumn],
    *,
    watermark_key: Sequence[str],
    counted: int | None,
    min_rows: int | None,
    pool_size: int,
) -> SplitPlan | None:
    """The split for ``table``, asking the catalog only what the decision needs; ``None``: read one stream.

    A counted window below ``min_rows`` asks nothing; the size estimate is read only when there is a column
    and no count.
    """
    if min_rows is None or (counted is not None and counted < min_rows):
        return None
    primary = None
    pk_query = dialect.primary_key_query(table)
    if pk_query is not None:
        found = connection.fetch_all(pk_query[0], parameters=pk_query[1], during=f"reading the primary key of {table}")
        primary = found.column(0)[0].as_py() if found.num_rows else None
    column = choose_column(columns, primary, watermark_key)
    rows = counted
    estimate_query = dialect.size_estimate_query(table)
    if column is not None and rows is None and estimate_query is not None:
        found = connection.fetch_all(estimate_query[0], parameters=estimate_query[1], during=f"estimating the size of {table}")
        if found.num_rows:
            row = found.to_pylist()[0]
            rows = estimated_rows(row["reltuples"], row["relpages"], row["pages_now"])
    return plan_split(column, rows, min_rows=min_rows, pool_size=pool_size)


__all__ = ["RANGES_PER_READER", "SplitPlan", "choose_column", "estimated_rows", "plan_automatic", "plan_split", "splittable"]

"""The SQL hygge generates, per dialect: quoting, catalog queries, select lists and watermark predicates.

Identifiers are always quoted by the dialect (``[x]`` for SQL Server, ``"x"`` for
PostgreSQL), never pasted. Watermark values are rendered from typed Python
values (``int``, ``datetime``, ``date``, ``str``) as literals cast to the
column's declared type, so ``datetime`` columns compare as ``datetime`` (SQL
Server would otherwise widen them to ``datetime2`` and re-read rows with
fractions like .003).
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from hygge_core.errors import HomeError
from hygge_core.sql.typemap import Mapping, SourceColumn, mssql_mapping, postgres_mapping


@dataclass(frozen=True)
class TableName:
    schema: str | None
    table: str

    def __str__(self) -> str:
        return f"{self.schema}.{self.table}" if self.schema else self.table


@dataclass(frozen=True)
class SelectColumn:
    source: SourceColumn
    mapping: Mapping
    expression: str  # the select-list item, aliased to the column's name


@dataclass(frozen=True)
class Window:
    """Rows to read: above ``lower`` (exclusive) and at most ``upper``, on ``column``.

    ``half_open``: ``lower <= column < upper`` instead, a time partition's period, so
    adjacent partitions share a bound and never a row.
    """

    column: str
    lower: Any | None
    upper: Any
    declared: str | None = None  # the column's declared SQL type, for literal casts
    half_open: bool = False


@dataclass(frozen=True)
class KeyRange:
    """One slice of a partitioned read: ``lower <= column < upper`` (either bound may be open), plus NULLs if asked.

    The outermost slices are open-ended, so a row inserted below the MIN or above
    the MAX seen when the ranges were planned still lands in exactly one slice.
    Adjacent slices share one literal as bound (``< b`` and ``>= b``), so they
    stay disjoint however the server rounds that literal to the column's type.
    """

    column: str
    lower: Any | None
    upper: Any | None
    nulls: bool = False
    declared: str | None = None


class Dialect(ABC):
    name: str
    default_schema: str
    system_schemas: tuple[str, ...]

    @abstractmethod
    def quote(self, identifier: str) -> str: ...

    @abstractmethod
    def tables_query(self) -> str:
        """Rows of (schema, table) for every base table a user can read."""

    @abstractmethod
    def columns_query(self, table: TableName) -> tuple[str, list[str]]:
        """(query, parameters) giving one row per column in order; see ``source_column``."""

    @abstractmethod
    def source_column(self, row: dict[str, Any]) -> SourceColumn: ...

    @abstractmethod
    def mapping(self, column: SourceColumn) -> Mapping: ...

    @abstractmethod
    def literal(self, value: Any, declared: str | None) -> str: ...

    def parse_name(self, text: str) -> TableName:
        """Split ``schema.table`` (each part optionally quoted with the dialect's quotes) into its parts."""
        parts = _split_identifier(text.strip(), self.open_quotes())
        if len(parts) == 1:
            return TableName(None, parts[0])
        if len(parts) == 2:
            return TableName(parts[0], parts[1])
        raise HomeError(f"{text!r} is not a table name; write table or schema.table (quote names containing dots)")

    def open_quotes(self) -> dict[str, str]:
        return {'"': '"'}

    def relation(self, table: TableName) -> str:
        schema = table.schema or self.default_schema
        return f"{self.quote(schema)}.{self.quote(table.table)}"

    def query_relation(self, query: str) -> str:
        return f"({query.strip().rstrip(';')}) AS hygge_source"

    def select_columns(self, columns: Sequence[SourceColumn]) -> list[SelectColumn]:
        chosen = []
        for column in columns:
            mapping = self.mapping(column)
            quoted = self.quote(column.name)
            if mapping.expression is not None:
                expression = f"{mapping.expression.format(column=quoted)} AS {quoted}"
            elif mapping.cast_to is not None:
                expression = f"CAST({quoted} AS {mapping.cast_to}) AS {quoted}"
            else:
                expression = quoted
            chosen.append(SelectColumn(column, mapping, expression))
        return chosen

    def select(
        self, columns: Sequence[SelectColumn] | None, relation: str, window: Window | None, key_range: KeyRange | None = None
    ) -> str:
        select_list = ", ".join(column.expression for column in columns) if columns else "*"
        return f"SELECT {select_list} FROM {relation}{self.where(window, key_range)}"

    def where(self, window: Window | None, key_range: KeyRange | None = None) -> str:
        conditions = self._window_conditions(window) + self._range_conditions(key_range)
        return f" WHERE {' AND '.join(conditions)}" if conditions else ""

    def _window_conditions(self, window: Window | None) -> list[str]:
        if window is None:
            return []
        column = self.quote(window.column)
        below, above = ("<", ">=") if window.half_open else ("<=", ">")
        upper = f"{column} {below} {self.literal(window.upper, window.declared)}"
        if window.lower is None:
            return [upper]
        return [f"{column} {above} {self.literal(window.lower, window.declared)}", upper]

    def _range_conditions(self, key_range: KeyRange | None) -> list[str]:
        if key_range is None:
            return []
        column = self.quote(key_range.column)
        bounds = []
        if key_range.lower is not None:
            bounds.append(f"{column} >= {self.literal(key_range.lower, key_range.declared)}")
        if key_range.upper is not None:
            bounds.append(f"{column} < {self.literal(key_range.upper, key_range.declared)}")
        if not key_range.nulls:
            return bounds if bounds else [f"{column} IS NOT NULL"]
        if not bounds:
            return []  # every key, NULL or not: the whole window
        return [f"({' AND '.join(bounds)} OR {column} IS NULL)"]

    def max_query(self, column: str, relation: str) -> str:
        return f"SELECT MAX({self.quote(column)}) AS hygge_max FROM {relation}"

    def key_bounds_query(self, column: str, relation: str, window: Window | None) -> str:
        """MIN and MAX of a partition key within the run's window (NULL keys are ignored, as SQL does)."""
        quoted = self.quote(column)
        return f"SELECT MIN({quoted}) AS hygge_min, MAX({quoted}) AS hygge_max FROM {relation}{self.where(window)}"

    def count_query(self, relation: str, window: Window | None) -> str:
        return f"SELECT COUNT(*) AS hygge_count FROM {relation}{self.where(window)}"

    def primary_key_query(self, table: TableName) -> tuple[str, list[str]] | None:
        """(query, parameters) giving the primary key's leading column as ``column_name`` (automatic splits only)."""
        return None

    def size_estimate_query(self, table: TableName) -> tuple[str, list[str]] | None:
        """(query, parameters) giving the catalog's ``reltuples``, ``relpages`` and ``pages_now`` (automatic splits only)."""
        return None

    def schema_for(self, columns: Sequence[SelectColumn]) -> tuple[pa.Schema, pa.Schema]:
        """(the schema asked of the driver, the schema published)."""
        fetch = pa.schema([pa.field(c.source.name, c.mapping.fetch_type) for c in columns])
        published = pa.schema([pa.field(c.source.name, c.mapping.arrow) for c in columns])
        return fetch, published


class PostgresDialect(Dialect):
    name = "postgres"
    default_schema = "public"
    system_schemas = ("pg_catalog", "information_schema", "pg_toast")

    def quote(self, identifier: str) -> str:
        if "\x00" in identifier:
            raise HomeError(f"identifier {identifier!r} contains a NUL character")
        return '"' + identifier.replace('"', '""') + '"'

    def tables_query(self) -> str:
        return (
            "SELECT n.nspname AS schema_name, c.relname AS table_name FROM pg_catalog.pg_class c "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%' "
            "AND has_table_privilege(c.oid, 'SELECT') ORDER BY 1, 2"
        )

    def columns_query(self, table: TableName) -> tuple[str, list[str]]:
        query = (
            "SELECT a.attname AS column_name, t.typname AS type_name, "
            "format_type(a.atttypid, a.atttypmod) AS declared, "
            "CASE WHEN t.typname = 'numeric' AND a.atttypmod > 0 THEN ((a.atttypmod - 4) >> 16) & 65535 END AS numeric_precision, "
            "CASE WHEN t.typname = 'numeric' AND a.atttypmod > 0 THEN (a.atttypmod - 4) & 65535 END AS numeric_scale "
            "FROM pg_catalog.pg_attribute a "
            "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
            "WHERE n.nspname = ? AND c.relname = ? AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
        )
        return query, [table.schema or self.default_schema, table.table]

    def primary_key_query(self, table: TableName) -> tuple[str, list[str]] | None:
        query = (
            "SELECT a.attname AS column_name FROM pg_catalog.pg_index i "
            "JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
            "WHERE i.indrelid = CAST(? AS regclass) AND i.indisprimary"
        )
        return query, [self.relation(table)]

    def size_estimate_query(self, table: TableName) -> tuple[str, list[str]] | None:
        query = (
            "SELECT CAST(c.reltuples AS float8) AS reltuples, CAST(c.relpages AS int8) AS relpages, "
            "CAST(pg_relation_size(c.oid) / current_setting('block_size')::int AS int8) AS pages_now "
            "FROM pg_catalog.pg_class c WHERE c.oid = CAST(? AS regclass)"
        )
        return query, [self.relation(table)]

    def source_column(self, row: dict[str, Any]) -> SourceColumn:
        type_name = str(row["type_name"]).lower()
        if type_name.startswith("_"):
            type_name = "array"
        return SourceColumn(
            name=row["column_name"],
            type_name=type_name,
            declared=row["declared"],
            precision=_int(row.get("numeric_precision")),
            scale=_int(row.get("numeric_scale")),
        )

    def mapping(self, column: SourceColumn) -> Mapping:
        return postgres_mapping(column)

    def literal(self, value: Any, declared: str | None) -> str:
        if isinstance(value, bool):
            raise HomeError("a boolean column cannot be a watermark")
        if isinstance(value, int):
            return str(int(value))
        if isinstance(value, dt.datetime):
            text = value.isoformat(sep=" ")
            return f"CAST('{text}' AS {declared or ('timestamptz' if value.tzinfo else 'timestamp')})"
        if isinstance(value, dt.date):
            return f"CAST('{value.isoformat()}' AS {declared or 'date'})"
        if isinstance(value, str):
            return "'" + value.replace("'", "''") + "'"
        raise HomeError(f"cannot use a {type(value).__name__} value as a watermark; use an integer, date or timestamp column")


class TSqlDialect(Dialect):
    name = "mssql"
    default_schema = "dbo"
    system_schemas = ("sys", "INFORMATION_SCHEMA")

    def quote(self, identifier: str) -> str:
        if "\x00" in identifier:
            raise HomeError(f"identifier {identifier!r} contains a NUL character")
        return "[" + identifier.replace("]", "]]") + "]"

    def open_quotes(self) -> dict[str, str]:
        return {"[": "]", '"': '"'}

    def tables_query(self) -> str:
        return (
            "SELECT s.name AS schema_name, t.name AS table_name FROM sys.tables AS t "
            "JOIN sys.schemas AS s ON s.schema_id = t.schema_id "
            "WHERE t.is_ms_shipped = 0 ORDER BY s.name, t.name"
        )

    def columns_query(self, table: TableName) -> tuple[str, list[str]]:
        query = (
            "SELECT c.name AS column_name, TYPE_NAME(c.system_type_id) AS type_name, "
            "c.max_length AS max_length, c.precision AS numeric_precision, c.scale AS numeric_scale "
            "FROM sys.columns AS c WHERE c.object_id = OBJECT_ID(?) ORDER BY c.column_id"
        )
        return query, [self.relation(table)]

    def source_column(self, row: dict[str, Any]) -> SourceColumn:
        type_name = str(row["type_name"]).lower()
        precision = _int(row.get("numeric_precision"))
        scale = _int(row.get("numeric_scale"))
        max_length = _int(row.get("max_length"))
        return SourceColumn(
            name=row["column_name"],
            type_name=type_name,
            declared=_tsql_declared(type_name, precision, scale, max_length),
            precision=precision,
            scale=scale,
            length=max_length,
        )

    def mapping(self, column: SourceColumn) -> Mapping:
        return mssql_mapping(column)

    def literal(self, value: Any, declared: str | None) -> str:
        if isinstance(value, bool):
            raise HomeError("a bit column cannot be a watermark")
        if isinstance(value, int):
            return str(int(value))
        if isinstance(value, dt.datetime):
            if value.tzinfo is not None:
                return f"CAST('{value.isoformat()}' AS {declared or 'datetimeoffset(7)'})"
            return f"CAST('{value.isoformat()}' AS {declared or 'datetime2(7)'})"
        if isinstance(value, dt.date):
            return f"CAST('{value.isoformat()}' AS {declared or 'date'})"
        if isinstance(value, str):
            return "N'" + value.replace("'", "''") + "'"
        raise HomeError(f"cannot use a {type(value).__name__} value as a watermark; use an integer, date or datetime column")


DIALECTS: dict[str, Dialect] = {"postgres": PostgresDialect(), "mssql": TSqlDialect()}


def _tsql_declared(type_name: str, precision: int | None, scale: int | None, max_length: int | None) -> str:
    if type_name in ("decimal", "numeric"):
        return f"{type_name}({precision},{scale})"
    if type_name in ("datetime2", "datetimeoffset", "time"):
        return f"{type_name}({scale})"
    if type_name in ("varchar", "char", "varbinary", "binary"):
        return f"{type_name}({'max' if max_length == -1 else max_length})"
    if type_name in ("nvarchar", "nchar"):
        return f"{type_name}({'max' if max_length == -1 else (max_length or 2) // 2})"
    return type_name


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _split_identifier(text: str, quotes: dict[str, str]) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    index = 0
    quoted_part = False
    while index < len(text):
        char = text[index]
        if char in quotes and not current:
            closing = quotes[char]
            index += 1
            while True:
                if index >= len(text):
                    raise HomeError(f"unclosed {char} in table name {text!r}")
                if text[index] == closing:
                    if index + 1 < len(text) and text[index + 1] == closing:
                        current.append(closing)
                        index += 2
                        continue
                    index += 1
                    break
                current.append(text[index])
                index += 1
            quoted_part = True
            continue
        if char == ".":
            parts.append("".join(current))
            current, quoted_part = [], False
            index += 1
            continue
        if quoted_part:
            raise HomeError(f"unexpected {char!r} after a quoted name in {text!r}")
        current.append(char)
        index += 1
    parts.append("".join(current))
    if any(part == "" for part in parts):
        raise HomeError(f"{text!r} is not a table name; write table or schema.table")
    return parts


__all__ = ["DIALECTS", "Dialect", "KeyRange", "PostgresDialect", "SelectColumn", "TSqlDialect", "TableName", "Window"]

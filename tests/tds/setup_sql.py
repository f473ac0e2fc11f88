"""T-SQL that creates a scenario's table on a real SQL Server and fills it (tests/sql/test_mssql_real.py).

The TDS suite loads the same tables from Parquet files; this renders them as ``CREATE TABLE`` plus
``INSERT ... VALUES`` with literals written for each declared type, so both suites serve the same values.
tests/tds/test_setup_sql.py runs this SQL on the TDS test server and reads the tables back.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pyarrow as pa

ROWS_PER_INSERT = 1000  # SQL Server's limit for a VALUES list
GENERATED = ("timestamp", "rowversion")  # the server stamps these; an INSERT may not name them


def create_table(name: str, table: pa.Table, declared: dict[str, str]) -> list[str]:
    """``CREATE TABLE dbo.[name]`` (every column nullable, declared type or ``nvarchar(4000)``) and its INSERTs."""
    types = {column: declared.get(column, "nvarchar(4000)") for column in table.column_names}
    definitions = ", ".join(f"{quote(c)} {t} NULL" for c, t in types.items())
    statements = [f"CREATE TABLE dbo.{quote(name)} ({definitions});"]
    written = [c for c, t in types.items() if t.lower() not in GENERATED]
    rows = table.select(written).to_pylist()
    for start in range(0, len(rows), ROWS_PER_INSERT):
        values = ",\n  ".join(
            "(" + ", ".join(literal(row[c], types[c]) for c in written) + ")" for row in rows[start : start + ROWS_PER_INSERT]
        )
        statements.append(f"INSERT INTO dbo.{quote(name)} ({', '.join(quote(c) for c in written)}) VALUES\n  {values};")
    return statements


def drop_table(name: str) -> str:
    return f"DROP TABLE IF EXISTS dbo.{quote(name)};"


def quote(identifier: str) -> str:
    return "[" + identifier.replace("]", "]]") + "]"


def literal(value: Any, declared: str) -> str:
    """A T-SQL literal of ``value`` for a column declared ``declared``."""
    kind = declared.lower().split("(")[0].strip()
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)  # 0.1, -1.79e+308: T-SQL float literals
    if isinstance(value, bytes):  # the empty one spelled out: sqlglot (the TDS server's parser) reads a bare 0x as a name
        return "0x" + value.hex() if value else "CAST('' AS varbinary(1))"
    if isinstance(value, dt.datetime):  # before date: a datetime is a date
        return f"'{_datetime_text(value, kind)}'"
    if isinstance(value, dt.date):
        return f"'{value.isoformat()}'"
    if isinstance(value, dt.time):
        return f"'{value.isoformat(timespec='microseconds')}'"
    if isinstance(value, str):
        return "N'" + value.replace("'", "''") + "'"
    raise TypeError(f"no T-SQL literal for {type(value).__name__} (column declared {declared})")


def _datetime_text(value: dt.datetime, kind: str) -> str:
    """ISO 8601 with ``T`` (read the same whatever the session's DATEFORMAT); ``datetime`` takes at most 3 decimals
    and ``smalldatetime`` none, so each gets only what it accepts."""
    if value.tzinfo is not None:
        raise TypeError("timezone-aware values are served as datetimeoffset text, e.g. '2024-01-01 00:00:00 +02:00'")
    if kind == "smalldatetime":
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    if kind == "datetime":
        return value.isoformat(timespec="milliseconds")
    return value.isoformat(timespec="microseconds")

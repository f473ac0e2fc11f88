"""T-SQL to DuckDB through sqlglot, plus what sqlglot leaves to us: parameters, SQL Server types, @@ globals.

Parameters (``@P1``) are replaced by literals in the parsed tree, never pasted
into text. Declared SQL Server types become the DuckDB type that holds them
(``duck_type``): ``money`` is DECIMAL(19,4), ``datetimeoffset`` is kept as its
text with the offset (DuckDB's TIMESTAMPTZ would lose the offset) when stored,
and computed as TIMESTAMPTZ in expressions.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import uuid
from typing import Any

import sqlglot
from sqlglot import exp

from .types import TsqlType, parse_declared

VERSION_TEXT = "Microsoft SQL Server 2022 (RTM) - 16.0.1000.6 (X64) hygge TDS test server (DuckDB engine)"
_GLOBALS = re.compile(r"@@(VERSION|TRANCOUNT|SPID|SERVERNAME|LANGUAGE|ROWCOUNT|OPTIONS|MAX_PRECISION)\b", re.IGNORECASE)

_STORAGE = {
    "tinyint": "UTINYINT",
    "smallint": "SMALLINT",
    "int": "INTEGER",
    "bigint": "BIGINT",
    "bit": "BOOLEAN",
    "money": "DECIMAL(19,4)",
    "smallmoney": "DECIMAL(10,4)",
    "real": "FLOAT",
    "date": "DATE",
    "time": "TIME",
    "datetime2": "TIMESTAMP",
    "datetime": "TIMESTAMP",
    "smalldatetime": "TIMESTAMP",
    "datetimeoffset": "VARCHAR",
    "uniqueidentifier": "UUID",
    "binary": "BLOB",
    "varbinary": "BLOB",
    "image": "BLOB",
    "timestamp": "BLOB",
}


def duck_type(tsql: TsqlType, *, stored: bool) -> str:
    """The DuckDB type holding ``tsql``: as a table column (``stored``) or as an expression's result."""
    if tsql.name in ("decimal", "numeric"):
        return f"DECIMAL({tsql.precision or 18},{tsql.scale or 0})"
    if tsql.name == "float":
        return "FLOAT" if (tsql.precision or 53) <= 24 else "DOUBLE"
    if tsql.name == "datetimeoffset" and not stored:
        return "TIMESTAMPTZ"
    return _STORAGE.get(tsql.name, "VARCHAR")


def globals_replaced(sql: str, spid: int) -> str:
    values = {
        "VERSION": f"'{VERSION_TEXT}'",
        "TRANCOUNT": "0",
        "SPID": str(spid),
        "SERVERNAME": "'hygge-tds'",
        "LANGUAGE": "'us_english'",
        "ROWCOUNT": "0",
        "OPTIONS": "0",
        "MAX_PRECISION": "38",
    }
    return _GLOBALS.sub(lambda m: values[m.group(1).upper()], sql)


def parse(sql: str) -> list[exp.Expression]:
    return [statement for statement in sqlglot.parse(sql, read="tsql") if statement is not None]


_NAMES = {
    "INT": "int",
    "BIGINT": "bigint",
    "SMALLINT": "smallint",
    "UTINYINT": "tinyint",
    "TINYINT": "tinyint",
    "BIT": "bit",
    "BOOLEAN": "bit",
    "FLOAT": "float",
    "DOUBLE": "float",
    "DECIMAL": "decimal",
    "MONEY": "money",
    "SMALLMONEY": "smallmoney",
    "DATE": "date",
    "TIME": "time",
    "DATETIME": "datetime",
    "DATETIME2": "datetime2",
    "TIMESTAMP": "datetime2",
    "SMALLDATETIME": "smalldatetime",
    "TIMESTAMPTZ": "datetimeoffset",
    "CHAR": "char",
    "VARCHAR": "varchar",
    "NCHAR": "nchar",
    "NVARCHAR": "nvarchar",
    "TEXT": "nvarchar(max)",
    "BINARY": "binary",
    "VARBINARY": "varbinary",
    "IMAGE": "varbinary(max)",
    "UUID": "uniqueidentifier",
    "XML": "nvarchar(max)",
    "ROWVERSION": "timestamp",
    "VARIANT": "nvarchar(max)",
    "USERDEFINED": "sysname",
}


def declared_of(node: exp.DataType) -> TsqlType:
    """The SQL Server type a parsed type node stands for (sqlglot reads ``real`` as FLOAT: it comes back as float)."""
    name = _NAMES.get(node.this.name)
    if name is None:
        raise ValueError(f"type {node.sql(dialect='tsql')} has no SQL Server equivalent here")
    params = [param.this.sql() if isinstance(param, exp.DataTypeParam) else param.sql() for param in node.expressions]
    return parse_declared(f"{name}({','.join(params)})" if params and "(" not in name else name)


def to_duckdb(statement: exp.Expression, params: dict[str, Any]) -> str:
    """The statement as DuckDB SQL, parameters bound as literals and types mapped."""
    tree = statement.copy()

    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Parameter):
            name = node.name.lstrip("@").lower()
            if name in params:
                return literal(params[name])
        if isinstance(node, exp.DataType) and not isinstance(node.parent, exp.ColumnDef):
            try:
                tsql = declared_of(node)
            except ValueError:
                return node
            return exp.DataType.build(duck_type(tsql, stored=False), dialect="duckdb")
        if isinstance(node, exp.ColumnDef) and isinstance(node.args.get("kind"), exp.DataType):
            node.set("kind", exp.DataType.build(duck_type(declared_of(node.args["kind"]), stored=True), dialect="duckdb"))
        return node

    return tree.transform(rewrite).sql(dialect="duckdb")


def literal(value: Any) -> exp.Expression:
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float | decimal.Decimal):
        return exp.Literal.number(str(value))
    if isinstance(value, dt.datetime):
        kind = "TIMESTAMPTZ" if value.tzinfo is not None else "TIMESTAMP"
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), exp.DataType.build(kind))
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.build("DATE"))
    if isinstance(value, dt.time):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.build("TIME"))
    if isinstance(value, bytes):
        return exp.func("unhex", exp.Literal.string(value.hex()))
    if isinstance(value, uuid.UUID):
        return exp.Literal.string(str(value))
    return exp.Literal.string(str(value))


def referenced_tables(statement: exp.Expression) -> list[tuple[str, str]]:
    """(schema, table) of every table the statement names, schema ``dbo`` when unqualified."""
    return [((table.db or "dbo").lower(), table.name.lower()) for table in statement.find_all(exp.Table) if table.name]


COLUMN = "column"  # a projection that is a plain column: its declared type, looked up by name
COMPUTED = "computed"  # an expression: its type follows from DuckDB's result


def projection_hints(statement: exp.Expression) -> list[TsqlType | str] | None:
    """For a SELECT without ``*``, per output column: the CAST's type, COLUMN or COMPUTED; None when unknown."""
    if not isinstance(statement, exp.Select):
        return None
    hints: list[TsqlType | str] = []
    for projection in statement.expressions:
        if isinstance(projection, exp.Star) or (isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)):
            return None
        inner = projection.this if isinstance(projection, exp.Alias) else projection
        if isinstance(inner, exp.Cast) and isinstance(inner.to, exp.DataType):
            try:
                hints.append(declared_of(inner.to))
                continue
            except ValueError:
                pass
        hints.append(COLUMN if isinstance(inner, exp.Column) else COMPUTED)
    return hints

"""The catalog stored procedures ODBC calls (sp_datatype_info_100, sp_tables, sp_columns_100, sp_pkeys, ...).

Their result columns are the documented ones; their rows come from the engine's
declared tables, so ``cursor.tables()`` and ``cursor.columns()`` describe what is
really served. A procedure the server does not know answers error 2812, as SQL Server does.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from .engine import Engine, Rows, SqlError
from .types import TsqlType, parse_declared

SYSNAME = TsqlType("nvarchar", length=128)
SMALLINT = TsqlType("smallint")
INT = TsqlType("int")
TINYINT = TsqlType("tinyint")


def _varchar(n: int) -> TsqlType:
    return TsqlType("varchar", length=n)


# name, ODBC SQL type, column size, literal prefix/suffix, create params, case sensitive, searchable, unsigned,
# money, local name, min/max scale, SQL data type, datetime subcode, radix
_TYPE_INFO: list[tuple[Any, ...]] = [
    ("bit", -7, 1, None, None, None, 0, 2, None, 0, "bit", 0, 0, -7, None, None),
    ("tinyint", -6, 3, None, None, None, 0, 2, 1, 0, "tinyint", 0, 0, -6, None, 10),
    ("bigint", -5, 19, None, None, None, 0, 2, 0, 0, "bigint", 0, 0, -5, None, 10),
    ("image", -4, 2147483647, "0x", None, None, 0, 0, None, 0, "image", None, None, -4, None, None),
    ("varbinary", -3, 8000, "0x", None, "max length", 0, 2, None, 0, "varbinary", None, None, -3, None, None),
    ("binary", -2, 8000, "0x", None, "length", 0, 2, None, 0, "binary", None, None, -2, None, None),
    ("text", -1, 2147483647, "'", "'", None, 0, 1, None, 0, "text", None, None, -1, None, None),
    ("char", 1, 8000, "'", "'", "length", 0, 3, None, 0, "char", None, None, 1, None, None),
    ("numeric", 2, 38, None, None, "precision,scale", 0, 2, 0, 0, "numeric", 0, 38, 2, None, 10),
    ("decimal", 3, 38, None, None, "precision,scale", 0, 2, 0, 0, "decimal", 0, 38, 3, None, 10),
    ("money", 3, 19, "$", None, None, 0, 2, 0, 1, "money", 4, 4, 3, None, 10),
    ("smallmoney", 3, 10, "$", None, None, 0, 2, 0, 1, "smallmoney", 4, 4, 3, None, 10),
    ("int", 4, 10, None, None, None, 0, 2, 0, 0, "int", 0, 0, 4, None, 10),
    ("smallint", 5, 5, None, None, None, 0, 2, 0, 0, "smallint", 0, 0, 5, None, 10),
    ("float", 6, 53, None, None, None, 0, 2, 0, 0, "float", None, None, 6, None, 2),
    ("real", 7, 24, None, None, None, 0, 2, 0, 0, "real", None, None, 7, None, 2),
    ("varchar", 12, 8000, "'", "'", "max length", 0, 3, None, 0, "varchar", None, None, 12, None, None),
    ("date", 91, 10, "'", "'", None, 0, 3, None, 0, "date", None, 0, 9, 1, None),
    ("datetime", 93, 23, "'", "'", None, 0, 3, None, 0, "datetime", 3, 3, 9, 3, None),
    ("smalldatetime", 93, 16, "'", "'", None, 0, 3, None, 0, "smalldatetime", 0, 0, 9, 3, None),
    ("datetime2", 93, 27, "'", "'", "scale", 0, 3, None, 0, "datetime2", 0, 7, 9, 3, None),
    ("time", -154, 16, "'", "'", "scale", 0, 3, None, 0, "time", 0, 7, -154, 0, None),
    ("datetimeoffset", -155, 34, "'", "'", "scale", 0, 3, None, 0, "datetimeoffset", 0, 7, -155, 0, None),
    ("uniqueidentifier", -11, 36, "'", "'", None, 0, 2, None, 0, "uniqueidentifier", None, None, -11, None, None),
    ("nchar", -8, 4000, "N'", "'", "length", 0, 3, None, 0, "nchar", None, None, -8, None, None),
    ("nvarchar", -9, 4000, "N'", "'", "max length", 0, 3, None, 0, "nvarchar", None, None, -9, None, None),
    ("ntext", -10, 1073741823, "N'", "'", None, 0, 1, None, 0, "ntext", None, None, -10, None, None),
    ("xml", -152, 0, "N'", "'", None, 1, 0, None, 0, "xml", None, None, -152, None, None),
]
_ODBC_TYPES = {row[0]: row[1] for row in _TYPE_INFO}


def _rows(columns: list[tuple[str, TsqlType]], rows: list[tuple[Any, ...]]) -> Rows:
    return Rows(columns, iter([rows]))


def datatype_info(params: list[Any]) -> Rows:
    wanted = int(params[0]) if params and params[0] is not None else 0
    columns = [
        ("TYPE_NAME", SYSNAME),
        ("DATA_TYPE", SMALLINT),
        ("PRECISION", INT),
        ("LITERAL_PREFIX", _varchar(32)),
        ("LITERAL_SUFFIX", _varchar(32)),
        ("CREATE_PARAMS", _varchar(32)),
        ("NULLABLE", SMALLINT),
        ("CASE_SENSITIVE", SMALLINT),
        ("SEARCHABLE", SMALLINT),
        ("UNSIGNED_ATTRIBUTE", SMALLINT),
        ("MONEY", SMALLINT),
        ("AUTO_INCREMENT", SMALLINT),
        ("LOCAL_TYPE_NAME", SYSNAME),
        ("MINIMUM_SCALE", SMALLINT),
        ("MAXIMUM_SCALE", SMALLINT),
        ("SQL_DATA_TYPE", SMALLINT),
        ("SQL_DATETIME_SUB", SMALLINT),
        ("NUM_PREC_RADIX", INT),
        ("INTERVAL_PRECISION", SMALLINT),
        ("USERTYPE", SMALLINT),
    ]
    rows = []
    for (
        name,
        odbc,
        size,
        prefix,
        suffix,
        create,
        case,
        searchable,
        unsigned,
        money,
        local,
        low,
        high,
        sql_type,
        sub,
        radix,
    ) in _TYPE_INFO:
        if wanted in (0, odbc):
            rows.append(
                (
                    name,
                    odbc,
                    size,
                    prefix,
                    suffix,
                    create,
                    1,
                    case,
                    searchable,
                    unsigned,
                    money,
                    0 if radix else None,
                    local,
                    low,
                    high,
                    sql_type,
                    sub,
                    radix,
                    None,
                    0,
                )
            )
    return _rows(columns, rows)


def _matches(value: str, pattern: Any) -> bool:
    if pattern is None or pattern == "":
        return True
    glob = str(pattern).replace("*", "[*]").replace("?", "[?]").replace("%", "*").replace("_", "?")
    return fnmatch.fnmatchcase(value.lower(), glob.lower())


def tables(engine: Engine, named: dict[str, Any]) -> Rows:
    columns = [
        ("TABLE_QUALIFIER", SYSNAME),
        ("TABLE_OWNER", SYSNAME),
        ("TABLE_NAME", SYSNAME),
        ("TABLE_TYPE", _varchar(32)),
        ("REMARKS", _varchar(254)),
    ]
    kinds = str(named.get("table_type") or "'TABLE'").upper()
    rows = []
    if "TABLE" in kinds:
        for table in sorted(engine.tables.values(), key=lambda t: (t.schema.lower(), t.name.lower())):
            if _matches(table.name, named.get("table_name")) and _matches(table.schema, named.get("table_owner")):
                rows.append((engine.database, table.schema, table.name, "TABLE", None))
    return _rows(columns, rows)


def columns(engine: Engine, named: dict[str, Any]) -> Rows:
    result = [
        ("TABLE_QUALIFIER", SYSNAME),
        ("TABLE_OWNER", SYSNAME),
        ("TABLE_NAME", SYSNAME),
        ("COLUMN_NAME", SYSNAME),
        ("DATA_TYPE", SMALLINT),
        ("TYPE_NAME", SYSNAME),
        ("PRECISION", INT),
        ("LENGTH", INT),
        ("SCALE", SMALLINT),
        ("RADIX", SMALLINT),
        ("NULLABLE", SMALLINT),
        ("REMARKS", _varchar(254)),
        ("COLUMN_DEF", TsqlType("nvarchar", length=4000)),
        ("SQL_DATA_TYPE", SMALLINT),
        ("SQL_DATETIME_SUB", SMALLINT),
        ("CHAR_OCTET_LENGTH", INT),
        ("ORDINAL_POSITION", INT),
        ("IS_NULLABLE", _varchar(254)),
        ("SS_DATA_TYPE", TINYINT),
        ("SS_IS_SPARSE", SMALLINT),
        ("SS_IS_COLUMN_SET", SMALLINT),
        ("SS_IS_COMPUTED", SMALLINT),
        ("SS_IS_IDENTITY", SMALLINT),
        ("SS_UDT_CATALOG_NAME", SYSNAME),
        ("SS_UDT_SCHEMA_NAME", SYSNAME),
        ("SS_UDT_ASSEMBLY_TYPE_NAME", TsqlType("nvarchar", length=4000)),
        ("SS_XML_SCHEMACOLLECTION_CATALOG_NAME", SYSNAME),
        ("SS_XML_SCHEMACOLLECTION_SCHEMA_NAME", SYSNAME),
        ("SS_XML_SCHEMACOLLECTION_NAME", SYSNAME),
    ]
    rows = []
    for table in sorted(engine.tables.values(), key=lambda t: (t.schema.lower(), t.name.lower())):
        if not (_matches(table.name, named.get("table_name")) and _matches(table.schema, named.get("table_owner"))):
            continue
        for position, (name, tsql) in enumerate(table.columns.items(), start=1):
            if not _matches(name, named.get("column_name")):
                continue
            _type_id, length, precision, scale = tsql.catalog()
            odbc = _ODBC_TYPES.get(tsql.name, -9)
            size = precision if precision else (tsql.length if tsql.length and tsql.length > 0 else length)
            rows.append(
                (
                    engine.database,
                    table.schema,
                    table.name,
                    name,
                    odbc,
                    tsql.name,
                    size,
                    length,
                    scale if precision else None,
                    10 if precision else None,
                    1,
                    None,
                    None,
                    odbc if odbc not in (91, 93) else 9,
                    None,
                    length if tsql.name in ("char", "varchar", "nchar", "nvarchar", "binary", "varbinary") else None,
                    position,
                    "YES",
                    0,
                    0,
                    0,
                    0,
                    0,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                )
            )
    return _rows(result, rows)


def primary_keys(engine: Engine, named: dict[str, Any]) -> Rows:
    columns = [
        ("TABLE_QUALIFIER", SYSNAME),
        ("TABLE_OWNER", SYSNAME),
        ("TABLE_NAME", SYSNAME),
        ("COLUMN_NAME", SYSNAME),
        ("KEY_SEQ", SMALLINT),
        ("PK_NAME", SYSNAME),
    ]
    return _rows(columns, [])  # tables served from Parquet have no declared keys


def server_info() -> Rows:
    columns = [("attribute_id", INT), ("attribute_name", _varchar(60)), ("attribute_value", _varchar(255))]
    return _rows(columns, [(1, "DBMS_NAME", "Microsoft SQL Server"), (2, "DBMS_VER", "Microsoft SQL Server 2022 - 16.0.1000.6")])


def call(engine: Engine, procedure: str, positional: list[Any], named: dict[str, Any]) -> Rows:
    """Run catalog procedure ``procedure`` (name without schema, lower case)."""
    if procedure in ("sp_datatype_info_100", "sp_datatype_info"):
        return datatype_info([named.get("data_type", positional[0] if positional else 0)])
    if procedure == "sp_tables":
        return tables(engine, _by_position(named, positional, ["table_name", "table_owner", "table_qualifier", "table_type"]))
    if procedure in ("sp_columns_100", "sp_columns", "sp_columns_90"):
        return columns(engine, _by_position(named, positional, ["table_name", "table_owner", "table_qualifier", "column_name"]))
    if procedure == "sp_pkeys":
        return primary_keys(engine, named)
    if procedure == "sp_server_info":
        return server_info()
    raise SqlError(2812, f"Could not find stored procedure '{procedure}'.")


CATALOG_PROCEDURES = frozenset(
    {
        "sp_datatype_info_100",
        "sp_datatype_info",
        "sp_tables",
        "sp_columns_100",
        "sp_columns",
        "sp_columns_90",
        "sp_pkeys",
        "sp_server_info",
    }
)


def _by_position(named: dict[str, Any], positional: list[Any], names: list[str]) -> dict[str, Any]:
    merged = dict(zip(names, positional, strict=False))
    merged.update(named)
    return merged


__all__ = ["CATALOG_PROCEDURES", "call", "parse_declared"]

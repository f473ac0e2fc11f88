"""hygge's canonical Arrow type for every SQL Server and PostgreSQL column type.

The catalog tells us each column's declared type; this module decides the Arrow
type that lands in Parquet and how to select the column so the ODBC driver
delivers it without loss. The reader is always given the full schema, so the
driver's own guesses never decide a type: psqlODBC reports ``float8`` as a
17-digit SQL_FLOAT that arrow-odbc would narrow to float32, unconstrained
``numeric`` as decimal(28,6) (cutting digits) and ``money`` as float. Types with
no faithful Arrow form (intervals, JSON, spatial, unbounded numeric) become
their exact text. ``docs/sql.md`` prints both tables.

``fetch`` is what the driver is asked for; ``arrow`` is what is published. They
differ for time zones: arrow-odbc cannot fill a zoned timestamp, so the
UTC value (sessions run in UTC) is read naive and tagged UTC afterwards, which
costs no copy. And for PostgreSQL ``numeric(p,s)`` with p <= 18: the server
sends the unscaled value as ``int8`` (``CAST(x * 10^s AS int8)``, exact) and
the int64 is re-read as ``decimal128(p,s)`` (``hygge_core.sql.reader``): both
drivers decode numeric as text (ADBC spent half its CPU on it for TPC-H
lineitem), an int8 costs next to nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

DECIMAL_MAX_PRECISION = 38
UTC = "UTC"


@dataclass(frozen=True)
class SourceColumn:
    """A column as the catalog declares it."""

    name: str
    type_name: str  # base type, lower case: 'numeric', 'datetime2', 'int4'
    declared: str  # the full declared type, for casts of literals: 'numeric(18,4)', 'datetime2(3)'
    precision: int | None = None
    scale: int | None = None
    length: int | None = None  # characters or bytes; -1 means MAX


@dataclass(frozen=True)
class Mapping:
    arrow: pa.DataType
    cast_to: str | None = None  # SQL type to cast to in the select list (None: select the column as is)
    fetch: pa.DataType | None = None  # type asked of the driver when it differs from ``arrow``
    expression: str | None = None  # a select template with {column} when a cast is not enough

    @property
    def fetch_type(self) -> pa.DataType:
        return self.fetch or self.arrow


def _time_unit(fraction_digits: int | None, default: int) -> str:
    digits = default if fraction_digits is None else fraction_digits
    if digits <= 0:
        return "s"
    if digits <= 3:
        return "ms"
    if digits <= 6:
        return "us"
    return "ns"


def _timestamp_unit(fraction_digits: int | None) -> str:
    """SQL Server timestamps span years 1..9999; nanoseconds cover only 1677..2262, so 7 digits land as microseconds.

    ``datetime2(7)`` (the default) and ``datetimeoffset(7)`` values therefore lose their 7th fraction digit
    (100 ns), rather than failing on 9999-12-31 (SQL Server's usual "open-ended" date) and on dates before 1677.
    """
    unit = _time_unit(fraction_digits, 7)
    return "us" if unit == "ns" else unit


SCALED_INT_MAX_PRECISION = 18  # every numeric(18,s) value times 10^s fits int8


def _postgres_numeric(precision: int | None, scale: int | None) -> Mapping:
    """numeric(p,s) with p <= 18 travels as its unscaled int8; wider ones as the driver's decimal; unbounded as text."""
    if precision is not None and 1 <= precision <= SCALED_INT_MAX_PRECISION:
        digits = scale or 0
        scaled = "{column}" if digits == 0 else f"{{column}} * {10**digits}"
        return Mapping(pa.decimal128(precision, digits), fetch=pa.int64(), expression=f"CAST({scaled} AS int8)")
    return _decimal_or_text(precision, scale, "text")


def _decimal_or_text(precision: int | None, scale: int | None, text_cast: str) -> Mapping:
    if precision is None or precision > DECIMAL_MAX_PRECISION or precision < 1:
        return Mapping(pa.string(), cast_to=text_cast)
    return Mapping(pa.decimal128(precision, scale or 0))


# --- PostgreSQL -----------------------------------------------------------------------------------


def postgres_mapping(column: SourceColumn) -> Mapping:
    simple: dict[str, Callable[[], Mapping]] = {
        "int2": lambda: Mapping(pa.int16()),
        "int4": lambda: Mapping(pa.int32()),
        "int8": lambda: Mapping(pa.int64()),
        "bool": lambda: Mapping(pa.bool_()),
        "float4": lambda: Mapping(pa.float32()),
        "float8": lambda: Mapping(pa.float64()),
        "numeric": lambda: _postgres_numeric(column.precision, column.scale),
        "money": lambda: Mapping(pa.decimal128(19, 2), cast_to="numeric(19,2)"),
        "date": lambda: Mapping(pa.date32()),
        "time": lambda: Mapping(pa.time64("us")),
        "timestamp": lambda: Mapping(pa.timestamp("us")),
        "timestamptz": lambda: Mapping(pa.timestamp("us", tz=UTC), fetch=pa.timestamp("us")),
        "bpchar": lambda: Mapping(pa.string()),
        "varchar": lambda: Mapping(pa.string()),
        "text": lambda: Mapping(pa.string()),
        "name": lambda: Mapping(pa.string()),
        "citext": lambda: Mapping(pa.string(), cast_to="text"),
        "uuid": lambda: Mapping(pa.string(), cast_to="text"),
        "bytea": lambda: Mapping(pa.binary()),
        "oid": lambda: Mapping(pa.int64(), cast_to="int8"),
    }
    if column.type_name in simple:
        return simple[column.type_name]()
    # json, jsonb, xml, interval, timetz, inet, arrays, enums, ranges, geometry...: their exact text.
    return Mapping(pa.string(), cast_to="text")


POSTGRES_DOC = [
    ("smallint (int2)", "int16"),
    ("integer (int4)", "int32"),
    ("bigint (int8)", "int64"),
    ("boolean", "bool"),
    ("real (float4)", "float32"),
    ("double precision (float8)", "float64"),
    ("numeric(p,s), p <= 38", "decimal128(p,s)"),
    ("numeric without precision, or p > 38", "string (exact text)"),
    ("money", "decimal128(19,2)"),
    ("date", "date32"),
    ("time", "time64[us]"),
    ("timestamp", "timestamp[us]"),
    ("timestamptz", "timestamp[us, tz=UTC]"),
    ("char(n), varchar(n), text, name, citext", "string"),
    ("uuid", "string (lower-case text form)"),
    ("bytea", "binary"),
    ("oid", "int64"),
    ("json, jsonb, xml, interval, timetz, inet, arrays, enums, anything else", "string (PostgreSQL's text form)"),
]


# --- SQL Server -----------------------------------------------------------------------------------


def mssql_mapping(column: SourceColumn) -> Mapping:
    name = column.type_name
    scale = column.scale
    if name == "tinyint":
        return Mapping(pa.uint8())
    if name == "smallint":
        return Mapping(pa.int16())
    if name == "int":
        return Mapping(pa.int32())
    if name == "bigint":
        return Mapping(pa.int64())
    if name == "bit":
        return Mapping(pa.bool_())
    if name in ("decimal", "numeric"):
        return _decimal_or_text(column.precision, scale, "nvarchar(100)")
    if name == "money":
        return Mapping(pa.decimal128(19, 4))
    if name == "smallmoney":
        return Mapping(pa.decimal128(10, 4))
    if name == "real" or (name == "float" and column.precision is not None and column.precision <= 24):
        return Mapping(pa.float32())
    if name == "float":
        return Mapping(pa.float64())
    if name == "date":
        return Mapping(pa.date32())
    if name == "time":
        unit = _time_unit(scale, 7)
        return Mapping(pa.time64("ns" if unit == "ns" else "us"))
    if name == "smalldatetime":
        return Mapping(pa.timestamp("s"))
    if name == "datetime":
        return Mapping(pa.timestamp("ms"))
    if name == "datetime2":
        return Mapping(pa.timestamp(_timestamp_unit(scale)))
    if name == "datetimeoffset":
        digits = 7 if scale is None else scale
        unit = _timestamp_unit(digits)
        return Mapping(
            pa.timestamp(unit, tz=UTC),
            fetch=pa.timestamp(unit),
            expression=f"CAST(SWITCHOFFSET({{column}}, '+00:00') AS datetime2({digits}))",
        )
    if name in ("char", "varchar", "nchar", "nvarchar", "sysname"):
        return Mapping(pa.string())
    if name in ("text", "ntext"):
        return Mapping(pa.string(), cast_to="nvarchar(max)")
    if name == "uniqueidentifier":
        # CAST gives upper case (the driver's own GUID text too); the canonical form (RFC 9562) is lower case
        return Mapping(pa.string(), expression="LOWER(CAST({column} AS char(36)))")
    if name in ("binary", "varbinary", "image"):
        return Mapping(pa.binary(), cast_to="varbinary(max)" if name == "image" else None)
    if name in ("timestamp", "rowversion"):
        return Mapping(pa.binary(), cast_to="binary(8)")
    if name in ("geography", "geometry", "hierarchyid"):
        return Mapping(pa.string(), expression="{column}.ToString()")
    # xml, sql_variant and anything newer: text.
    return Mapping(pa.string(), cast_to="nvarchar(max)")


MSSQL_DOC = [
    ("tinyint", "uint8"),
    ("smallint", "int16"),
    ("int", "int32"),
    ("bigint", "int64"),
    ("bit", "bool"),
    ("decimal(p,s) / numeric(p,s)", "decimal128(p,s)"),
    ("money", "decimal128(19,4)"),
    ("smallmoney", "decimal128(10,4)"),
    ("float (float(53))", "float64"),
    ("real (float(24))", "float32"),
    ("date", "date32"),
    ("time(0..6)", "time64[us]"),
    ("time(7) (the default)", "time64[ns]"),
    ("smalldatetime", "timestamp[s]"),
    ("datetime", "timestamp[ms]"),
    (
        "datetime2(0) / (1..3) / (4..7)",
        "timestamp[s] / [ms] / [us] (7 digits: the 100 ns digit is dropped, so years 1..9999 fit)",
    ),
    ("datetimeoffset(n)", "timestamp[s/ms/us like datetime2, tz=UTC] (converted to UTC on the server)"),
    ("char, varchar, nchar, nvarchar (including max), text, ntext, sysname", "string"),
    ("uniqueidentifier", "string (36 characters, canonical lower case)"),
    ("binary, varbinary (including max), image", "binary"),
    ("timestamp / rowversion", "binary (8 bytes)"),
    ("geography, geometry, hierarchyid", "string (.ToString())"),
    ("xml, sql_variant, anything else", "string"),
]

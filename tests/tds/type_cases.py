"""Every SQL Server type of hygge's map, with NULLs and edge values: what the server serves and what the lake must hold."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

D = decimal.Decimal
UTC = dt.UTC
MEGABYTE_TEXT = "æøå✓" * 262_144  # 1,048,576 characters, 2 MiB as UTF-16
BIG_BINARY = bytes(range(256)) * 400  # 100 KiB


@dataclass(frozen=True)
class Case:
    column: str
    declared: str
    served: pa.DataType  # how the Parquet file behind the server stores it
    values: list[Any]  # one per row; row 3 is all NULL
    expected: list[Any] | None = None  # what lands in the lake, when it differs from ``values``


ROWS = 4  # row 0: low edges, row 1: high edges, row 2: ordinary values (empty strings), row 3: NULLs


def cases() -> list[Case]:
    return [
        Case("c_tinyint", "tinyint", pa.uint8(), [0, 255, 7, None]),
        Case("c_smallint", "smallint", pa.int16(), [-32768, 32767, 0, None]),
        Case("c_int", "int", pa.int32(), [-2147483648, 2147483647, 1, None]),
        Case("c_bigint", "bigint", pa.int64(), [-9223372036854775808, 9223372036854775807, 42, None]),
        Case("c_bit", "bit", pa.bool_(), [False, True, True, None]),
        Case(
            "c_decimal",
            "decimal(38,10)",
            pa.decimal128(38, 10),
            [
                D("-9999999999999999999999999999.9999999999"),  # all 38 digits
                D("9999999999999999999999999999.9999999999"),
                D("0.0000000001"),
                None,
            ],
        ),
        Case("c_numeric", "numeric(9,2)", pa.decimal128(9, 2), [D("-9999999.99"), D("9999999.99"), D("0.10"), None]),
        Case(
            "c_money", "money", pa.decimal128(19, 4), [D("-922337203685477.5808"), D("922337203685477.5807"), D("1.2345"), None]
        ),
        Case("c_smallmoney", "smallmoney", pa.decimal128(10, 4), [D("-214748.3648"), D("214748.3647"), D("0.0001"), None]),
        Case("c_float", "float", pa.float64(), [-1.79e308, 1.79e308, 0.1, None]),
        Case(
            "c_real",
            "real",
            pa.float32(),
            [-3.4e38, 3.4e38, 0.5, None],
            [float(pa.scalar(-3.4e38, pa.float32()).as_py()), float(pa.scalar(3.4e38, pa.float32()).as_py()), 0.5, None],
        ),
        Case("c_date", "date", pa.date32(), [dt.date(1, 1, 1), dt.date(9999, 12, 31), dt.date(2024, 2, 29), None]),
        Case(
            "c_time", "time(7)", pa.time64("us"), [dt.time(0, 0), dt.time(23, 59, 59, 999999), dt.time(12, 30, 0, 123456), None]
        ),
        Case("c_time3", "time(3)", pa.time64("us"), [dt.time(0, 0), dt.time(23, 59, 59, 999000), dt.time(1, 2, 3, 4000), None]),
        Case(
            "c_smalldatetime",
            "smalldatetime",
            pa.timestamp("us"),
            [dt.datetime(1900, 1, 1), dt.datetime(2079, 6, 6, 23, 59), dt.datetime(2024, 5, 1, 8, 30), None],
        ),
        Case(
            "c_datetime",
            "datetime",
            pa.timestamp("us"),
            [
                dt.datetime(1753, 1, 1),
                dt.datetime(9999, 12, 31, 23, 59, 59, 997000),
                dt.datetime(2024, 5, 1, 8, 30, 0, 3000),
                None,
            ],
        ),
        Case(
            "c_datetime2_0",
            "datetime2(0)",
            pa.timestamp("us"),
            [dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59), dt.datetime(2024, 1, 1, 12), None],
        ),
        Case(
            "c_datetime2_3",
            "datetime2(3)",
            pa.timestamp("us"),
            [dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999000), dt.datetime(2024, 1, 1, 12, 0, 0, 5000), None],
        ),
        Case(
            "c_datetime2",
            "datetime2(7)",
            pa.timestamp("us"),
            [dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999), dt.datetime(1600, 7, 4, 1, 2, 3, 456789), None],
        ),
        Case(
            "c_datetimeoffset",
            "datetimeoffset(7)",
            pa.string(),
            ["2024-02-29 13:45:56.123456 +14:00", "2024-02-29 13:45:56.123456 -14:00", "9999-12-30 23:00:00.000000 -14:00", None],
            [
                dt.datetime(2024, 2, 28, 23, 45, 56, 123456, tzinfo=UTC),
                dt.datetime(2024, 3, 1, 3, 45, 56, 123456, tzinfo=UTC),
                dt.datetime(9999, 12, 31, 13, 0, tzinfo=UTC),
                None,
            ],
        ),
        Case("c_char", "char(4)", pa.string(), ["ab", "abcd", "", None], ["ab  ", "abcd", "    ", None]),
        Case("c_varchar", "varchar(50)", pa.string(), ["plain ascii", "x" * 50, "", None]),
        Case("c_nchar", "nchar(3)", pa.string(), ["ø", "日本語", "", None], ["ø  ", "日本語", "   ", None]),
        Case("c_nvarchar", "nvarchar(100)", pa.string(), ["héllo ✓ 日本", "ß" * 100, "", None]),
        Case("c_nvarchar_max", "nvarchar(max)", pa.string(), [MEGABYTE_TEXT, "short", "", None]),
        Case("c_varchar_max", "varchar(max)", pa.string(), ["v" * 100_000, "w", "", None]),
        Case("c_text", "text", pa.string(), ["legacy text", "t", "", None]),
        Case("c_ntext", "ntext", pa.string(), ["legacy ñtext", "n", "", None]),
        Case("c_sysname", "sysname", pa.string(), ["dbo", "sys", "", None]),
        Case("c_xml", "xml", pa.string(), ["<a>1</a>", "<b/>", "", None]),
        Case(
            "c_uniqueidentifier",
            "uniqueidentifier",
            pa.string(),
            [
                "6F9619FF-8B86-D011-B42D-00C04FC964FF",
                "00000000-0000-0000-0000-000000000000",
                "ffffffff-ffff-ffff-ffff-ffffffffffff",
                None,
            ],
            [
                "6f9619ff-8b86-d011-b42d-00c04fc964ff",
                "00000000-0000-0000-0000-000000000000",
                "ffffffff-ffff-ffff-ffff-ffffffffffff",
                None,
            ],
        ),
        Case(
            "c_binary",
            "binary(4)",
            pa.binary(),
            [b"\x00\x01\x02\x03", b"\xff\xff\xff\xff", b"\x01", None],
            [b"\x00\x01\x02\x03", b"\xff\xff\xff\xff", b"\x01\x00\x00\x00", None],
        ),
        Case("c_varbinary", "varbinary(16)", pa.binary(), [b"", b"\xff" * 16, b"\x00", None]),
        Case("c_varbinary_max", "varbinary(max)", pa.binary(), [BIG_BINARY, b"\x01", b"", None]),
        Case("c_image", "image", pa.binary(), [b"\x89PNG", b"\x00", b"", None]),
        Case(
            "c_rowversion",
            "timestamp",
            pa.binary(),
            [b"\x00" * 7 + b"\x01", b"\xff" * 8, b"\x00\x00\x00\x00\x00\x00\x07\xd1", None],
        ),
    ]


def served_table() -> tuple[pa.Table, dict[str, str]]:
    """The Parquet table behind the server (``id`` first) and its declared SQL Server types."""
    columns = {"id": pa.array(range(1, ROWS + 1), pa.int32())}
    declared = {"id": "int"}
    for case in cases():
        columns[case.column] = pa.array(case.values, case.served)
        declared[case.column] = case.declared
    return pa.table(columns), declared


def expected_rows() -> list[dict[str, Any]]:
    rows = []
    for index in range(ROWS):
        row: dict[str, Any] = {"id": index + 1}
        for case in cases():
            row[case.column] = (case.expected if case.expected is not None else case.values)[index]
        rows.append(row)
    return rows


def canonical_uuid(text: str) -> str:
    return str(uuid.UUID(text))

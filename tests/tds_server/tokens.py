"""Tokens of a tabular result (MS-TDS 2.2.7): what the server writes after login and for every request."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from .types import COLLATION, TsqlType, encode_value, type_info

COLMETADATA, ROW, NBCROW = 0x81, 0xD1, 0xD2
DONE, DONEPROC, DONEINPROC = 0xFD, 0xFE, 0xFF
ERROR, INFO, LOGINACK, ENVCHANGE, FEATUREEXTACK = 0xAA, 0xAB, 0xAD, 0xE3, 0xAE
RETURNSTATUS, RETURNVALUE = 0x79, 0xAC

DONE_FINAL, DONE_MORE, DONE_ERROR, DONE_INXACT, DONE_COUNT, DONE_ATTN = 0x00, 0x01, 0x02, 0x04, 0x10, 0x20

ENV_DATABASE, ENV_LANGUAGE, ENV_PACKET_SIZE, ENV_COLLATION = 1, 2, 4, 7
ENV_BEGIN_TRAN, ENV_COMMIT_TRAN, ENV_ROLLBACK_TRAN = 8, 9, 10

TDS_74 = 0x74000004
SERVER_NAME = "hygge-tds"
CURCMD_SELECT = 0xC1


def b_varchar(text: str) -> bytes:
    encoded = text.encode("utf-16-le")
    return bytes([len(encoded) // 2]) + encoded


def us_varchar(text: str) -> bytes:
    encoded = text.encode("utf-16-le")
    return struct.pack("<H", len(encoded) // 2) + encoded


def _with_length(token: int, body: bytes) -> bytes:
    return bytes([token]) + struct.pack("<H", len(body)) + body


def env_change(kind: int, new: str, old: str = "") -> bytes:
    return _with_length(ENVCHANGE, bytes([kind]) + b_varchar(new) + b_varchar(old))


def env_change_bytes(kind: int, new: bytes, old: bytes = b"") -> bytes:
    return _with_length(ENVCHANGE, bytes([kind, len(new)]) + new + bytes([len(old)]) + old)


def collation_change() -> bytes:
    return env_change_bytes(ENV_COLLATION, COLLATION)


def login_ack(program: str = "Microsoft SQL Server", version: tuple[int, int, int] = (16, 0, 1000)) -> bytes:
    major, minor, build = version
    body = bytes([1]) + struct.pack(">I", TDS_74) + b_varchar(program) + bytes([major, minor, build >> 8, build & 0xFF])
    return _with_length(LOGINACK, body)


def feature_ext_ack(features: Sequence[tuple[int, bytes]]) -> bytes:
    body = b"".join(bytes([feature]) + struct.pack("<I", len(data)) + data for feature, data in features)
    return bytes([FEATUREEXTACK]) + body + b"\xff"


def message(number: int, text: str, *, severity: int = 16, state: int = 1, procedure: str = "", line: int = 1) -> bytes:
    """An ERROR token (severity > 10) or an INFO token (severity <= 10), as SQL Server sends them."""
    body = struct.pack("<iBB", number, state, severity) + us_varchar(text) + b_varchar(SERVER_NAME) + b_varchar(procedure)
    return _with_length(ERROR if severity > 10 else INFO, body + struct.pack("<i", line))


def done(status: int = DONE_FINAL, rows: int | None = None, token: int = DONE, command: int = CURCMD_SELECT) -> bytes:
    if rows is not None:
        status |= DONE_COUNT
    return struct.pack("<BHHQ", token, status, command, rows or 0)


def col_metadata(columns: Sequence[tuple[str, TsqlType]]) -> bytes:
    if not columns:
        return bytes([COLMETADATA]) + b"\xff\xff"  # NoMetaData
    parts = [bytes([COLMETADATA]) + struct.pack("<H", len(columns))]
    for name, tsql in columns:
        user_type = 0x50 if tsql.name == "timestamp" else 0
        flags = 0x0001 | 0x0008  # nullable; updateability unknown
        parts.append(struct.pack("<IH", user_type, flags) + type_info(tsql) + b_varchar(name))
    return b"".join(parts)


def row(types: Sequence[TsqlType], values: Sequence[Any]) -> bytes:
    """ROW when every value is present, NBCROW (a null bitmap, then only the present values) otherwise."""
    if all(value is not None for value in values):
        return bytes([ROW]) + b"".join(encode_value(t, v) for t, v in zip(types, values, strict=True))
    bitmap = bytearray((len(values) + 7) // 8)
    for index, value in enumerate(values):
        if value is None:
            bitmap[index // 8] |= 1 << (index % 8)
    present = b"".join(encode_value(t, v) for t, v in zip(types, values, strict=True) if v is not None)
    return bytes([NBCROW]) + bytes(bitmap) + present


def return_status(value: int) -> bytes:
    return bytes([RETURNSTATUS]) + struct.pack("<i", value)


def return_value(ordinal: int, name: str, tsql: TsqlType, value: Any) -> bytes:
    """An output parameter's value (the handle of sp_prepare / sp_prepexec)."""
    return (
        bytes([RETURNVALUE])
        + struct.pack("<H", ordinal)
        + b_varchar(name)
        + bytes([0x01])
        + struct.pack("<IH", 0, 0x0001)
        + type_info(tsql)
        + encode_value(tsql, value)
    )

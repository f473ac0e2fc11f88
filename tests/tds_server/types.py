"""SQL Server data types on the wire (MS-TDS 2.2.5.4-2.2.5.5): TYPE_INFO and value encodings, both directions.

Results are always sent with the nullable variable-length forms (INTN, BITN,
FLTN, MONEYN, DATETIMN, DECIMALN, ...), as SQL Server itself does for nullable
columns; ``(max)`` types travel as PLP (partially length-prefixed) streams.
Parameters arriving in RPCs are decoded from whatever form the driver chose.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import struct
import uuid
from dataclasses import dataclass
from typing import Any

# Type tokens (MS-TDS 2.2.5.4.1-3)
NULLTYPE, INT1, BIT, INT2, INT4, DATETIM4, FLT4, MONEY, DATETIME, FLT8, MONEY4, INT8 = (
    0x1F,
    0x30,
    0x32,
    0x34,
    0x38,
    0x3A,
    0x3B,
    0x3C,
    0x3D,
    0x3E,
    0x7A,
    0x7F,
)
GUID, INTN, DATEN, TIMEN, DATETIME2N, DATETIMEOFFSETN = 0x24, 0x26, 0x28, 0x29, 0x2A, 0x2B
BITN, DECIMALN, NUMERICN, FLTN, MONEYN, DATETIMN = 0x68, 0x6A, 0x6C, 0x6D, 0x6E, 0x6F
# Decimal arithmetic without rounding: the default context keeps 28 digits, and decimal(38,s) holds 38.
EXACT = decimal.Context(prec=80)
BIGVARBIN, BIGVARCHR, BIGBINARY, BIGCHAR, NVARCHAR, NCHAR = 0xA5, 0xA7, 0xAD, 0xAF, 0xE7, 0xEF
IMAGE, TEXT, NTEXT = 0x22, 0x23, 0x63

# Latin1_General_CI_AS (LCID 0x0409, code page 1252), what the server reports and encodes varchar with.
COLLATION = bytes([0x09, 0x04, 0xD0, 0x00, 0x34])
VARCHAR_CODEC = "cp1252"
PLP_NULL = 0xFFFFFFFFFFFFFFFF
PLP_UNKNOWN = 0xFFFFFFFFFFFFFFFE
PLP_CHUNK = 8000
DATE_ZERO = dt.date(1, 1, 1)
DATETIME_ZERO = dt.date(1900, 1, 1)

# SQL Server's system_type_id for each type name (sys.types), for the catalog shims.
SYSTEM_TYPE_IDS = {
    "image": 34,
    "text": 35,
    "uniqueidentifier": 36,
    "date": 40,
    "time": 41,
    "datetime2": 42,
    "datetimeoffset": 43,
    "tinyint": 48,
    "smallint": 52,
    "int": 56,
    "smalldatetime": 58,
    "real": 59,
    "money": 60,
    "datetime": 61,
    "float": 62,
    "sql_variant": 98,
    "ntext": 99,
    "bit": 104,
    "decimal": 106,
    "numeric": 108,
    "smallmoney": 122,
    "bigint": 127,
    "varbinary": 165,
    "varchar": 167,
    "binary": 173,
    "char": 175,
    "timestamp": 189,
    "nvarchar": 231,
    "nchar": 239,
    "xml": 241,
}


@dataclass(frozen=True)
class TsqlType:
    """A declared SQL Server type: ``nvarchar(max)`` is ``TsqlType('nvarchar', length=-1)``."""

    name: str
    length: int | None = None  # characters (n types) or bytes; -1 is MAX
    precision: int | None = None
    scale: int | None = None

    def declared(self) -> str:
        if self.name in ("decimal", "numeric"):
            return f"{self.name}({self.precision},{self.scale})"
        if self.name in ("datetime2", "datetimeoffset", "time"):
            return f"{self.name}({self.scale})"
        if self.name in ("char", "varchar", "nchar", "nvarchar", "binary", "varbinary"):
            return f"{self.name}({'max' if self.length == -1 else self.length})"
        if self.name == "float" and self.precision is not None:
            return f"float({self.precision})"
        return self.name

    @property
    def is_max(self) -> bool:
        return self.length == -1

    def catalog(self) -> tuple[int, int, int, int]:
        """(system_type_id, max_length, precision, scale) as sys.columns reports them."""
        name = "nvarchar" if self.name == "sysname" else self.name
        type_id = SYSTEM_TYPE_IDS.get(name, SYSTEM_TYPE_IDS["nvarchar"])
        fixed = {
            "tinyint": (1, 3, 0),
            "smallint": (2, 5, 0),
            "int": (4, 10, 0),
            "bigint": (8, 19, 0),
            "bit": (1, 1, 0),
            "money": (8, 19, 4),
            "smallmoney": (4, 10, 4),
            "real": (4, 24, 0),
            "date": (3, 10, 0),
            "smalldatetime": (4, 16, 0),
            "datetime": (8, 23, 3),
            "uniqueidentifier": (16, 0, 0),
            "timestamp": (8, 0, 0),
            "text": (16, 0, 0),
            "ntext": (16, 0, 0),
            "image": (16, 0, 0),
            "xml": (-1, 0, 0),
            "sql_variant": (8016, 0, 0),
        }
        if name in fixed:
            size, precision, scale = fixed[name]
            return type_id, size, precision, scale
        if name == "float":
            return type_id, 4 if (self.precision or 53) <= 24 else 8, 24 if (self.precision or 53) <= 24 else 53, 0
        if name in ("decimal", "numeric"):
            return type_id, decimal_size(self.precision or 18), self.precision or 18, self.scale or 0
        if name in ("time", "datetime2", "datetimeoffset"):
            scale = 7 if self.scale is None else self.scale
            extra = {"time": 0, "datetime2": 3, "datetimeoffset": 5}[name]
            digits = {"time": 9, "datetime2": 20, "datetimeoffset": 27}[name]
            return type_id, time_size(scale) + extra, digits + (scale + 1 if scale else 0) - (1 if name == "time" else 0), scale
        length = self.length or 1
        if length == -1:
            return type_id, -1, 0, 0
        return type_id, length * 2 if name in ("nchar", "nvarchar") else length, 0, 0


_DECLARED = re.compile(r"^\s*([a-z0-9_]+)\s*(?:\(\s*(max|\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*$", re.IGNORECASE)


def parse_declared(text: str) -> TsqlType:
    """``'decimal(18,4)'`` -> TsqlType; the defaults are SQL Server's (datetime2 is datetime2(7), char is char(1))."""
    match = _DECLARED.match(text)
    if not match:
        raise ValueError(f"not a SQL Server type: {text!r}")
    name, first, second = match.group(1).lower(), match.group(2), match.group(3)
    if name == "rowversion":
        name = "timestamp"
    if name in ("decimal", "numeric"):
        return TsqlType(name, precision=int(first) if first else 18, scale=int(second) if second else 0)
    if name in ("datetime2", "datetimeoffset", "time"):
        return TsqlType(name, scale=int(first) if first else 7)
    if name in ("char", "varchar", "nchar", "nvarchar", "binary", "varbinary"):
        length = -1 if first and first.lower() == "max" else int(first) if first else 1
        return TsqlType(name, length=length)
    if name == "sysname":
        return TsqlType("nvarchar", length=128)
    if name == "float":
        return TsqlType("float", precision=int(first) if first else 53)
    return TsqlType(name)


def decimal_size(precision: int) -> int:
    return 5 if precision <= 9 else 9 if precision <= 19 else 13 if precision <= 28 else 17


def time_size(scale: int) -> int:
    return 3 if scale <= 2 else 4 if scale <= 4 else 5


# --- results: TYPE_INFO and values --------------------------------------------------------------


def on_wire(t: TsqlType) -> TsqlType:
    """Legacy LOB types (text, ntext, image) and xml/sql_variant are sent as their (max) successors."""
    if t.name in ("text", "ntext", "xml", "sql_variant"):
        return TsqlType("nvarchar", length=-1)
    if t.name == "image":
        return TsqlType("varbinary", length=-1)
    return t


def type_info(t: TsqlType) -> bytes:
    t = on_wire(t)
    name = t.name
    fixed_n = {
        "tinyint": (INTN, 1),
        "smallint": (INTN, 2),
        "int": (INTN, 4),
        "bigint": (INTN, 8),
        "bit": (BITN, 1),
        "real": (FLTN, 4),
        "money": (MONEYN, 8),
        "smallmoney": (MONEYN, 4),
        "datetime": (DATETIMN, 8),
        "smalldatetime": (DATETIMN, 4),
        "uniqueidentifier": (GUID, 16),
    }
    if name in fixed_n:
        token, size = fixed_n[name]
        return bytes([token, size])
    if name == "float":
        return bytes([FLTN, 4 if (t.precision or 53) <= 24 else 8])
    if name in ("decimal", "numeric"):
        precision = t.precision or 18
        return bytes([DECIMALN if name == "decimal" else NUMERICN, decimal_size(precision), precision, t.scale or 0])
    if name == "date":
        return bytes([DATEN])
    if name in ("time", "datetime2", "datetimeoffset"):
        token = {"time": TIMEN, "datetime2": DATETIME2N, "datetimeoffset": DATETIMEOFFSETN}[name]
        return bytes([token, 7 if t.scale is None else t.scale])
    if name in ("char", "varchar", "nchar", "nvarchar"):
        token = {"char": BIGCHAR, "varchar": BIGVARCHR, "nchar": NCHAR, "nvarchar": NVARCHAR}[name]
        size = 0xFFFF if t.is_max else (t.length or 1) * (2 if name.startswith("n") else 1)
        return bytes([token]) + struct.pack("<H", size) + COLLATION
    if name in ("binary", "varbinary", "timestamp"):
        token = BIGVARBIN if name == "varbinary" else BIGBINARY
        size = 8 if name == "timestamp" else 0xFFFF if t.is_max else (t.length or 1)
        return bytes([token]) + struct.pack("<H", size)
    raise ValueError(f"the test server cannot send {t.declared()} columns")


def encode_value(t: TsqlType, value: Any) -> bytes:
    """The value as it follows TYPE_INFO in a ROW (NULL encoded for the type); see ``type_info``."""
    t = on_wire(t)
    name = t.name
    if name in ("char", "varchar", "nchar", "nvarchar", "binary", "varbinary", "timestamp"):
        data = None if value is None else _bytes_for(t, value)
        if t.is_max:
            return plp(data)
        if data is None:
            return b"\xff\xff"
        return struct.pack("<H", len(data)) + data
    if value is None:
        return b"\x00"
    body = _fixed_body(t, value)
    return bytes([len(body)]) + body


def _bytes_for(t: TsqlType, value: Any) -> bytes:
    if t.name in ("binary", "varbinary", "timestamp"):
        data = bytes(value)
        if t.name != "varbinary" and not t.is_max:
            data = data.ljust(8 if t.name == "timestamp" else (t.length or 1), b"\x00")
        return data
    text = value if isinstance(value, str) else str(value)
    if t.name in ("char", "nchar"):
        text = text.ljust(t.length or 1)
    return text.encode("utf-16-le") if t.name.startswith("n") else text.encode(VARCHAR_CODEC, errors="replace")


def plp(data: bytes | None) -> bytes:
    if data is None:
        return struct.pack("<Q", PLP_NULL)
    parts = [struct.pack("<Q", len(data))]
    for offset in range(0, len(data), PLP_CHUNK):
        chunk = data[offset : offset + PLP_CHUNK]
        parts.append(struct.pack("<I", len(chunk)) + chunk)
    parts.append(b"\x00\x00\x00\x00")
    return b"".join(parts)


def _fixed_body(t: TsqlType, value: Any) -> bytes:
    name = t.name
    if name == "tinyint":
        return struct.pack("<B", int(value))
    if name == "smallint":
        return struct.pack("<h", int(value))
    if name == "int":
        return struct.pack("<i", int(value))
    if name == "bigint":
        return struct.pack("<q", int(value))
    if name == "bit":
        return b"\x01" if value else b"\x00"
    if name == "real" or (name == "float" and (t.precision or 53) <= 24):
        return struct.pack("<f", float(value))
    if name == "float":
        return struct.pack("<d", float(value))
    if name in ("money", "smallmoney"):
        units = int(EXACT.multiply(decimal.Decimal(value), 10000).to_integral_value(rounding=decimal.ROUND_HALF_EVEN))
        if name == "smallmoney":
            return struct.pack("<i", units)
        return struct.pack("<iI", units >> 32, units & 0xFFFFFFFF)
    if name in ("decimal", "numeric"):
        scale = t.scale or 0
        units = int(decimal.Decimal(value).scaleb(scale, context=EXACT).to_integral_value(rounding=decimal.ROUND_HALF_EVEN))
        size = decimal_size(t.precision or 18) - 1
        return bytes([1 if units >= 0 else 0]) + abs(units).to_bytes(size, "little")
    if name == "date":
        return _date_bytes(_as_date(value))
    if name == "time":
        return _time_bytes(_as_time(value), _scale(t))
    if name == "datetime2":
        value = _as_datetime(value)
        return _time_bytes(value.time(), _scale(t)) + _date_bytes(value.date())
    if name == "datetimeoffset":
        value = _as_aware(value)
        offset = value.utcoffset() or dt.timedelta(0)
        utc = value.replace(tzinfo=None) - offset
        minutes = int(offset.total_seconds() // 60)
        return _time_bytes(utc.time(), _scale(t)) + _date_bytes(utc.date()) + struct.pack("<h", minutes)
    if name == "datetime":
        value = _as_datetime(value)
        days = (value.date() - DATETIME_ZERO).days
        seconds = value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1_000_000
        return struct.pack("<iI", days, round(seconds * 300))
    if name == "smalldatetime":
        value = _as_datetime(value)
        return struct.pack("<HH", (value.date() - DATETIME_ZERO).days, value.hour * 60 + value.minute)
    if name == "uniqueidentifier":
        return (value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))).bytes_le
    raise ValueError(f"the test server cannot send {t.declared()} values")


def _scale(t: TsqlType) -> int:
    return 7 if t.scale is None else t.scale


def _date_bytes(value: dt.date) -> bytes:
    return (value - DATE_ZERO).days.to_bytes(3, "little")


def _time_bytes(value: dt.time, scale: int) -> bytes:
    micros = ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond
    ticks = micros * 10 ** (scale - 6) if scale >= 6 else micros // 10 ** (6 - scale)
    return ticks.to_bytes(time_size(scale), "little")


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _as_time(value: Any) -> dt.time:
    return value if isinstance(value, dt.time) else dt.time.fromisoformat(str(value))


def _as_datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None) if value.tzinfo is None else value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    return dt.datetime.fromisoformat(str(value))


def parse_offset_text(text: str) -> dt.datetime:
    """``'2024-02-29 13:45:56.123456 +02:30'`` (SQL Server's text form, or ISO) as an aware datetime."""
    text = text.strip()
    match = re.match(r"^(.*?)\s*([+-]\d{2}):?(\d{2})$", text)
    if not match:
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
    local, hours, minutes = match.groups()
    sign = -1 if hours.startswith("-") else 1
    offset = dt.timedelta(hours=int(hours[1:]), minutes=int(minutes)) * sign
    local = re.sub(r"(\.\d{6})\d+", r"\1", local)  # Python keeps microseconds
    return dt.datetime.fromisoformat(local).replace(tzinfo=dt.timezone(offset))


def _as_aware(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return parse_offset_text(str(value))


# --- parameters: TYPE_INFO and values as drivers send them in RPCs ---------------------------------


class ByteReader:
    """A cursor over a message payload, little-endian unless told otherwise."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def take(self, size: int) -> bytes:
        if self.pos + size > len(self.data):
            raise ValueError("truncated TDS message")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return struct.unpack("<H", self.take(2))[0]

    def u32(self) -> int:
        return struct.unpack("<I", self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack("<Q", self.take(8))[0]

    def b_varchar(self) -> str:
        return self.take(self.u8() * 2).decode("utf-16-le")

    def us_varchar(self) -> str:
        return self.take(self.u16() * 2).decode("utf-16-le")

    def at_end(self) -> bool:
        return self.pos >= len(self.data)


@dataclass(frozen=True)
class WireType:
    """A TYPE_INFO as read from the wire: the token and its length/precision/scale fields."""

    token: int
    size: int = 0
    precision: int = 0
    scale: int = 0


_FIXED_SIZES = {
    NULLTYPE: 0,
    INT1: 1,
    BIT: 1,
    INT2: 2,
    INT4: 4,
    DATETIM4: 4,
    FLT4: 4,
    MONEY4: 4,
    MONEY: 8,
    DATETIME: 8,
    FLT8: 8,
    INT8: 8,
}


def read_type_info(reader: ByteReader) -> WireType:
    token = reader.u8()
    if token in _FIXED_SIZES:
        return WireType(token, _FIXED_SIZES[token])
    if token in (GUID, INTN, BITN, FLTN, MONEYN, DATETIMN):
        return WireType(token, reader.u8())
    if token in (DECIMALN, NUMERICN):
        return WireType(token, reader.u8(), reader.u8(), reader.u8())
    if token == DATEN:
        return WireType(token)
    if token in (TIMEN, DATETIME2N, DATETIMEOFFSETN):
        return WireType(token, scale=reader.u8())
    if token in (BIGVARCHR, BIGCHAR, NVARCHAR, NCHAR):
        size = reader.u16()
        reader.take(5)  # collation
        return WireType(token, size)
    if token in (BIGVARBIN, BIGBINARY):
        return WireType(token, reader.u16())
    if token in (TEXT, NTEXT, IMAGE):
        size = reader.u32()
        if token != IMAGE:
            reader.take(5)
        return WireType(token, size)
    raise ValueError(f"parameter type 0x{token:02x} is not supported by the test server")


def read_value(reader: ByteReader, wire: WireType) -> Any:
    token = wire.token
    if token in _FIXED_SIZES:
        return _decode_fixed(token, reader.take(wire.size)) if wire.size else None
    if token in (BIGVARCHR, BIGCHAR, NVARCHAR, NCHAR, BIGVARBIN, BIGBINARY):
        data = _read_plp(reader) if wire.size == 0xFFFF else _read_ushort_bytes(reader)
        return None if data is None else _decode_text(token, data)
    if token in (TEXT, NTEXT, IMAGE):
        pointer_length = reader.u8()
        if pointer_length == 0:
            return None
        reader.take(pointer_length + 8)  # text pointer and timestamp
        return _decode_text(token, reader.take(reader.u32()))
    length = reader.u8()
    if length == 0:
        return None
    body = reader.take(length)
    if token == INTN:
        return int.from_bytes(body, "little", signed=length != 1)
    if token == BITN:
        return bool(body[0])
    if token == FLTN:
        return struct.unpack("<f" if length == 4 else "<d", body)[0]
    if token == MONEYN:
        return _decode_fixed(MONEY if length == 8 else MONEY4, body)
    if token == DATETIMN:
        return _decode_fixed(DATETIME if length == 8 else DATETIM4, body)
    if token == GUID:
        return uuid.UUID(bytes_le=body)
    if token in (DECIMALN, NUMERICN):
        units = int.from_bytes(body[1:], "little")
        return decimal.Decimal(units if body[0] else -units).scaleb(-wire.scale, context=EXACT)
    if token == DATEN:
        return DATE_ZERO + dt.timedelta(days=int.from_bytes(body, "little"))
    size = time_size(wire.scale)
    micros = _micros(int.from_bytes(body[:size], "little"), wire.scale)
    if token == TIMEN:
        return (dt.datetime.min + dt.timedelta(microseconds=micros)).time()
    day = DATE_ZERO + dt.timedelta(days=int.from_bytes(body[size : size + 3], "little"))
    moment = dt.datetime(day.year, day.month, day.day) + dt.timedelta(microseconds=micros)
    if token == DATETIME2N:
        return moment
    minutes = struct.unpack("<h", body[size + 3 : size + 5])[0]
    offset = dt.timezone(dt.timedelta(minutes=minutes))
    return (moment + dt.timedelta(minutes=minutes)).replace(tzinfo=offset)


def _micros(ticks: int, scale: int) -> int:
    return ticks // 10 ** (scale - 6) if scale >= 6 else ticks * 10 ** (6 - scale)


def _decode_fixed(token: int, body: bytes) -> Any:
    if token == INT1:
        return body[0]
    if token == BIT:
        return bool(body[0])
    if token in (INT2, INT4, INT8):
        return int.from_bytes(body, "little", signed=True)
    if token == FLT4:
        return struct.unpack("<f", body)[0]
    if token == FLT8:
        return struct.unpack("<d", body)[0]
    if token == MONEY:
        high, low = struct.unpack("<iI", body)
        return decimal.Decimal((high << 32) | low).scaleb(-4, context=EXACT)
    if token == MONEY4:
        return decimal.Decimal(struct.unpack("<i", body)[0]).scaleb(-4, context=EXACT)
    if token == DATETIME:
        days, ticks = struct.unpack("<iI", body)
        return dt.datetime(1900, 1, 1) + dt.timedelta(days=days, microseconds=round(ticks * 1_000_000 / 300))
    if token == DATETIM4:
        days, minutes = struct.unpack("<HH", body)
        return dt.datetime(1900, 1, 1) + dt.timedelta(days=days, minutes=minutes)
    raise ValueError(f"type 0x{token:02x}")


def _read_ushort_bytes(reader: ByteReader) -> bytes | None:
    length = reader.u16()
    return None if length == 0xFFFF else reader.take(length)


def _read_plp(reader: ByteReader) -> bytes | None:
    total = reader.u64()
    if total == PLP_NULL:
        return None
    parts = []
    while True:
        chunk = reader.u32()
        if chunk == 0:
            return b"".join(parts)
        parts.append(reader.take(chunk))


def _decode_text(token: int, data: bytes) -> Any:
    if token in (NVARCHAR, NCHAR, NTEXT):
        return data.decode("utf-16-le")
    if token in (BIGVARCHR, BIGCHAR, TEXT):
        return data.decode(VARCHAR_CODEC, errors="replace")
    return data

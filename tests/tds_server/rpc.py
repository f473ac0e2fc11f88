"""RPC requests (MS-TDS 2.2.6.6): procedure by id or name, then parameters with their TYPE_INFO and value."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .types import ByteReader, WireType, read_type_info, read_value

PROC_IDS = {
    1: "sp_cursor",
    2: "sp_cursoropen",
    3: "sp_cursorprepare",
    4: "sp_cursorexecute",
    5: "sp_cursorprepexec",
    6: "sp_cursorunprepare",
    7: "sp_cursorfetch",
    8: "sp_cursoroption",
    9: "sp_cursorclose",
    10: "sp_executesql",
    11: "sp_prepare",
    12: "sp_execute",
    13: "sp_prepexec",
    14: "sp_prepexecrpc",
    15: "sp_unprepare",
}
BATCH_SEPARATORS = (0x80, 0xFE, 0xFF)
STATUS_BYREF = 0x01


@dataclass(frozen=True)
class Param:
    name: str  # '@P1', or '' when sent by position
    output: bool
    wire: WireType
    value: Any


@dataclass(frozen=True)
class RpcCall:
    procedure: str  # lower case, schema and brackets removed: 'sp_executesql', 'sp_datatype_info_100'
    params: list[Param]


def skip_all_headers(payload: bytes) -> int:
    """Offset after ALL_HEADERS (TDS 7.2+: a 4-byte total length that includes itself)."""
    total = int.from_bytes(payload[:4], "little")
    return total if 4 <= total <= len(payload) else 0


def parse(payload: bytes) -> list[RpcCall]:
    reader = ByteReader(payload, skip_all_headers(payload))
    calls = []
    while not reader.at_end():
        name_length = reader.u16()
        if name_length == 0xFFFF:
            proc_id = reader.u16()
            procedure = PROC_IDS.get(proc_id, f"proc#{proc_id}")
        else:
            procedure = normalize_name(reader.take(name_length * 2).decode("utf-16-le"))
        reader.u16()  # option flags (recompile, no metadata)
        params = []
        while not reader.at_end() and reader.data[reader.pos] not in BATCH_SEPARATORS:
            name = reader.b_varchar()
            status = reader.u8()
            wire = read_type_info(reader)
            params.append(Param(name, bool(status & STATUS_BYREF), wire, read_value(reader, wire)))
        calls.append(RpcCall(procedure, params))
        if not reader.at_end():
            reader.u8()
    return calls


def normalize_name(name: str) -> str:
    """``[sys].sp_datatype_info_100`` -> ``sp_datatype_info_100``."""
    last = name.split(".")[-1]
    return last.strip('[]"').lower()


_DECLARATION = re.compile(r"(@\w+)\s", re.IGNORECASE)


def declared_names(declaration: str | None) -> list[str]:
    """Parameter names in order from ``'@P1 nvarchar(9),@P2 int'``."""
    return [m.group(1) for m in _DECLARATION.finditer((declaration or "") + " ")]

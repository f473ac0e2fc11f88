"""PRELOGIN (MS-TDS 2.2.6.5): option tokens with big-endian offsets, then the option data."""

from __future__ import annotations

import struct
from dataclasses import dataclass

VERSION, ENCRYPTION, INSTOPT, THREADID, MARS, TRACEID, FEDAUTHREQUIRED, NONCEOPT = range(8)
TERMINATOR = 0xFF

ENCRYPT_OFF, ENCRYPT_ON, ENCRYPT_NOT_SUP, ENCRYPT_REQ = 0, 1, 2, 3


@dataclass(frozen=True)
class Prelogin:
    options: dict[int, bytes]

    @property
    def encryption(self) -> int:
        return self.options.get(ENCRYPTION, bytes([ENCRYPT_OFF]))[0]

    @property
    def wants_fedauth(self) -> bool:
        return FEDAUTHREQUIRED in self.options


def parse(payload: bytes) -> Prelogin:
    options: dict[int, bytes] = {}
    pos = 0
    while pos < len(payload) and payload[pos] != TERMINATOR:
        token, offset, length = struct.unpack(">BHH", payload[pos : pos + 5])
        options[token] = payload[offset : offset + length]
        pos += 5
    if VERSION not in options:
        raise ValueError("PRELOGIN without a VERSION option")
    return Prelogin(options)


def build(options: list[tuple[int, bytes]]) -> bytes:
    header_size = 5 * len(options) + 1
    headers, data = bytearray(), bytearray()
    for token, value in options:
        headers += struct.pack(">BHH", token, header_size + len(data), len(value))
        data += value
    return bytes(headers) + bytes([TERMINATOR]) + bytes(data)


def response(encryption: int, *, fedauth_required: bool) -> bytes:
    options = [
        (VERSION, bytes([16, 0]) + struct.pack(">H", 1000) + b"\x00\x00"),
        (ENCRYPTION, bytes([encryption])),
        (INSTOPT, b"\x00"),
        (THREADID, b""),
        (MARS, b"\x00"),
    ]
    if fedauth_required:
        options.append((FEDAUTHREQUIRED, b"\x01"))
    return build(options)

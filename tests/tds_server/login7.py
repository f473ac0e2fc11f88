"""LOGIN7 (MS-TDS 2.2.6.4): the fixed header, offset/length pairs into the variable part, feature extensions."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

FEATURE_FEDAUTH = 0x02
FEATURE_TERMINATOR = 0xFF
FEDAUTH_LIBRARY_SECURITYTOKEN = 0x01
OPTION_FLAGS3_EXTENSION = 0x10

_FIXED = struct.Struct("<IIIIIIBBBBII")  # length, TDS version, packet size, program version, pid, connection id, flags, tz, lcid
_NAMES = ("host", "user", "password", "app", "server", "extension", "library", "language", "database")


@dataclass
class Login7:
    tds_version: int
    packet_size: int
    host: str = ""
    user: str = ""
    password: str = ""
    app: str = ""
    server: str = ""
    library: str = ""
    language: str = ""
    database: str = ""
    features: dict[int, bytes] = field(default_factory=dict)

    @property
    def access_token(self) -> str | None:
        """The FEDAUTH extension's token (security-token library), if the client sent one."""
        data = self.features.get(FEATURE_FEDAUTH)
        if not data or (data[0] >> 1) != FEDAUTH_LIBRARY_SECURITYTOKEN:
            return None
        size = struct.unpack("<I", data[1:5])[0]
        return data[5 : 5 + size].decode("utf-16-le")


def decode_password(data: bytes) -> str:
    """LOGIN7 scrambles each byte of the UTF-16 password: nibbles swapped, then XOR 0xA5; undo both."""
    plain = bytes((((b ^ 0xA5) << 4) & 0xF0) | ((b ^ 0xA5) >> 4) for b in data)
    return plain.decode("utf-16-le")


def parse(payload: bytes) -> Login7:
    fixed = _FIXED.unpack(payload[: _FIXED.size])
    login = Login7(tds_version=fixed[1], packet_size=fixed[2])
    flags3 = fixed[9]
    pos = _FIXED.size
    extension_offset = None
    for name in _NAMES:
        offset, length = struct.unpack("<HH", payload[pos : pos + 4])
        pos += 4
        if name == "extension":
            if flags3 & OPTION_FLAGS3_EXTENSION and length >= 4:
                extension_offset = struct.unpack("<I", payload[offset : offset + 4])[0]
            continue
        raw = payload[offset : offset + 2 * length]
        setattr(login, name, decode_password(raw) if name == "password" else raw.decode("utf-16-le"))
    if extension_offset:
        login.features = _features(payload, extension_offset)
    return login


def _features(payload: bytes, pos: int) -> dict[int, bytes]:
    features: dict[int, bytes] = {}
    while pos < len(payload) and payload[pos] != FEATURE_TERMINATOR:
        feature = payload[pos]
        size = struct.unpack("<I", payload[pos + 1 : pos + 5])[0]
        features[feature] = payload[pos + 5 : pos + 5 + size]
        pos += 5 + size
    return features

"""TDS packets (MS-TDS 2.2.3): an 8-byte header, then payload; a message is packets up to one with EOM set.

A ``Channel`` is the byte stream packets travel on: the raw socket, or TLS over it
(see ``tls.py``). Reading and writing whole messages is all the session needs.
"""

from __future__ import annotations

import select
import socket
import struct
from abc import ABC, abstractmethod
from dataclasses import dataclass

HEADER = struct.Struct(">BBHHBB")  # type, status, length (big-endian, header included), SPID, packet id, window
STATUS_EOM = 0x01

SQL_BATCH = 0x01
RPC = 0x03
TABULAR_RESULT = 0x04
ATTENTION = 0x06
TRANSACTION_MANAGER = 0x0E
LOGIN7 = 0x10
PRELOGIN = 0x12

DEFAULT_PACKET_SIZE = 4096


class Disconnected(Exception):
    """The peer closed the connection (or the server dropped it on purpose)."""


class Channel(ABC):
    """A byte stream: ``recv`` returns what is available (b'' at end), ``sendall`` writes everything."""

    sock: socket.socket

    @abstractmethod
    def recv(self, size: int) -> bytes: ...

    @abstractmethod
    def sendall(self, data: bytes) -> None: ...

    def pending(self) -> bool:
        """True when bytes are waiting to be read (used to notice an Attention while a result streams)."""
        readable, _, _ = select.select([self.sock], [], [], 0)
        return bool(readable)


class SocketChannel(Channel):
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def recv(self, size: int) -> bytes:
        return self.sock.recv(size)

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)


def read_exact(channel: Channel, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = channel.recv(size - len(chunks))
        if not chunk:
            raise Disconnected("peer closed the connection")
        chunks += chunk
    return bytes(chunks)


@dataclass
class Message:
    type: int
    payload: bytes
    status: int = STATUS_EOM


def read_message(channel: Channel) -> Message:
    """Read packets until end-of-message; an Attention is a message of its own (one header, no payload)."""
    payload = bytearray()
    while True:
        kind, status, length, _spid, _packet_id, _window = HEADER.unpack(read_exact(channel, HEADER.size))
        if length < HEADER.size:
            raise Disconnected(f"malformed TDS packet length {length}")
        payload += read_exact(channel, length - HEADER.size)
        if status & STATUS_EOM:
            return Message(kind, bytes(payload), status)


def packetize(kind: int, payload: bytes, packet_size: int, spid: int = 0) -> list[bytes]:
    """Split ``payload`` into packets of at most ``packet_size`` bytes (header included)."""
    room = packet_size - HEADER.size
    packets = []
    offset = 0
    packet_id = 1
    while True:
        chunk = payload[offset : offset + room]
        offset += len(chunk)
        last = offset >= len(payload)
        packets.append(HEADER.pack(kind, STATUS_EOM if last else 0, len(chunk) + HEADER.size, spid, packet_id % 256, 0) + chunk)
        packet_id += 1
        if last:
            return packets


def write_message(channel: Channel, kind: int, payload: bytes, packet_size: int = DEFAULT_PACKET_SIZE, spid: int = 0) -> None:
    channel.sendall(b"".join(packetize(kind, payload, packet_size, spid)))


class ResponseWriter:
    """Streams one tabular-result message: full packets leave as soon as they fill, the last one carries EOM.

    Sending as we go (rather than building the whole reply) is what lets a client's
    Attention, or a planned connection drop, land in the middle of a result set.
    """

    def __init__(self, channel: Channel, packet_size: int, spid: int) -> None:
        self.channel = channel
        self.room = packet_size - HEADER.size
        self.spid = spid
        self.buffer = bytearray()
        self.packet_id = 1
        self.packets_sent = 0

    def write(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) > self.room:
            self._send(bytes(self.buffer[: self.room]), last=False)
            del self.buffer[: self.room]

    def finish(self) -> None:
        self._send(bytes(self.buffer), last=True)
        self.buffer.clear()

    def finish_partial(self) -> None:
        """Send what is buffered as a packet without EOM: the reply is visibly under way."""
        if self.buffer:
            self._send(bytes(self.buffer), last=False)
            self.buffer.clear()

    def _send(self, chunk: bytes, *, last: bool) -> None:
        header = HEADER.pack(
            TABULAR_RESULT, STATUS_EOM if last else 0, len(chunk) + HEADER.size, self.spid, self.packet_id % 256, 0
        )
        self.channel.sendall(header + chunk)
        self.packet_id += 1
        self.packets_sent += 1

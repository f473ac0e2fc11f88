"""One client connection: PRELOGIN (and TLS), LOGIN7, then requests until the client leaves.

The session turns SQL batches and RPCs into engine calls and streams their
results as tokens, watching the socket for an Attention between packets and
applying any fault the test planned (drop the connection after N rows, stall).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import catalog, login7, prelogin, rpc, tokens
from .engine import Count, EngineSession, Rows, SqlError
from .packets import (
    ATTENTION,
    DEFAULT_PACKET_SIZE,
    LOGIN7,
    PRELOGIN,
    RPC,
    SQL_BATCH,
    TABULAR_RESULT,
    TRANSACTION_MANAGER,
    Channel,
    Disconnected,
    ResponseWriter,
    SocketChannel,
    read_message,
    write_message,
)
from .tls import TlsChannel, server_context
from .types import TsqlType

if TYPE_CHECKING:
    from .server import TdsServer

LOGIN_FAILED = 18456
TM_BEGIN, TM_COMMIT, TM_ROLLBACK = 5, 7, 8
TRANSACTION_ID = struct.pack("<Q", 1)
DONE_MORE_INPROC = tokens.DONE_MORE
INT = TsqlType("int")


class Attention(Exception):
    """The client cancelled the running request."""


@dataclass
class Prepared:
    statement: str
    names: list[str]


class Session:
    def __init__(self, server: TdsServer, sock: socket.socket, spid: int) -> None:
        self.server = server
        self.sock = sock
        self.spid = spid
        self.channel: Channel = SocketChannel(sock)
        self.packet_size = DEFAULT_PACKET_SIZE
        self.engine: EngineSession | None = None
        self.prepared: dict[int, Prepared] = {}
        self.next_handle = 1
        self.user = ""
        self.encryption = "off"

    # --- connection set-up ---------------------------------------------------------------------

    def serve(self) -> None:
        try:
            if not self._handshake() or not self._login():
                return
            self.server.stats.logged_in(self)
            try:
                while not self.server.stopping.is_set():
                    message = read_message(self.channel)
                    self._dispatch(message.type, message.payload)
            finally:
                self.server.stats.logged_out(self)
        except (Disconnected, ConnectionError, OSError):
            pass
        finally:
            if self.engine is not None:
                self.engine.close()
            with contextlib.suppress(OSError):
                self.sock.close()

    def _handshake(self) -> bool:
        first = self.sock.recv(1, socket.MSG_PEEK)
        if not first:
            return False
        strict = first[0] == 0x16  # a TLS ClientHello: TDS 8.0
        if strict:
            if self.server.certificate is None:
                return False
            tls = TlsChannel(SocketChannel(self.sock), server_context(self.server.certificate, strict=True))
            tls.handshake_strict()
            self.channel = tls
            self.encryption = "strict"
        message = read_message(self.channel)
        if message.type != PRELOGIN:
            return False
        request = prelogin.parse(message.payload)
        if strict:
            answer = prelogin.ENCRYPT_NOT_SUP
        elif request.encryption in (prelogin.ENCRYPT_ON, prelogin.ENCRYPT_REQ) and self.server.certificate is not None:
            answer = prelogin.ENCRYPT_ON
        else:
            answer = prelogin.ENCRYPT_NOT_SUP
        fedauth = request.wants_fedauth and self.server.access_token is not None
        write_message(self.channel, TABULAR_RESULT, prelogin.response(answer, fedauth_required=fedauth))
        if answer == prelogin.ENCRYPT_ON:
            assert self.server.certificate is not None
            tls = TlsChannel(SocketChannel(self.sock), server_context(self.server.certificate, strict=False))
            tls.handshake_in_prelogin()
            self.channel = tls
            self.encryption = "tls"
        return True

    def _login(self) -> bool:
        message = read_message(self.channel)
        if message.type != LOGIN7:
            return False
        login = login7.parse(message.payload)
        self.packet_size = login.packet_size if 512 <= login.packet_size <= 32767 else DEFAULT_PACKET_SIZE
        self.user = login.user
        token = login.access_token
        if token is not None:
            accepted = self.server.access_token is not None and token == self.server.access_token
            who = "<token-identified principal>"
        else:
            accepted = self.server.logins.get(login.user) == login.password and login.user != ""
            who = login.user
        if not accepted:
            self.server.stats.login_failed()
            reply = tokens.message(LOGIN_FAILED, f"Login failed for user '{who}'.", severity=14, state=1) + tokens.done(
                tokens.DONE_ERROR
            )
            write_message(self.channel, TABULAR_RESULT, reply, self.packet_size, self.spid)
            return False
        database = login.database or self.server.engine.database
        self.engine = self.server.engine.session(self.spid)
        reply = (
            tokens.env_change(tokens.ENV_DATABASE, database, "master")
            + tokens.message(5701, f"Changed database context to '{database}'.", severity=0, state=2)
            + tokens.collation_change()
            + tokens.env_change(tokens.ENV_LANGUAGE, "us_english")
            + tokens.message(5703, "Changed language setting to us_english.", severity=0, state=1)
            + tokens.login_ack()
            + tokens.env_change(tokens.ENV_PACKET_SIZE, str(self.packet_size), str(login.packet_size))
        )
        if token is not None:
            reply += tokens.feature_ext_ack([(login7.FEATURE_FEDAUTH, b"")])
        reply += tokens.done()
        write_message(self.channel, TABULAR_RESULT, reply, DEFAULT_PACKET_SIZE, self.spid)
        return True

    # --- requests -------------------------------------------------------------------------------

    def _dispatch(self, kind: int, payload: bytes) -> None:
        writer = ResponseWriter(self.channel, self.packet_size, self.spid)
        if kind == ATTENTION:  # arrived after the reply was complete: acknowledge it alone
            writer.write(tokens.done(tokens.DONE_ATTN))
        elif kind == SQL_BATCH:
            text = payload[rpc.skip_all_headers(payload) :].decode("utf-16-le")
            self.server.stats.request(text)
            self._respond(writer, lambda: self._batch(writer, text))
        elif kind == RPC:
            self._respond(writer, lambda: self._rpcs(writer, payload))
        elif kind == TRANSACTION_MANAGER:
            writer.write(self._transaction(payload) + tokens.done())
        else:
            writer.write(
                tokens.message(4002, f"The incoming tabular data stream (TDS) message type 0x{kind:02x} is not supported.")
                + tokens.done(tokens.DONE_ERROR)
            )
        writer.finish()

    def _respond(self, writer: ResponseWriter, action: Any) -> None:
        try:
            action()
        except Attention:
            writer.write(tokens.done(tokens.DONE_ATTN))

    def _transaction(self, payload: bytes) -> bytes:
        request = int.from_bytes(payload[rpc.skip_all_headers(payload) :][:2], "little")
        if request == TM_BEGIN:
            return tokens.env_change_bytes(tokens.ENV_BEGIN_TRAN, TRANSACTION_ID)
        if request == TM_COMMIT:
            return tokens.env_change_bytes(tokens.ENV_COMMIT_TRAN, b"", TRANSACTION_ID)
        if request == TM_ROLLBACK:
            return tokens.env_change_bytes(tokens.ENV_ROLLBACK_TRAN, b"", TRANSACTION_ID)
        return b""

    def _batch(self, writer: ResponseWriter, text: str) -> None:
        assert self.engine is not None
        self._stream(writer, text, self.engine.run(text), done_token=tokens.DONE)

    def _rpcs(self, writer: ResponseWriter, payload: bytes) -> None:
        try:
            calls = rpc.parse(payload)
        except ValueError as exc:
            writer.write(tokens.message(8009, f"The incoming RPC could not be read: {exc}") + tokens.done(tokens.DONE_ERROR))
            return
        for index, call in enumerate(calls):
            more = tokens.DONE_MORE if index < len(calls) - 1 else 0
            status, outputs = self._rpc(writer, call)
            writer.write(tokens.return_status(0 if not status & tokens.DONE_ERROR else 1))
            for ordinal, (name, value) in enumerate(outputs):
                writer.write(tokens.return_value(ordinal, name, INT, value))
            writer.write(tokens.done(more | (status & tokens.DONE_ERROR), token=tokens.DONEPROC))

    def _rpc(self, writer: ResponseWriter, call: rpc.RpcCall) -> tuple[int, list[tuple[str, Any]]]:
        """Run one RPC; (DONE status so far, output parameters to return)."""
        assert self.engine is not None
        procedure, params = call.procedure, call.params
        self.server.stats.request(f"EXEC {procedure}")
        if procedure == "sp_executesql":
            statement = str(params[0].value)
            values = self._bind(params[2:], params[1].value if len(params) > 1 else None)
            return self._run(writer, statement, values), []
        if procedure in ("sp_prepexec", "sp_prepare"):
            handle = self._prepare(str(params[2].value), params[1].value)
            outputs = [(params[0].name, handle)]
            if procedure == "sp_prepare":
                return 0, outputs
            prepared = self.prepared[handle]
            return self._run(writer, prepared.statement, self._bind(params[3:], None, prepared.names)), outputs
        if procedure == "sp_execute":
            handle = int(params[0].value)
            prepared = self.prepared.get(handle)
            if prepared is None:
                return self._error(writer, SqlError(8179, f"Could not find prepared statement with handle {handle}.")), []
            return self._run(writer, prepared.statement, self._bind(params[1:], None, prepared.names)), []
        if procedure == "sp_unprepare":
            self.prepared.pop(int(params[0].value or 0), None)
            return 0, []
        if procedure in catalog.CATALOG_PROCEDURES:
            named = {p.name.lstrip("@").lower(): p.value for p in params if p.name}
            positional = [p.value for p in params if not p.name]
            try:
                result = catalog.call(self.server.engine, procedure, positional, named)
            except SqlError as exc:
                return self._error(writer, exc), []
            return self._stream(writer, procedure, iter([result]), done_token=tokens.DONEINPROC), []
        return self._error(writer, SqlError(2812, f"Could not find stored procedure '{procedure}'.")), []

    def _prepare(self, statement: str, declaration: Any) -> int:
        handle = self.next_handle
        self.next_handle += 1
        self.prepared[handle] = Prepared(statement, rpc.declared_names(declaration))
        return handle

    def _bind(self, params: list[rpc.Param], declaration: Any, names: list[str] | None = None) -> dict[str, Any]:
        names = names if names is not None else rpc.declared_names(declaration)
        values = {}
        for index, param in enumerate(params):
            name = param.name or (names[index] if index < len(names) else f"@P{index + 1}")
            values[name] = param.value
        return values

    def _run(self, writer: ResponseWriter, statement: str, values: dict[str, Any]) -> int:
        assert self.engine is not None
        self.server.stats.request(statement)
        return self._stream(writer, statement, self.engine.run(statement, values), done_token=tokens.DONEINPROC)

    def _error(self, writer: ResponseWriter, error: SqlError) -> int:
        writer.write(tokens.message(error.number, error.text, severity=error.severity, state=error.state))
        return tokens.DONE_ERROR

    def _stream(self, writer: ResponseWriter, text: str, outcomes: Iterator[Rows | Count], *, done_token: int) -> int:
        """Write each outcome's tokens and its DONE (or DONEINPROC); returns DONE_ERROR when a statement failed.

        A batch's last DONE is the final one (MORE clear); inside a procedure every
        DONEINPROC has MORE set, since the procedure's DONEPROC follows.
        """
        last = DONE_MORE_INPROC if done_token == tokens.DONEINPROC else 0
        pending: tuple[int | None] | None = None
        try:
            for outcome in outcomes:
                if pending is not None:
                    writer.write(_done(done_token, tokens.DONE_MORE, pending[0]))
                pending = (outcome.rows if isinstance(outcome, Count) else self._write_rows(writer, text, outcome),)
        except SqlError as exc:
            return self._fail(writer, done_token, pending, exc)
        except (Attention, Disconnected, OSError):
            raise
        except Exception as exc:  # an engine failure mid-result still answers as an error, never a hang
            return self._fail(writer, done_token, pending, SqlError(50000, f"{type(exc).__name__}: {exc}"))
        writer.write(_done(done_token, last, pending[0] if pending is not None else None))
        return 0

    def _fail(self, writer: ResponseWriter, done_token: int, pending: tuple[int | None] | None, error: SqlError) -> int:
        if pending is not None:
            writer.write(_done(done_token, tokens.DONE_MORE, pending[0]))
        self._error(writer, error)
        if done_token == tokens.DONE:
            writer.write(tokens.done(tokens.DONE_ERROR))
        return tokens.DONE_ERROR

    def _write_rows(self, writer: ResponseWriter, text: str, result: Rows) -> int:
        types = [t for _name, t in result.columns]
        writer.write(tokens.col_metadata(result.columns))
        fault = self.server.faults.for_query(text)
        sent = 0
        packets_seen = writer.packets_sent
        for batch in result.batches:
            for values in batch:
                writer.write(tokens.row(types, values))
                sent += 1
                if fault is not None:
                    fault.apply(self, writer, sent)
                if writer.packets_sent != packets_seen:
                    packets_seen = writer.packets_sent
                    self._check_attention()
        self.server.stats.rows_sent(sent)
        return sent

    def _check_attention(self) -> None:
        if self.channel.pending():
            message = read_message(self.channel)
            if message.type == ATTENTION:
                self.server.stats.attention()
                raise Attention()

    def wait_for_attention(self, limit_seconds: float) -> None:
        """Stall (a planned slow query) until the client sends an Attention or the limit passes."""
        deadline = time.monotonic() + limit_seconds
        while time.monotonic() < deadline and not self.server.stopping.is_set():
            self._check_attention()
            time.sleep(0.02)

    def drop(self) -> None:
        """Close the socket without a word: the planned mid-result connection loss."""
        self.server.stats.dropped()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        raise Disconnected("dropped on purpose")


def _done(token: int, status: int, rows: int | None) -> bytes:
    return tokens.done(status, rows=rows, token=token)


__all__ = ["Session", "threading"]

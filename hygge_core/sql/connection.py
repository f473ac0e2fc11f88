"""One open database connection, whichever library opened it, with the few operations hygge needs.

``ArrowOdbcConnection`` streams results as Arrow record batches straight from
the driver's buffers (no Python object per value). ``MssqlPythonConnection`` is the
route for Azure token logins: Microsoft's mssql-python passes the token before
connecting and converts results to Arrow in C++. ``PyodbcConnection`` is their
fallback (``hygge_core.sql.odbc`` says when), converting ``fetchmany`` rows to Arrow.
Both cast to the catalog's schema, so every route produces the same types. Any
driver error marks the connection broken, so the pool discards it instead of
handing it out again.
"""

from __future__ import annotations

import contextlib
import functools
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar

import pyarrow as pa

from hygge_core.errors import HomeError
from hygge_core.sql import drivers
from hygge_core.sql.failures import classify
from hygge_core.sql.odbc import ConnectTarget

_PYODBC_LOGIN_TIMEOUT_ATTR = 103  # SQL_ATTR_LOGIN_TIMEOUT
METADATA_BUFFER_BYTES = 1024 * 1024  # catalog, COUNT and MAX results: a few rows; larger ones take more fetches


@dataclass(frozen=True)
class ReadOptions:
    """Bounds on one streaming read. Buffers are sized by the largest possible row, so text needs a cap."""

    batch_size: int = 100_000
    max_text_size: int = 8192
    max_binary_size: int = 65536
    max_bytes_per_batch: int = 16 * 1024 * 1024
    query_timeout_seconds: int | None = None


class SqlConnection(ABC):
    """One open database connection, opened by a driver library that subclasses name (``_driver``, ``_connect``)."""

    _handle: Any
    _error_type: type[Exception]
    # Whether this route can hold one snapshot for a whole read and share it with other connections (the range
    # readers of a parallel read). Only the native PostgreSQL reader can; the ODBC routes run each statement alone.
    shares_snapshots: ClassVar[bool] = False

    def __init__(self, target: ConnectTarget) -> None:
        self.target = target
        self.opened_at = time.monotonic()
        self.last_used_at = self.opened_at  # set by the pool when the connection comes back
        self.broken = False
        driver = self._driver()
        self._error_type = driver.Error
        try:
            self._handle = self._connect(driver, target)
        except self._error_type as exc:
            raise self._fail(exc, "connecting") from None
        for statement in target.session_setup:
            self.execute(statement, during="setting up the session")

    @staticmethod
    @abstractmethod
    def _driver() -> ModuleType:
        """The driver module (imported at the point of use); its ``Error`` is what ``_fail`` classifies."""

    @staticmethod
    @abstractmethod
    def _connect(driver: ModuleType, target: ConnectTarget) -> Any:
        """Open the driver's connection handle."""

    @abstractmethod
    def read_batches(
        self, query: str, schema: pa.Schema | None, options: ReadOptions, *, during: str, parameters: Sequence[str] | None = None
    ) -> Iterator[pa.RecordBatch]:
        """Stream ``query``'s result; ``schema`` (when known from the catalog) fixes every column's type."""

    def fetch_all(self, query: str, *, during: str, parameters: Sequence[str] | None = None) -> pa.Table:
        """A small result (catalog lookups, MAX, COUNT) as one table.

        The driver's buffer is allocated in full before the first row arrives, so it is
        kept small here: at the bulk reads' 16 MiB, every catalog lookup of every entity
        paid tens of milliseconds for memory a handful of rows never touch.
        """
        options = ReadOptions(batch_size=10_000, max_text_size=4096, max_bytes_per_batch=METADATA_BUFFER_BYTES)
        batches = list(self.read_batches(query, None, options, during=during, parameters=parameters))
        if not batches:
            return pa.table({})
        return pa.Table.from_batches(batches)

    def execute(self, statement: str, *, during: str) -> None:
        """Run a statement with no result (session set-up, ``SELECT 1``); both drivers' handles share this call."""
        try:
            self._handle.execute(statement)
        except self._error_type as exc:
            raise self._fail(exc, during) from None

    @abstractmethod
    def close(self) -> None: ...

    # --- one snapshot for a whole read (routes with ``shares_snapshots`` only) ----------------------

    def begin_snapshot(self, *, during: str) -> None:
        """Open a read-only transaction whose snapshot every later statement on this connection sees."""
        raise HomeError(f"{self.target.label}: this reader cannot hold a snapshot")

    def export_snapshot(self, *, during: str) -> str:
        """The open transaction's snapshot id, for ``join_snapshot`` on other connections."""
        raise HomeError(f"{self.target.label}: this reader cannot share a snapshot")

    def join_snapshot(self, snapshot_id: str, *, during: str) -> None:
        """Open a read-only transaction that sees exactly the exported snapshot ``snapshot_id``."""
        raise HomeError(f"{self.target.label}: this reader cannot share a snapshot")

    def end_snapshot(self, *, during: str) -> None:
        """End the transaction ``begin_snapshot`` / ``join_snapshot`` opened."""
        raise HomeError(f"{self.target.label}: this reader cannot hold a snapshot")

    def ping(self) -> None:
        """A round trip proving the connection still works (raises on a dead one)."""
        self.execute("SELECT 1", during="checking a pooled connection")

    def _fail(self, exc: BaseException, during: str) -> Exception:
        self.broken = True
        return classify(exc, self.target.label, during=during, secrets=self.target.secrets, state=self._sqlstate(exc))

    def _read_failed(self, exc: BaseException, during: str, options: ReadOptions, started: float) -> Exception:
        """``_fail`` for a bulk read: a read that ran past ``query_timeout`` says so.

        After the driver's timeout (HYT00), the next fetch reports only "Function sequence error" (HY010),
        which does not name the cause; the elapsed time does.
        """
        timeout = options.query_timeout_seconds
        if timeout and time.monotonic() - started >= timeout:
            self.broken = True
            during = f"{during}, which ran past home.query_timeout ({timeout} s)"
            return classify(exc, self.target.label, during=during, secrets=self.target.secrets, state="HYT00")
        return self._fail(exc, during)

    def _sqlstate(self, exc: BaseException) -> str | None:
        """The SQLSTATE where the driver reports it apart from its message; ``None``: ``classify`` reads the message."""
        return None


class ArrowOdbcConnection(SqlConnection):
    @staticmethod
    def _driver() -> ModuleType:
        return drivers.import_arrow_odbc()

    @staticmethod
    def _connect(driver: ModuleType, target: ConnectTarget) -> Any:
        return driver.connect(target.connection_string, login_timeout_sec=target.login_timeout_seconds)

    def read_batches(
        self, query: str, schema: pa.Schema | None, options: ReadOptions, *, during: str, parameters: Sequence[str] | None = None
    ) -> Iterator[pa.RecordBatch]:
        started = time.monotonic()
        try:
            reader = self._handle.read_arrow_batches(
                query,
                batch_size=options.batch_size,
                parameters=list(parameters) if parameters is not None else None,
                max_bytes_per_batch=options.max_bytes_per_batch,
                max_text_size=options.max_text_size,
                max_binary_size=options.max_binary_size,
                falliable_allocations=True,
                schema=schema,
                map_schema=None if schema is not None else widen_floats,
                query_timeout_sec=options.query_timeout_seconds,
            )
            yield from reader
        except self._error_type as exc:
            raise self._read_failed(exc, during, options, started) from None
        # Through arrow-odbc, msodbcsql ends a result early and without an error when the connection drops
        # mid-result (shown on the TDS test server); one round trip after the last batch turns that silent
        # truncation into the connection error it is, before anything is published.
        self.execute("SELECT 1", during=f"{during} (confirming the result arrived whole)")

    def close(self) -> None:
        # arrow-odbc frees the ODBC connection when its object is released; drop our only reference.
        self._handle = None


class PyodbcConnection(SqlConnection):
    @staticmethod
    def _driver() -> ModuleType:
        return drivers.import_pyodbc()

    @staticmethod
    def _connect(driver: ModuleType, target: ConnectTarget) -> Any:
        attrs: dict[int, Any] = {}
        if target.token_source is not None:
            from hygge_core.sql.auth import SQL_COPT_SS_ACCESS_TOKEN

            attrs[SQL_COPT_SS_ACCESS_TOKEN] = target.token_source.packed()
        return driver.connect(
            target.connection_string, autocommit=True, timeout=target.login_timeout_seconds, attrs_before=attrs or None
        )

    def read_batches(
        self, query: str, schema: pa.Schema | None, options: ReadOptions, *, during: str, parameters: Sequence[str] | None = None
    ) -> Iterator[pa.RecordBatch]:
        started = time.monotonic()
        try:
            self._handle.timeout = options.query_timeout_seconds or 0  # a cursor takes the timeout when it is made
            cursor = self._handle.cursor()
            cursor.execute(query, *(parameters or ()))
            names = [column[0] for column in cursor.description]
            while True:
                rows = cursor.fetchmany(options.batch_size)
                if not rows:
                    break
                columns = list(zip(*rows, strict=True))
                if schema is not None:
                    yield pa.RecordBatch.from_arrays(
                        [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)], schema=schema
                    )
                else:
                    yield pa.RecordBatch.from_arrays([pa.array(col) for col in columns], names=names)
            cursor.close()
        except self._error_type as exc:
            raise self._read_failed(exc, during, options, started) from None

    def close(self) -> None:
        with contextlib.suppress(self._error_type):
            self._handle.close()


class MssqlPythonConnection(SqlConnection):
    """Microsoft's mssql-python: token logins with Arrow-native reads.

    It holds the GIL while it fetches LOB columns (``nvarchar(max)``, ``varbinary(max)``, ``xml``), so
    other threads of the process (the other entities of a shared step) pause during those fetches.
    """

    @staticmethod
    def _driver() -> ModuleType:
        return drivers.import_mssql_python()

    @staticmethod
    def _connect(driver: ModuleType, target: ConnectTarget) -> Any:
        from hygge_core.sql.auth import SQL_COPT_SS_ACCESS_TOKEN

        attrs = {SQL_COPT_SS_ACCESS_TOKEN: target.token_source.packed()} if target.token_source is not None else None
        try:
            return driver.connect(
                target.connection_string, autocommit=True, timeout=target.login_timeout_seconds, attrs_before=attrs
            )
        except driver.exceptions.ConnectionStringParseError as exc:  # names keywords only, never their values
            raise HomeError(f"{target.label}: mssql-python refuses the connection options: {exc}") from None

    def read_batches(
        self, query: str, schema: pa.Schema | None, options: ReadOptions, *, during: str, parameters: Sequence[str] | None = None
    ) -> Iterator[pa.RecordBatch]:
        started = time.monotonic()
        try:
            self._handle.timeout = options.query_timeout_seconds or 0  # a cursor takes the timeout when it is made
            cursor = self._handle.cursor()
            cursor.execute(query, *(parameters or ()))
            for batch in cursor.arrow_reader(batch_size=options.batch_size):
                yield batch.cast(schema) if schema is not None else batch.cast(narrow_large_types(batch.schema))
            cursor.close()
        except self._error_type as exc:
            raise self._read_failed(exc, during, options, started) from None
        # The same driver as arrow-odbc's route underneath: prove the result was not cut short silently.
        self.execute("SELECT 1", during=f"{during} (confirming the result arrived whole)")

    def execute(self, statement: str, *, during: str) -> None:
        try:
            cursor = self._handle.cursor()
            cursor.execute(statement)
            cursor.close()
        except self._error_type as exc:
            raise self._fail(exc, during) from None

    def close(self) -> None:
        with contextlib.suppress(self._error_type):
            self._handle.close()

    def _sqlstate(self, exc: BaseException) -> str | None:
        """mssql-python replaces the SQLSTATE by its description ("Communication link failure"): map it back."""
        return _mssql_python_states().get(exc.driver_error) if isinstance(exc, self._error_type) else None


# The SQLSTATEs hygge's classifier acts on (hygge_core.sql.failures): connection, timeout, login and name errors.
_CLASSIFIED_STATES = ("08001", "08002", "08003", "08004", "08007", "08S01", "HYT00", "HYT01", "40001", "28000")
_CLASSIFIED_STATES += ("42000", "42S02", "42S22")


@functools.cache
def _mssql_python_states() -> dict[str, str]:
    """mssql-python's description of each classified SQLSTATE, mapped back to the state (asked of mssql-python)."""
    from mssql_python.exceptions import sqlstate_to_exception

    found = {state: sqlstate_to_exception(state, "") for state in _CLASSIFIED_STATES}
    return {exc.driver_error: state for state, exc in found.items() if exc is not None}


def open_connection(target: ConnectTarget) -> SqlConnection:
    if target.route == "adbc_postgres":
        from hygge_core.sql.native import AdbcPostgresConnection  # imports this module: loaded at the point of use

        return AdbcPostgresConnection(target)
    if target.route == "mssql_python":
        return MssqlPythonConnection(target)
    if target.route == "pyodbc":
        return PyodbcConnection(target)
    return ArrowOdbcConnection(target)


def widen_floats(schema: pa.Schema) -> pa.Schema:
    """For query entities (no catalog types): psqlODBC reports float8 as a 17-digit SQL_FLOAT, which
    arrow-odbc reads as float32. Widening every float32 keeps all digits (a ``real`` becomes float64)."""
    return pa.schema([f.with_type(pa.float64()) if f.type == pa.float32() else f for f in schema], metadata=schema.metadata)


def narrow_large_types(schema: pa.Schema) -> pa.Schema:
    """mssql-python fetches text and bytes as ``large_string``/``large_binary``; the other routes as ``string``/``binary``."""
    narrowed = {pa.large_string(): pa.string(), pa.large_binary(): pa.binary()}
    return pa.schema([f.with_type(narrowed.get(f.type, f.type)) for f in schema], metadata=schema.metadata)

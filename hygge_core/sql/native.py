"""The native PostgreSQL reader: the ADBC PostgreSQL driver (libpq, binary COPY) straight into Arrow.

Chosen over psqlODBC for speed (no text protocol, no per-value ODBC conversion)
and over connectorx because a parallel read must run statements before its
query in the same transaction (``SET TRANSACTION SNAPSHOT``), which connectorx
cannot. The session runs in autocommit, so hygge opens and ends its transactions
itself: a read is one ``REPEATABLE READ`` transaction whose snapshot the range
readers of a parallel read import (see ``hygge_core.sql.snapshot``).

The select list is the one the ODBC path uses (``hygge_core.sql.typemap``), so
the casts there (uuid, money, oid, unbounded numeric as text...) hold here too.
What the driver delivers differently is cast here: ``numeric`` arrives as its
exact text (an opaque extension type) and becomes ``decimal128(p,s)``.

The libpq connection string holds the password: it lives only in
``ConnectTarget.connection_string`` (never printed) and every error is scrubbed
of it (``hygge_core.sql.failures.redact``).
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any, ClassVar

import pyarrow as pa

from hygge_core.config import ConnectionConfig
from hygge_core.errors import ConfigError, HomeError
from hygge_core.sql import drivers
from hygge_core.sql.connection import ReadOptions, SqlConnection
from hygge_core.sql.odbc import ConnectTarget

# libpq keywords a connection's `options:` may set under reader: native (TLS, keepalives, naming, routing).
LIBPQ_OPTIONS = frozenset(
    {
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "sslpassword",
        "sslcrl",
        "sslcrldir",
        "sslsni",
        "sslnegotiation",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "requirepeer",
        "gssencmode",
        "channel_binding",
        "krbsrvname",
        "application_name",
        "options",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "target_session_attrs",
        "load_balance_hosts",
    }
)
_PLACEHOLDER = re.compile(r"\?")


def postgres_target(name: str, connection: ConnectionConfig, label: str, timeout: int, login: tuple[str, str]) -> ConnectTarget:
    """A libpq connection string for ``connection``; ``options:`` must be libpq keywords (psqlODBC's SSLmode is sslmode)."""
    user, password = login
    extra: dict[str, str] = {}
    for key, value in connection.options.items():
        lowered = key.lower()
        if lowered in LIBPQ_OPTIONS:
            extra[lowered] = value
        else:
            raise ConfigError(
                f"{label}: options.{key} is not a libpq keyword the native PostgreSQL reader can pass on "
                f"(it takes {', '.join(sorted(LIBPQ_OPTIONS))}); set reader: odbc on the connection to use psqlODBC keywords"
            )
    parts = {
        "host": connection.server,
        "port": str(connection.port or 5432),
        "dbname": connection.database,
        "user": user,
        "password": password,
        "connect_timeout": str(timeout),
        "application_name": "hygge",
        **extra,
    }
    return ConnectTarget(
        name=name,
        kind="postgres",
        label=label,
        connection_string=" ".join(f"{key}={_quote(value)}" for key, value in parts.items()),
        route="adbc_postgres",
        login_timeout_seconds=timeout,
        secrets=(password,),
        session_setup=("SET TIME ZONE 'UTC'",),
    )


def _quote(value: str) -> str:
    """A libpq conninfo value: single-quoted, with backslash and quote escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class AdbcPostgresConnection(SqlConnection):
    """One libpq session through ADBC, in autocommit; transactions are opened and ended by hygge's statements."""

    shares_snapshots: ClassVar[bool] = True

    @staticmethod
    def _driver() -> ModuleType:
        return drivers.import_adbc_postgres()

    @staticmethod
    def _connect(driver: ModuleType, target: ConnectTarget) -> Any:
        # "builtin": the driver's own table of PostgreSQL's types instead of reading pg_type and pg_attribute at every
        # connect (50-180 ms against psqlODBC's 15 ms here, and minutes on large catalogs). hygge selects every type
        # outside the builtin ones as text (enums, domains, composites: typemap), so nothing needs the catalog's.
        return driver.connect(
            target.connection_string, db_kwargs={"adbc.postgresql.type_resolver_mode": "builtin"}, autocommit=True
        )

    def execute(self, statement: str, *, during: str) -> None:
        try:
            with contextlib.closing(self._handle.cursor()) as cursor:
                cursor.execute(statement)
        except self._error_type as exc:
            raise self._fail(exc, during) from None

    def read_batches(
        self, query: str, schema: pa.Schema | None, options: ReadOptions, *, during: str, parameters: Sequence[str] | None = None
    ) -> Iterator[pa.RecordBatch]:
        try:
            cursor = self._handle.cursor()
        except self._error_type as exc:
            raise self._fail(exc, during) from None
        try:
            cursor.adbc_statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(options.max_bytes_per_batch)})
            if parameters is not None:
                # hygge's own catalog queries mark parameters the ODBC way; libpq numbers them
                numbers = iter(range(1, len(parameters) + 1))
                query = _PLACEHOLDER.sub(lambda _: f"${next(numbers)}", query)
            cursor.execute(query, list(parameters) if parameters is not None else None)
            reader = cursor.fetch_record_batch()
            for batch in reader:
                for piece in _slices(batch, options.batch_size):
                    yield _conform(piece, schema, self.target.label, during)
        except (self._error_type, OSError, pa.ArrowException) as exc:  # mid-stream, libpq's errors arrive as the stream's OSError
            raise self._fail(exc, during) from None
        finally:
            with contextlib.suppress(self._error_type):
                cursor.close()

    # --- one snapshot for a whole read -----------------------------------------------------------

    def begin_snapshot(self, *, during: str) -> None:
        self.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", during=during)

    def export_snapshot(self, *, during: str) -> str:
        found = self.fetch_all("SELECT pg_export_snapshot() AS snapshot_id", during=during)
        return str(found.column(0)[0].as_py())

    def join_snapshot(self, snapshot_id: str, *, during: str) -> None:
        self.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", during=during)
        self.execute(f"SET TRANSACTION SNAPSHOT '{snapshot_id.replace(chr(39), '')}'", during=during)

    def end_snapshot(self, *, during: str) -> None:
        self.execute("COMMIT", during=during)

    def close(self) -> None:
        with contextlib.suppress(self._error_type):
            self._handle.close()

    def _sqlstate(self, exc: BaseException) -> str | None:
        """ADBC keeps the SQLSTATE beside the message (``None`` on client-side errors)."""
        return exc.sqlstate if isinstance(exc, self._error_type) else None


def _query_column(column: pa.Array, field: pa.Field, label: str, during: str) -> pa.Array:
    """A query entity's column (no catalog types): the canonical map applied to the type the driver reports.

    numeric with a declared precision <= 38 becomes decimal128(p,s) and any other numeric its exact text; money
    (the driver's int64 of cents) decimal128(19,2); uuid its lower-case text; oid (the driver's int32) int64.
    Other types stay as the driver gives them (see docs/sql.md). A type outside PostgreSQL's built-in ones (an
    enum, a composite) would arrive as its raw wire bytes: that fails, saying how to select it.
    """
    metadata = field.metadata or {}
    type_name = metadata.get(b"POSTGRESQL:type", b"").decode()
    if type_name.startswith("unnamed<"):
        raise HomeError(
            f"{label}: {during}: column {field.name!r} has a type the native reader does not know ({type_name}: an enum, "
            f"a composite or an extension's type); select it as text in the query ({field.name}::text) or set reader: odbc"
        )
    if type_name == "numeric":
        typmod = int(metadata.get(b"POSTGRESQL:typmod", b"-1"))
        precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
        if typmod > 0 and 1 <= precision <= 38:
            return column.cast(pa.decimal128(precision, scale))
        return column
    if type_name == "money":
        return column.cast(pa.decimal128(19, 0)).view(pa.decimal128(19, 2))
    if type_name == "uuid":
        return pa.array([None if v is None else str(uuid.UUID(bytes=v)) for v in column.to_pylist()], type=pa.string())
    if type_name == "oid":
        return column.view(pa.uint32()).cast(pa.int64())
    return column


def _slices(batch: pa.RecordBatch, rows: int) -> Iterator[pa.RecordBatch]:
    """The driver sizes batches by bytes; hygge's ``batch_size`` caps rows too (zero-copy slices)."""
    if batch.num_rows <= rows:
        yield batch
        return
    for offset in range(0, batch.num_rows, rows):
        yield batch.slice(offset, rows)


def _conform(batch: pa.RecordBatch, schema: pa.Schema | None, label: str, during: str) -> pa.RecordBatch:
    """Unwrap the driver's extension types (numeric and json as text, uuid as bytes) and cast to the catalog's schema."""
    columns = [column.storage if isinstance(column.type, pa.BaseExtensionType) else column for column in batch.columns]
    if schema is None:
        typed = [_query_column(column, field, label, during) for column, field in zip(columns, batch.schema, strict=True)]
        return pa.RecordBatch.from_arrays(typed, names=batch.schema.names)
    cast = []
    for column, field in zip(columns, schema, strict=True):
        if column.type == field.type:
            cast.append(column)
            continue
        try:
            cast.append(column.cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise HomeError(f"{label}: {during}: column {field.name!r} cannot be read as {field.type}: {exc}") from None
    return pa.RecordBatch.from_arrays(cast, schema=schema)


__all__ = ["AdbcPostgresConnection", "postgres_target"]

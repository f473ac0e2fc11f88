"""Connection strings for a ``ConnectionConfig``, and which library opens them.

PostgreSQL connections read through the native reader (``hygge_core.sql.native``,
libpq through ADBC) unless ``reader: odbc``; everything below is the ODBC side.

Route per auth mode (arrow-odbc takes no pre-connect attributes, so it cannot be
handed an azure-identity token; Microsoft's mssql-python can, and fetches Arrow itself):

=================  ==========================================  ==============================================
auth               how the driver logs in                      opened with (bulk reads)
=================  ==========================================  ==============================================
sql                UID/PWD in the connection string            arrow-odbc (Arrow-native)
managed_identity   ``Authentication=ActiveDirectoryMsi``       arrow-odbc (Arrow-native)
azure_ad           azure-identity token, attribute 1256        mssql-python (Arrow-native)
azure_cli          azure-identity token, attribute 1256        mssql-python (Arrow-native)
service_principal  azure-identity token, attribute 1256        mssql-python (Arrow-native)
=================  ==========================================  ==============================================

Token logins read through pyodbc (rows converted to Arrow, about 3x the client CPU)
when mssql-python is not installed, when ``driver:`` names a driver (mssql-python
loads its own copy of Microsoft's driver) or when ``options:`` hold a keyword
mssql-python does not accept.

The connection string holds secrets; it is never logged or put in an error.
``ConnectTarget.label`` is the safe description used in messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hygge_core.config import ConnectionConfig
from hygge_core.errors import HomeError
from hygge_core.sql import drivers
from hygge_core.sql.auth import TOKEN_MODES, TokenSource, token_source_for

DEFAULT_PORTS = {"mssql": 1433, "postgres": 5432}
# psqlODBC caches a whole result set in client memory unless it reads through a cursor.
POSTGRES_STREAMING = {"UseDeclareFetch": "1", "Fetch": "20000", "BoolsAsChar": "0"}
Route = Literal["arrow_odbc", "mssql_python", "pyodbc", "adbc_postgres"]
# How each route reads, as ``hygge debug`` says it: the pyodbc fallback costs about 3x the client CPU.
ROUTE_NAMES: dict[Route, str] = {
    "arrow_odbc": "arrow-odbc (Arrow)",
    "mssql_python": "mssql-python (Arrow)",
    "pyodbc": "pyodbc rows converted to Arrow (about 3x the client CPU; see docs/sql.md for when)",
    "adbc_postgres": "ADBC's PostgreSQL driver (Arrow, binary COPY)",
}
# Keywords mssql-python sets itself and refuses in a connection string.
MSSQL_PYTHON_RESERVED = frozenset({"driver", "app"})


@dataclass(frozen=True)
class ConnectTarget:
    """Everything needed to open one connection; safe to keep, never to print whole."""

    name: str
    kind: str
    label: str
    connection_string: str = field(repr=False)
    route: Route
    login_timeout_seconds: int
    secrets: tuple[str, ...] = field(default=(), repr=False)
    token_source: TokenSource | None = field(default=None, repr=False)
    session_setup: tuple[str, ...] = ()


def label_for(name: str, connection: ConnectionConfig) -> str:
    port = connection.port or DEFAULT_PORTS[connection.type]
    return f"connection {name!r} ({connection.type} {connection.server}:{port}/{connection.database})"


def escape(value: str) -> str:
    """An ODBC attribute value: braced (with ``}`` doubled) when it has characters that end or confuse a value."""
    if value and not any(c in value for c in ";{}=") and value == value.strip():
        return value
    return "{" + value.replace("}", "}}") + "}"


def build_target(name: str, connection: ConnectionConfig) -> ConnectTarget:
    label = label_for(name, connection)
    timeout = max(1, int(connection.login_timeout.total_seconds()))
    if connection.type == "postgres":
        return _postgres(name, connection, label, timeout)
    return _mssql(name, connection, label, timeout)


def _postgres(name: str, connection: ConnectionConfig, label: str, timeout: int) -> ConnectTarget:
    if connection.auth != "sql":
        raise HomeError(f"{label}: auth {connection.auth!r} is for SQL Server; PostgreSQL connections use auth: sql")
    user, password = _sql_login(connection, label)
    if connection.native_reader:
        from hygge_core.sql.native import postgres_target  # imports this module

        return postgres_target(name, connection, label, timeout, (user, password))
    for key, value in connection.options.items():
        if key.lower() == "usedeclarefetch" and value.strip() != "1":
            raise HomeError(f"{label}: options.UseDeclareFetch must stay 1; without it psqlODBC loads whole tables into memory")
    parts = {
        "Driver": drivers.postgres_driver(connection.driver),
        "Server": connection.server,
        "Port": str(connection.port or DEFAULT_PORTS["postgres"]),
        "Database": connection.database,
        "UID": user,
        "PWD": password,
        # libpq's own connect timeout, so an unanswered connect gives up within login_timeout.
        "pqopt": f"connect_timeout={timeout}",
        **POSTGRES_STREAMING,
        **connection.options,
    }
    return ConnectTarget(
        name=name,
        kind="postgres",
        label=label,
        connection_string=_join(parts),
        route="arrow_odbc",
        login_timeout_seconds=timeout,
        secrets=(password,),
        session_setup=("SET TIME ZONE 'UTC'",),
    )


def _mssql(name: str, connection: ConnectionConfig, label: str, timeout: int) -> ConnectTarget:
    parts = {
        "Driver": drivers.mssql_driver(connection.driver),
        "Server": f"tcp:{connection.server},{connection.port or DEFAULT_PORTS['mssql']}",
        "Database": connection.database,
        "Encrypt": "yes" if connection.encrypt else "no",
        "TrustServerCertificate": "yes" if connection.trust_server_certificate else "no",
        "APP": "hygge",
    }
    secrets: tuple[str, ...] = ()
    token_source = None
    route: Route = "arrow_odbc"
    if connection.auth == "sql":
        user, password = _sql_login(connection, label)
        parts.update(UID=user, PWD=password)
        secrets = (password,)
    elif connection.auth == "managed_identity":
        parts["Authentication"] = "ActiveDirectoryMsi"
        if connection.client_id:
            parts["UID"] = connection.client_id
    elif connection.auth in TOKEN_MODES:
        token_source = token_source_for(connection, label)
        route = _token_route(connection)
        if connection.client_secret is not None:
            secrets = (connection.client_secret.get_secret_value(),)
    parts.update(connection.options)
    if route == "mssql_python":  # it loads its own copy of Microsoft's driver and names itself
        parts = {key: value for key, value in parts.items() if key.lower() not in MSSQL_PYTHON_RESERVED}
    return ConnectTarget(
        name=name,
        kind="mssql",
        label=label,
        connection_string=_join(parts),
        route=route,
        login_timeout_seconds=timeout,
        secrets=secrets,
        token_source=token_source,
    )


def _token_route(connection: ConnectionConfig) -> Route:
    """mssql-python (Arrow-native) unless it is missing, a ``driver:`` is named (mssql-python brings its own copy of
    Microsoft's driver and would ignore it) or ``options:`` hold a keyword mssql-python refuses; pyodbc takes those."""
    if connection.driver is None and drivers.has_mssql_python() and drivers.mssql_python_accepts(connection.options):
        return "mssql_python"
    return "pyodbc"


def _sql_login(connection: ConnectionConfig, label: str) -> tuple[str, str]:
    if not connection.user or connection.password is None:
        raise HomeError(f"{label}: auth sql needs user: and password: (write password: ${{ENV_VAR}} so it stays out of the file)")
    return connection.user, connection.password.get_secret_value()


def _join(parts: dict[str, str]) -> str:
    return ";".join(f"{key}={{{value}}}" if key == "Driver" else f"{key}={escape(value)}" for key, value in parts.items()) + ";"

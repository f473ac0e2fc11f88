"""Turn driver errors (ODBC, and the native PostgreSQL reader's) into hygge errors: retry what a retry can fix, explain the rest.

Drivers report a five-character SQLSTATE; psqlODBC and msodbcsql both put it in
the message (``State: 08001`` from arrow-odbc, ``('08001', ...)`` from pyodbc).
Some states mean different things by driver (PostgreSQL reports a wrong
password as 08001, like a refused connection), so the message text decides
those cases. Secrets are removed from every message before it is raised.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from hygge_core.errors import HomeError, HyggeError, TransientError

_STATE = re.compile(r"(?:State:\s*|\(')([0-9A-Z]{5})\b")

# Wrong credentials: never worth retrying.
_LOGIN_FAILED = ("password authentication failed", "login failed", "authentication failed", "no pg_hba.conf entry")
# The server went away or could not be reached: retry.
_CONNECTION_LOST = (
    "connection refused",
    "could not connect",
    "server closed the connection",
    "terminating connection",
    "communication link failure",
    "connection reset",
    "broken pipe",
    "login timeout expired",
    "timeout expired",
    "could not receive data",
    "could not send data",
    "no connection to the server",
    "connection is dead",
    "tcp provider",
    "the connection is broken",
    "unable to establish connection",
    "could not translate host name",
    "connection timed out",
    "server is not available",
    "the database system is starting up",
    "the database system is shutting down",
)
_TRANSIENT_STATES = {
    "08S01",
    "08003",
    "08006",
    "08007",
    "08004",
    "HYT00",
    "HYT01",
    "40001",
    "40P01",
    "57P01",
    "57P02",
    "57P03",
    "53300",
}
_MISSING_OBJECT_STATES = {"42P01", "42S02", "42S22", "42703", "3F000", "3D000"}


def sqlstate(message: str) -> str | None:
    match = _STATE.search(message)
    return match.group(1) if match else None


def redact(message: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 3:
            message = message.replace(secret, "***")
    message = re.sub(r"(?i)\b(PWD|Password|AccessToken)\s*=\s*(\{(?:[^}]|\}\})*\}|'(?:[^'\\]|\\.)*'|[^;]*)", r"\1=***", message)
    # a URL with a login (postgresql://user:secret@host/db), as libpq and ADBC may echo one
    message = re.sub(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]*@", r"\1***@", message, flags=re.IGNORECASE)
    return message


def driver_message(exc: BaseException) -> str:
    """The driver's text, on one line where possible, without arrow-odbc's Rust backtrace noise."""
    text = str(exc.args[1]) if len(exc.args) > 1 and isinstance(exc.args[1], str) else str(exc)
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def classify(exc: BaseException, label: str, *, during: str, secrets: Iterable[str] = (), state: str | None = None) -> HyggeError:
    """A ``HyggeError`` for ``exc`` naming ``label`` (the server) and what to do; ``during`` says what was attempted.

    ``state`` is the SQLSTATE when the driver reports it apart from the message (mssql-python).
    """
    if isinstance(exc, HyggeError):
        return exc
    raw = str(exc)
    message = redact(driver_message(exc), secrets)
    state = state or sqlstate(raw) or ""
    lowered = raw.lower()
    if any(marker in lowered for marker in _LOGIN_FAILED) or state in {"28000", "28P01"}:
        return HomeError(
            f"{label}: login failed while {during}: {message}; check the user and password (or auth settings) of the connection"
        )
    if re.search(r'database "[^"]*" does not exist|cannot open database', lowered):
        return HomeError(f"{label}: {during}: {message}; check `database:` on the connection")
    if state in _TRANSIENT_STATES or state.startswith("08") or any(marker in lowered for marker in _CONNECTION_LOST):
        return TransientError(
            f"{label}: connection failed while {during}: {message}; check the server is up and reachable (a transient error: retried as the flow's retries: allow)"
        )
    if state in _MISSING_OBJECT_STATES or "does not exist" in lowered or "invalid object name" in lowered:
        return HomeError(
            f"{label}: {during}: {message}; check the table, schema and column names (discover them with entities: include)"
        )
    if "too large to be written into the allocated buffer" in lowered:
        return HomeError(
            f"{label}: {during}: a text or binary value is longer than the read buffer ({message}); "
            "raise home.max_text_size / home.max_binary_size for this entity"
        )
    if state.startswith("42"):
        return HomeError(f"{label}: {during}: the SQL was rejected: {message}; check the home's query/table")
    return HomeError(f"{label}: {during}: {message}")

"""Azure AD access tokens for SQL Server: obtained through azure-identity, cached, refreshed before expiry.

The token goes to the ODBC driver as the pre-connect attribute
``SQL_COPT_SS_ACCESS_TOKEN`` (1256), packed the way msodbcsql expects: a
little-endian 4-byte length followed by the token as UTF-16-LE. azure-identity
is imported only when a token is first needed, so a project using SQL logins
never loads the Azure SDK.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hygge_core.config import ConnectionConfig
from hygge_core.errors import HomeError, TransientError

SQL_COPT_SS_ACCESS_TOKEN = 1256
SQL_SERVER_SCOPE = "https://database.windows.net/.default"
REFRESH_MARGIN_SECONDS = 300.0
TOKEN_MODES = ("azure_ad", "service_principal", "azure_cli")


def pack_access_token(token: str) -> bytes:
    """The byte layout msodbcsql reads for attribute 1256: ``<uint32 LE length><UTF-16-LE token>``."""
    encoded = token.encode("utf-16-le")
    return struct.pack("<I", len(encoded)) + encoded


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_on: float  # epoch seconds


class TokenSource:
    """A cached token for one connection; ``get()`` refreshes it when it is within five minutes of expiry.

    Thread-safe: concurrent callers share one refresh. ``fetch`` is injectable for
    tests; by default it builds the azure-identity credential for the auth mode.
    """

    def __init__(
        self, connection_label: str, fetch: Callable[[], AccessToken], *, clock: Callable[[], float] = time.time
    ) -> None:
        self._label = connection_label
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._current: AccessToken | None = None

    def get(self) -> AccessToken:
        with self._lock:
            if self._current is None or self._current.expires_on - self._clock() < REFRESH_MARGIN_SECONDS:
                self._current = self._fetch()
            return self._current

    def packed(self) -> bytes:
        return pack_access_token(self.get().token)


def token_source_for(connection: ConnectionConfig, label: str) -> TokenSource:
    """A token source using the azure-identity credential that matches ``auth:``."""
    credential = _credential(connection, label)

    def fetch() -> AccessToken:
        try:
            token = credential.get_token(SQL_SERVER_SCOPE)
        except Exception as exc:  # azure-identity raises several unrelated types; all mean "no token"
            name = type(exc).__name__
            message = str(exc).splitlines()[0] if str(exc) else name
            if name == "ServiceRequestError":
                raise TransientError(f"{label}: could not reach Azure AD for a token ({message}); retry later") from None
            raise HomeError(
                f"{label}: Azure AD ({connection.auth}) gave no token: {name}: {message}; {_auth_hint(connection)}"
            ) from None
        return AccessToken(token=token.token, expires_on=float(token.expires_on))

    return TokenSource(label, fetch)


def _credential(connection: ConnectionConfig, label: str) -> Any:
    try:
        import azure.identity as identity
    except ImportError:
        raise HomeError(f"{label}: auth {connection.auth!r} needs azure-identity: `pip install 'hygge[mssql]'`") from None
    if connection.auth == "azure_ad":
        return identity.DefaultAzureCredential()
    if connection.auth == "azure_cli":
        return identity.AzureCliCredential()
    if connection.auth == "service_principal":
        missing = [key for key in ("tenant_id", "client_id", "client_secret") if getattr(connection, key) is None]
        if missing:
            raise HomeError(
                f"{label}: auth service_principal needs {', '.join(missing)} on the connection (use ${{ENV_VAR}} for the secret)"
            )
        assert connection.client_secret is not None and connection.tenant_id and connection.client_id
        return identity.ClientSecretCredential(
            connection.tenant_id, connection.client_id, connection.client_secret.get_secret_value()
        )
    raise HomeError(f"{label}: auth {connection.auth!r} does not use an access token")


def _auth_hint(connection: ConnectionConfig) -> str:
    return {
        "azure_ad": "log in with `az login`, or set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, or run where a managed identity exists",
        "azure_cli": "run `az login` as the user running hygge",
        "service_principal": "check tenant_id, client_id and client_secret, and that the app may access the database",
    }.get(connection.auth, "check the connection's auth settings")

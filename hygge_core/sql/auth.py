"""Azure AD access tokens for SQL Server: obtained through azure-identity (``hygge_core.azure_tokens``), cached, refreshed before expiry.

The token goes to the ODBC driver as the pre-connect attribute
``SQL_COPT_SS_ACCESS_TOKEN`` (1256), packed the way msodbcsql expects: a
little-endian 4-byte length followed by the token as UTF-16-LE. azure-identity
is imported only when a token is first needed, so a project using SQL logins
never loads the Azure SDK.
"""

from __future__ import annotations

import struct

from hygge_core import azure_tokens
from hygge_core.azure_tokens import HINTS, AccessToken, azure_credential, token_fetcher
from hygge_core.config import ConnectionConfig
from hygge_core.errors import HomeError

__all__ = ["AccessToken", "TokenSource", "pack_access_token", "token_source_for"]

SQL_COPT_SS_ACCESS_TOKEN = 1256
SQL_SERVER_SCOPE = "https://database.windows.net/.default"
TOKEN_MODES = ("azure_ad", "service_principal", "azure_cli")


def pack_access_token(token: str) -> bytes:
    """The byte layout msodbcsql reads for attribute 1256: ``<uint32 LE length><UTF-16-LE token>``."""
    encoded = token.encode("utf-16-le")
    return struct.pack("<I", len(encoded)) + encoded


class TokenSource(azure_tokens.TokenSource):
    """A cached SQL Server token that also packs itself for the ODBC driver."""

    def packed(self) -> bytes:
        return pack_access_token(self.get().token)


def token_source_for(connection: ConnectionConfig, label: str) -> TokenSource:
    """A token source using the azure-identity credential that matches ``auth:``.

    ``managed_identity`` is not here: the ODBC driver gets its own token (``Authentication=ActiveDirectoryMsi``).
    """
    if connection.auth not in TOKEN_MODES:
        raise HomeError(f"{label}: auth {connection.auth!r} does not use an access token")
    credential = azure_credential(
        connection.auth,  # type: ignore[arg-type]  (one of TOKEN_MODES, checked above)
        tenant_id=connection.tenant_id,
        client_id=connection.client_id,
        client_secret=connection.client_secret,
        label=label,
        error=HomeError,
        extra="mssql",
    )
    hint = HINTS[connection.auth].replace("the resource", "the database")
    fetch = token_fetcher(credential, SQL_SERVER_SCOPE, mode=connection.auth, label=label, hint=hint, error=HomeError)
    return TokenSource(label, fetch)

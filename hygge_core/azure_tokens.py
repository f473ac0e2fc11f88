"""Azure AD access tokens through azure-identity: one set of auth modes for SQL Server and Azure storage.

A SQL Server connection and an Azure Delta store both accept ``auth:`` with the
same modes (default chain, service principal, managed identity, Azure CLI). Each
mode is one azure-identity credential; a ``TokenSource`` asks it for a token of
the resource's scope, keeps it, and asks again five minutes before it expires.
azure-identity is imported only when a token is first needed, so projects that
use keys or SQL logins never load the Azure SDK.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import SecretStr

from hygge_core.errors import HyggeError, TransientError

AzureAuthMode = Literal["azure_ad", "service_principal", "managed_identity", "azure_cli"]
REFRESH_MARGIN_SECONDS = 300.0
HINTS: dict[str, str] = {
    "azure_ad": "log in with `az login`, or set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, or run where a managed identity exists",
    "azure_cli": "run `az login` as the user running hygge",
    "service_principal": "check tenant_id, client_id and client_secret, and that the app may access the resource",
    "managed_identity": "run where a managed identity is assigned (and give client_id for a user-assigned one)",
}


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_on: float  # epoch seconds


class TokenSource:
    """A cached token; ``get()`` refreshes it when it is within five minutes of expiry.

    Thread-safe: concurrent callers share one refresh. ``fetch`` is injectable for
    tests; ``token_fetcher`` builds it from an azure-identity credential.
    """

    def __init__(self, label: str, fetch: Callable[[], AccessToken], *, clock: Callable[[], float] = time.time) -> None:
        self._label = label
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._current: AccessToken | None = None

    def get(self) -> AccessToken:
        with self._lock:
            if self._current is None or self._current.expires_on - self._clock() < REFRESH_MARGIN_SECONDS:
                self._current = self._fetch()
            return self._current

    @property
    def current(self) -> AccessToken | None:
        """The token held now, without fetching one (to keep it out of error messages)."""
        return self._current


def azure_credential(
    mode: AzureAuthMode,
    *,
    tenant_id: str | None,
    client_id: str | None,
    client_secret: SecretStr | None,
    label: str,
    error: type[HyggeError],
    extra: str,
) -> Any:
    """The azure-identity credential for ``mode``; ``error`` is the type raised, ``extra`` the package extra to name."""
    try:
        import azure.identity as identity
    except ImportError:
        raise error(f"{label}: auth {mode!r} needs azure-identity: `pip install 'hygge[{extra}]'`") from None
    if mode == "azure_ad":
        return identity.DefaultAzureCredential()
    if mode == "azure_cli":
        return identity.AzureCliCredential()
    if mode == "managed_identity":
        return identity.ManagedIdentityCredential(client_id=client_id) if client_id else identity.ManagedIdentityCredential()
    missing = [
        name
        for name, value in (("tenant_id", tenant_id), ("client_id", client_id), ("client_secret", client_secret))
        if not value
    ]
    if missing:
        raise error(f"{label}: auth service_principal needs {', '.join(missing)} (use ${{ENV_VAR}} for the secret)")
    assert tenant_id and client_id and client_secret is not None
    return identity.ClientSecretCredential(tenant_id, client_id, client_secret.get_secret_value())


def token_fetcher(
    credential: Any, scope: str, *, mode: str, label: str, hint: str, error: type[HyggeError]
) -> Callable[[], AccessToken]:
    """Ask ``credential`` for a token of ``scope``; failures become hygge errors that name the mode and what to do."""

    def fetch() -> AccessToken:
        try:
            token = credential.get_token(scope)
        except Exception as exc:  # azure-identity raises several unrelated types; all mean "no token"
            name = type(exc).__name__
            message = str(exc).splitlines()[0] if str(exc) else name
            if name == "ServiceRequestError":
                raise TransientError(f"{label}: could not reach Azure AD for a token ({message}); retry later") from None
            raise error(f"{label}: Azure AD ({mode}) gave no token: {name}: {message}; {hint}") from None
        return AccessToken(token=token.token, expires_on=float(token.expires_on))

    return fetch

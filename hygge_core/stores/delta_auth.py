"""Azure Delta tables with ``auth:``: an azure-identity bearer token handed to delta-rs as a storage option.

``store: {type: delta, path: abfss://..., auth: azure_ad}`` takes the same modes as a
SQL Server connection (``hygge_core.azure_tokens``). The token, for Azure Storage's
scope (OneLake accepts it too), goes to delta-rs as ``bearer_token``. delta-rs takes
options as fixed strings, so the token is asked for again whenever the store opens
the table or starts a write, and refreshed five minutes before it expires. One
write that outlasts the token's life (about an hour) fails as access denied: such
tables need keys in ``storage_options``, or smaller runs.

Tokens are cached per process and per identity, so entities sharing one identity
(a flow's many tables) share one token, and a slow credential (the Azure CLI's) is
asked once.
"""

from __future__ import annotations

import hashlib
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from hygge_core.azure_tokens import HINTS, TokenSource, azure_credential, token_fetcher
from hygge_core.errors import StoreError

if TYPE_CHECKING:
    from hygge_core.stores.delta import DeltaStoreConfig

STORAGE_SCOPE = "https://storage.azure.com/.default"
TOKEN_OPTION = "bearer_token"
AZURE_SCHEMES = frozenset({"az", "abfs", "abfss", "adl", "azure"})
# storage_options keys (lower case) that carry a credential of their own: with auth:, hygge supplies the credential.
_CREDENTIAL_OPTIONS = frozenset(
    {
        "azure_storage_token",
        "bearer_token",
        "token",
        "azure_storage_account_key",
        "azure_storage_access_key",
        "azure_storage_master_key",
        "access_key",
        "account_key",
        "master_key",
        "azure_storage_sas_key",
        "azure_storage_sas_token",
        "sas_key",
        "sas_token",
        "azure_storage_client_secret",
        "azure_client_secret",
        "client_secret",
        "azure_use_azure_cli",
        "use_azure_cli",
    }
)

_sources: dict[str, TokenSource] = {}
_lock = threading.Lock()


def is_azure(path: str) -> bool:
    """An Azure Blob / ADLS / OneLake table path as delta-rs takes it (it has no ``https://`` scheme)."""
    return urlsplit(path).scheme.lower() in AZURE_SCHEMES


def auth_problems(config: DeltaStoreConfig) -> list[str]:
    """What is wrong with the store's ``auth:`` settings, found when the project loads rather than at the first write."""
    if config.auth is None:
        unused = [name for name in ("tenant_id", "client_id", "client_secret") if getattr(config, name) is not None]
        return (
            [f"{', '.join(unused)} apply only with auth: (azure_ad, service_principal, managed_identity, azure_cli)"]
            if unused
            else []
        )
    problems = []
    if not is_azure(config.path):
        problems.append(
            f"auth: {config.auth} gets an Azure token, but path {config.path!r} is not an Azure path (az://, abfss://, abfs://); "
            "for S3 or GCS put the credentials in storage_options"
        )
    clashing = sorted(key for key in config.storage_options if key.lower() in _CREDENTIAL_OPTIONS)
    if clashing:
        problems.append(
            f"storage_options has {', '.join(clashing)}, a credential of its own; with auth: {config.auth} hygge supplies "
            "the token: remove one of the two"
        )
    if config.auth == "service_principal":
        missing = [name for name in ("tenant_id", "client_id", "client_secret") if not getattr(config, name)]
        if missing:
            problems.append(f"auth: service_principal needs {', '.join(missing)} (use ${{ENV_VAR}} for the secret)")
    return problems


def token_options(config: DeltaStoreConfig, label: str, *, credential: Any = None) -> dict[str, str]:
    """``{"bearer_token": <token>}`` for delta-rs, from the shared source for this identity (``{}`` without ``auth:``).

    ``credential`` replaces the azure-identity credential (tests inject a fake one); it is not cached.
    """
    if config.auth is None:
        return {}
    source = _make_source(config, label, credential) if credential is not None else _shared_source(config, label)
    return {TOKEN_OPTION: source.get().token}


def current_token(config: DeltaStoreConfig) -> str | None:
    """The token held for this identity, without asking for one: error messages redact it."""
    source = _sources.get(_identity(config)) if config.auth is not None else None
    token = source.current if source is not None else None
    return token.token if token is not None else None


def forget_tokens() -> None:
    """Drop every cached token (tests; or after credentials changed in a long-lived process)."""
    with _lock:
        _sources.clear()


def _shared_source(config: DeltaStoreConfig, label: str) -> TokenSource:
    identity = _identity(config)
    with _lock:
        source = _sources.get(identity)
        if source is None:
            source = _sources[identity] = _make_source(config, label, None)
        return source


def _make_source(config: DeltaStoreConfig, label: str, credential: Any) -> TokenSource:
    assert config.auth is not None
    if credential is None:
        credential = azure_credential(
            config.auth,
            tenant_id=config.tenant_id,
            client_id=config.client_id,
            client_secret=config.client_secret,
            label=label,
            error=StoreError,
            extra="azure",
        )
    hint = HINTS[config.auth].replace("the resource", "the storage account or workspace")
    fetch = token_fetcher(credential, STORAGE_SCOPE, mode=config.auth, label=label, hint=hint, error=StoreError)
    return TokenSource(label, fetch)


def _identity(config: DeltaStoreConfig) -> str:
    """Who asks for the token: the mode and its settings (the secret only as a digest, in memory)."""
    secret = config.client_secret.get_secret_value() if config.client_secret is not None else ""
    digest = hashlib.sha256(secret.encode()).hexdigest() if secret else ""
    return "|".join([config.auth or "", config.tenant_id or "", config.client_id or "", digest])

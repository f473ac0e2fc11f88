"""How the Delta store speaks about failures and addresses: hygge errors that name the table, never a secret.

delta-rs and its object-store layer report failures as text that may quote a
request, an endpoint or a credential. Everything the Delta store says (errors,
log lines, Dagster metadata) passes through here, so the rules for what may be
shown live in one place: option values are secrets unless listed in
``PUBLIC_OPTIONS``, and a table URI loses any user info and query string.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from hygge_core.errors import StoreError, TransientError

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_URL_PASSWORD = re.compile(r"(://[^/\s:@]+:)[^/\s@]+@")
_SAS_SIGNATURE = re.compile(r"([?&]sig=)[^&\s\"']+", re.IGNORECASE)
# storage_options keys whose values are not secret and help a reader of an error message.
PUBLIC_OPTIONS = frozenset(
    {
        "aws_endpoint_url",
        "aws_endpoint",
        "endpoint_url",
        "endpoint",
        "aws_region",
        "region",
        "aws_allow_http",
        "allow_http",
        "azure_allow_http",
        "azure_storage_account_name",
        "account_name",
        "azure_storage_use_emulator",
        "azure_use_fabric_endpoint",
        "use_fabric_endpoint",
        "azure_storage_endpoint",
        "azure_endpoint",
        "timeout",
        "conditional_put",
        "aws_conditional_put",
    }
)
_ACCESS_DENIED = re.compile(
    r"\b40[13]\b|forbidden|unauthori[sz]ed|signaturedoesnotmatch|authenticationfailed|authorizationfailure"
    r"|lacked the necessary privileges|invalidaccesskeyid"
)
_UNREACHABLE = ("connection refused", "error sending request", "tcp connect", "dns error", "timed out", "connect error")


def redact(text: str, options: Mapping[str, SecretStr]) -> str:
    """``text`` with every secret option value replaced, and delta-rs' terminal colours removed.

    Credentials written into a URL (a password before ``@``, a SAS signature) are masked too:
    delta-rs quotes the URLs it requests.
    """
    text = _ANSI.sub("", text)
    text = _URL_PASSWORD.sub(r"\1***@", text)
    text = _SAS_SIGNATURE.sub(r"\1***", text)
    for key, value in options.items():
        secret = value.get_secret_value()
        if key.lower() not in PUBLIC_OPTIONS and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def public_uri(uri: str) -> str:
    """The table's address as it may be shown (Dagster's ``dagster/uri``, the UI, logs).

    A user could write a credential into the path itself (``https://key:secret@host/...``,
    or a SAS token as a query string); both are dropped. ``abfss://container@account...``
    keeps its ``container@``: that is an address, not a credential.
    """
    parts = urlsplit(uri)
    if not parts.scheme or not parts.netloc:
        return uri
    host = parts.netloc.rpartition("@")[2]
    user = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    netloc = f"{user}@{host}" if user and ":" not in user else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def append_only_refused(key: str, table_uri: str) -> StoreError:
    """The error of a full drop or a merge on an append-only table, checked before writing and again at the commit."""
    return StoreError(
        f"{key}: delta table {public_uri(table_uri)} is append-only (delta.appendOnly = true), so this run, which "
        "would remove or rewrite rows (a full drop or a merge), was refused and the table is unchanged; load it "
        "incrementally without merge_keys, or point store.path at a new table"
    )


class delta_errors:  # noqa: N801  (used as a context manager, named like one)
    """Turn delta-rs and object-store failures into hygge errors that name the store and never a secret.

    The original exception is not chained: its text may quote a request, and the
    message already carries what it said (redacted).
    """

    def __init__(self, *, key: str, table_uri: str, secrets: Callable[[], Mapping[str, SecretStr]], action: str) -> None:
        self.key = key
        self.table_uri = table_uri
        self.secrets = secrets  # asked when an error is raised: a bearer token may have been fetched during the action
        self.action = action

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None or isinstance(exc, StoreError | TransientError) or not isinstance(exc, Exception):
            return
        key = self.key
        text = redact(str(exc), self.secrets()).strip()
        detail = " ".join(line.strip().lstrip("↳").strip() for line in text.splitlines() if line.strip())
        where = f"delta table {public_uri(self.table_uri)}"
        lowered = detail.lower()
        if "append-only" in lowered:  # the table turned append-only after the run's own check
            raise append_only_refused(key, self.table_uri) from None
        if type(exc).__name__ == "CommitFailedError" or "version already exists" in lowered:
            raise TransientError(
                f"{key}: another writer committed to {where} during this run, so this run's commit was refused "
                "(the table is unchanged); it will be retried, or run again"
            ) from None
        if "no space left on device" in lowered or "os error 28" in lowered:
            raise StoreError(
                f"{key}: disk full: cannot {self.action} {where}; free space and run again; the table is unchanged"
            ) from None
        if _ACCESS_DENIED.search(lowered):
            raise StoreError(
                f"{key}: access denied: cannot {self.action} {where}; check the credentials in store.storage_options "
                f"({detail[:400]})"
            ) from None
        if any(word in lowered for word in _UNREACHABLE):
            raise TransientError(
                f"{key}: cannot reach the object store of {where}; check the endpoint and network ({detail[:400]})"
            ) from None
        if "permission denied" in lowered or "os error 13" in lowered:
            raise StoreError(f"{key}: permission denied: cannot {self.action} {where}; give this user write access") from None
        raise StoreError(f"{key}: cannot {self.action} {where}: {detail[:600]}") from None

"""Azure Delta stores with ``auth:``: azure-identity tokens handed to delta-rs, checked by a real server.

The credential is the one thing replaced: ``azure.identity``'s class for the mode is
swapped for a fake that records how it was built and returns an Entra-shaped token.
Everything after it is real: the token goes through ``DeltaStore.storage_options`` to
delta-rs, which sends it to an Azurite that checks bearer tokens (``--oauth basic``:
issuer, audience, expiry) over HTTPS. A test against real Azure runs when its
environment is set, and skips loudly otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import hygge_core
from hygge_core import ConfigError, StoreError
from hygge_core.stores import delta_auth

from .lakes import Lake, azure_oauth_lake, fake_entra_token
from .support import SCHEMA, make_table, option_env, project_yaml, read_delta, write_project, write_source

pytest.importorskip("deltalake", reason="Delta tests NOT RUN: install the test extra (deltalake)")
pytest.importorskip("azure.identity", reason="Azure auth tests NOT RUN: install the test extra (azure-identity)")

ENTITY = "files/items"
SECRET = "sp-secret-Q7wz31vV"
SERVICE_PRINCIPAL = {
    "auth": "service_principal",
    "tenant_id": "tenant-1",
    "client_id": "client-1",
    "client_secret": "${HYGGE_TEST_SP_SECRET}",
}
CLASSES = {
    "azure_ad": "DefaultAzureCredential",
    "azure_cli": "AzureCliCredential",
    "managed_identity": "ManagedIdentityCredential",
    "service_principal": "ClientSecretCredential",
}


@dataclass
class Tokens:
    """What the fake credentials were built with, what they were asked, and what they answer next."""

    built: list[tuple[str, tuple, dict]] = field(default_factory=list)
    scopes: list[tuple[str, ...]] = field(default_factory=list)
    answer: Callable[[], tuple[str, int]] = fake_entra_token
    failure: Exception | None = None


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch) -> Iterator[Tokens]:
    """Replace each azure-identity credential class with a fake; forget cached tokens before and after."""
    import azure.identity
    from azure.core.credentials import AccessToken

    record = Tokens()

    def fake(name: str) -> type:
        class Fake:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                record.built.append((name, args, kwargs))

            def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
                record.scopes.append(scopes)
                if record.failure is not None:
                    raise record.failure
                token, expires_on = record.answer()
                return AccessToken(token, expires_on)

        return Fake

    for name in CLASSES.values():
        monkeypatch.setattr(azure.identity, name, fake(name))
    monkeypatch.setenv("HYGGE_TEST_SP_SECRET", SECRET)
    delta_auth.forget_tokens()
    yield record
    delta_auth.forget_tokens()


@pytest.fixture
def oauth_lake(azure_oauth_server, monkeypatch: pytest.MonkeyPatch) -> Lake:
    lake = azure_oauth_lake(azure_oauth_server)
    for key, value in option_env(lake.options).items():
        monkeypatch.setenv(key, value)
    return lake


def load_store(project: Path):  # noqa: ANN201  (a DeltaStore; its class is the store's own business)
    return hygge_core.load_project(project).entity(ENTITY).create_store()


def read_with_token(lake: Lake, uri: str) -> pa.Table:
    token, _ = fake_entra_token()
    return read_delta(Lake(lake.name, lake.root, options={**lake.options, "bearer_token": token}), uri, schema=SCHEMA)


@pytest.mark.parametrize("mode", sorted(CLASSES))
def test_each_mode_builds_its_credential_and_the_token_becomes_a_storage_option(
    tmp_path: Path, tokens: Tokens, mode: str
) -> None:
    settings: dict[str, str] = {"auth": mode}
    if mode == "service_principal":
        settings = SERVICE_PRINCIPAL
    if mode == "managed_identity":
        settings = {**settings, "client_id": "user-assigned-1"}
    lake = Lake("azure", "az://lake/tables", options={"AZURE_STORAGE_ACCOUNT_NAME": "acct"})
    project = write_project(tmp_path / "p", project_yaml(lake, options={}, store={**settings, "storage_options": lake.options}))
    token = fake_entra_token()
    tokens.answer = lambda: token
    options = load_store(project).storage_options()
    assert options == {"AZURE_STORAGE_ACCOUNT_NAME": "acct", "bearer_token": token[0]}
    assert tokens.scopes == [("https://storage.azure.com/.default",)]
    ((name, args, kwargs),) = tokens.built
    assert name == CLASSES[mode]
    if mode == "service_principal":
        assert args == ("tenant-1", "client-1", SECRET)
    if mode == "managed_identity":
        assert kwargs == {"client_id": "user-assigned-1"}


def test_the_token_is_shared_and_refreshed_before_it_expires(tmp_path: Path, tokens: Tokens) -> None:
    lake = Lake("azure", "az://lake/tables")
    project = write_project(tmp_path / "p", project_yaml(lake, options={}, store=SERVICE_PRINCIPAL))
    first = load_store(project).storage_options()["bearer_token"]
    assert load_store(project).storage_options()["bearer_token"] == first  # a second store, same identity: no new request
    assert len(tokens.scopes) == 1 and len(tokens.built) == 1
    tokens.answer = lambda: fake_entra_token(expires_in=120)  # inside the five-minute margin: asked again every time
    delta_auth.forget_tokens()
    store = load_store(project)
    store.storage_options()
    store.storage_options()
    assert len(tokens.scopes) == 3


def test_a_credential_can_be_injected_directly(tmp_path: Path) -> None:
    """The path from any credential object to delta-rs' options, without azure.identity at all."""

    class Credential:
        def get_token(self, *scopes: str) -> Any:
            assert scopes == (delta_auth.STORAGE_SCOPE,)
            return type("Token", (), {"token": "tok-123", "expires_on": 4_102_444_800})()

    lake = Lake("azure", "az://lake/tables")
    project = write_project(tmp_path / "p", project_yaml(lake, options={}, store={"auth": "azure_ad"}))
    config = hygge_core.load_project(project).entity(ENTITY).store
    assert delta_auth.token_options(config, ENTITY, credential=Credential()) == {"bearer_token": "tok-123"}


def test_no_token_is_a_store_error_naming_the_mode_and_what_to_do(tmp_path: Path, tokens: Tokens) -> None:
    tokens.failure = ValueError(f"AADSTS7000215: Invalid client secret provided for {SECRET[:3]}")
    lake = Lake("azure", "az://lake/tables")
    project = write_project(tmp_path / "p", project_yaml(lake, options={}, store=SERVICE_PRINCIPAL))
    with pytest.raises(StoreError) as caught:
        load_store(project).storage_options()
    message = str(caught.value)
    assert message.startswith(f"{ENTITY}: Azure AD (service_principal) gave no token: ValueError: AADSTS7000215")
    assert "check tenant_id, client_id and client_secret" in message and SECRET not in message


@pytest.mark.parametrize(
    ("store", "expected"),
    [
        ({"path": "s3://bucket/t", "auth": "azure_ad"}, "is not an Azure path"),
        (
            {"auth": "azure_ad", "storage_options": {"AZURE_STORAGE_ACCOUNT_KEY": "k" * 8}},
            "storage_options has AZURE_STORAGE_ACCOUNT_KEY, a credential of its own",
        ),
        ({"auth": "service_principal", "tenant_id": "t"}, "auth: service_principal needs client_id, client_secret"),
        ({"client_id": "c"}, "client_id apply only with auth:"),
    ],
)
def test_auth_settings_are_checked_when_the_project_loads(tmp_path: Path, store: dict, expected: str) -> None:
    lake = Lake("azure", "az://lake/tables")
    project = write_project(tmp_path / "p", project_yaml(lake, options={}, store=store))
    with pytest.raises(ConfigError) as caught:
        hygge_core.load_project(project)
    assert expected in str(caught.value)
    assert "k" * 8 not in str(caught.value)


def test_runs_write_with_the_token_against_a_server_that_checks_it(tmp_path: Path, oauth_lake: Lake, tokens: Tokens) -> None:
    project = write_project(tmp_path / "p", project_yaml(oauth_lake, run_type="incremental", store=SERVICE_PRINCIPAL))
    home = project / "home" / "items"
    uri = oauth_lake.uri("items")
    store = load_store(project)
    assert store.check() == f"can write to {uri}; data files written by delta-rs"  # hygge debug's probe, with the token
    write_source(home / "a.parquet", make_table(range(0, 200), "a"))
    assert hygge_core.run_entity(hygge_core.load_project(project).entity(ENTITY)).rows == 200
    write_source(home / "b.parquet", make_table(range(200, 300), "b"))
    second = hygge_core.run_entity(hygge_core.load_project(project).entity(ENTITY))
    assert second.rows == 100 and second.publish is not None and second.publish.table_rows == 300
    expected = pa.concat_tables([make_table(range(0, 200), "a"), make_table(range(200, 300), "b")])
    assert read_with_token(oauth_lake, uri).equals(expected)
    frame = load_store(project).scan(load_store(project).read_state())  # Polars' reader takes the token too
    assert frame is not None and frame.select("id").collect().height == 300
    assert {built[0] for built in tokens.built} == {"ClientSecretCredential"}


@pytest.mark.parametrize(
    "token", [lambda: fake_entra_token(audience="https://database.windows.net"), lambda: fake_entra_token(expires_in=-600)]
)
def test_a_token_the_server_refuses_is_access_denied_and_never_shown(
    tmp_path: Path, oauth_lake: Lake, tokens: Tokens, token: Callable[[], tuple[str, int]]
) -> None:
    refused, _ = token()
    tokens.answer = lambda: (refused, 4_102_444_800)  # the server, not hygge's clock, must refuse it
    project = write_project(tmp_path / "p", project_yaml(oauth_lake, store=SERVICE_PRINCIPAL))
    write_source(project / "home" / "items" / "a.parquet", make_table(range(0, 10), "a"))
    with pytest.raises(StoreError) as caught:
        hygge_core.run_entity(hygge_core.load_project(project).entity(ENTITY))
    message = str(caught.value)
    assert message.startswith(f"{ENTITY}: access denied: cannot ") and oauth_lake.uri("items") in message
    assert refused not in message and SECRET not in message
    with pytest.raises(StoreError, match="access denied: cannot write a probe object"):
        load_store(project).check()


REAL_AZURE = "HYGGE_TEST_AZURE_DELTA_PATH"


def test_real_azure_with_an_azure_identity_token(tmp_path: Path) -> None:
    """Against a real storage account or OneLake: ``HYGGE_TEST_AZURE_DELTA_PATH=abfss://...`` (a folder this test may
    write under), ``HYGGE_TEST_AZURE_AUTH`` (default ``azure_ad``: az login, AZURE_* variables or a managed identity),
    and for OneLake ``HYGGE_TEST_AZURE_FABRIC=true``."""
    root = os.environ.get(REAL_AZURE)
    if not root:
        pytest.skip(f"real Azure NOT TESTED: set {REAL_AZURE}=abfss://<container>@<account>.dfs.core.windows.net/<folder>")
    delta_auth.forget_tokens()
    options = {"AZURE_USE_FABRIC_ENDPOINT": "true"} if os.environ.get("HYGGE_TEST_AZURE_FABRIC") == "true" else {}
    lake = Lake("azure-real", f"{root.rstrip('/')}/hygge-test-{tmp_path.name}")
    auth = os.environ.get("HYGGE_TEST_AZURE_AUTH", "azure_ad")
    project = write_project(tmp_path / "p", project_yaml(lake, options={}, store={"auth": auth, "storage_options": options}))
    write_source(project / "home" / "items" / "a.parquet", make_table(range(0, 50), "a"))
    store = load_store(project)
    assert store.check().startswith("can write to ")
    result = hygge_core.run_entity(hygge_core.load_project(project).entity(ENTITY))
    assert result.publish is not None and result.publish.table_rows == 50
    frame = store.scan(store.read_state())
    assert frame is not None and frame.select("id").collect().height == 50

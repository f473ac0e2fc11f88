"""Azure AD token logins read through Microsoft's mssql-python (Arrow-native), on the wire, in process.

The token comes from a fixed ``TokenSource`` (no Azure here); the TDS test server accepts exactly that token.
Which route a connection takes is decided in ``hygge_core.sql.odbc``; pyodbc is the fallback.
"""

from __future__ import annotations

import textwrap
import time

import pyarrow.parquet as pq
import pytest
from scenarios import EVENTS_DECLARED, events
from tds_helpers import TOKEN, USER, write_table

import hygge_core
from hygge_core.config import ConnectionConfig
from hygge_core.errors import HomeError, TransientError
from hygge_core.sql import odbc, pool
from hygge_core.sql.auth import AccessToken, TokenSource

pytest.importorskip("mssql_python", reason="install hygge[mssql] (the test extra has it) for mssql-python")


def fixed_token(value: str):
    return lambda _connection, label: TokenSource(label, lambda: AccessToken(value, time.time() + 3600))


@pytest.fixture
def routes(monkeypatch) -> list[str]:
    """The route of every connection hygge opens."""
    opened: list[str] = []
    original = pool.open_connection
    monkeypatch.setattr(pool, "open_connection", lambda target: opened.append(target.route) or original(target))
    return opened


def token_project(tmp_path, port: int, home: str = "{type: mssql, connection: ms, batch_size: 500}", retries: str = ""):
    root = tmp_path / "project"
    root.mkdir(exist_ok=True)
    (root / "hygge.yml").write_text(
        textwrap.dedent(f"""\
        name: token
        connections:
          ms:
            type: mssql
            server: localhost
            port: {port}
            database: hygge
            auth: azure_ad
            encrypt: true
            trust_server_certificate: true
            login_timeout: 10s
        flows:
          erp:
            home: {home}
            store: {{type: parquet, path: "lake/{{entity}}"}}
            entities: [events]
            {retries}
        """),
        encoding="utf-8",
    )
    return root, hygge_core.load_project(root).entity("erp/events")


@pytest.fixture
def served(tds_data, tds_server, msodbc):
    write_table(tds_data, "events", events(3000), EVENTS_DECLARED)
    return tds_server()


def test_a_token_login_reads_through_mssql_python(tmp_path, served, routes, monkeypatch):
    monkeypatch.setattr(odbc, "token_source_for", fixed_token(TOKEN))
    root, plan = token_project(tmp_path, served.port)
    result = hygge_core.run_entity(plan)
    assert result.status == "success", result.error
    assert set(routes) == {"mssql_python"}
    landed = pq.read_table(root / "lake" / "events").sort_by("id")
    assert landed.equals(events(3000).cast(landed.schema))
    assert landed.schema.field("payload").type == "string"  # mssql-python's large_string, cast to the catalog's type
    assert served.stats.encryption == ["tls"]


def test_a_refused_token_is_a_login_error_that_does_not_show_the_token(tmp_path, served, routes, monkeypatch):
    forged = "eyJ0eXAiOiJKV1QifQ.forged-token-value.signature"
    monkeypatch.setattr(odbc, "token_source_for", fixed_token(forged))
    root, plan = token_project(tmp_path, served.port)
    with pytest.raises(HomeError) as caught:
        hygge_core.run_entity(plan)
    message = str(caught.value)
    assert not isinstance(caught.value, TransientError)  # a wrong login is never retried
    assert "login failed" in message and "check the user and password (or auth settings)" in message, message
    assert forged not in message and "forged-token" not in message
    assert set(routes) == {"mssql_python"}
    assert not (root / "lake" / "events").exists()


def test_a_missing_table_names_the_table_and_what_to_check(tmp_path, served, routes, monkeypatch):
    monkeypatch.setattr(odbc, "token_source_for", fixed_token(TOKEN))
    root, plan = token_project(tmp_path, served.port, home="{type: mssql, connection: ms, query: 'SELECT id FROM dbo.nowhere'}")
    with pytest.raises(HomeError) as caught:
        hygge_core.run_entity(plan)
    message = str(caught.value)
    assert "Invalid object name 'dbo.nowhere'" in message and "check the table, schema and column names" in message, message
    assert set(routes) == {"mssql_python"}


def test_a_dropped_connection_is_transient_publishes_nothing_and_the_retry_lands(tmp_path, served, routes, monkeypatch):
    monkeypatch.setattr(odbc, "token_source_for", fixed_token(TOKEN))
    root, plan = token_project(tmp_path, served.port)
    served.faults.drop_after(1200, match="FROM [dbo].[events]", times=1)
    with pytest.raises(TransientError) as caught:
        hygge_core.run_entity(plan)
    assert "connection failed while reading [dbo].[events]" in str(caught.value), caught.value
    assert served.stats.drops == 1 and not (root / "lake" / "events").exists()

    result = hygge_core.run_entity(plan)  # the fault is spent: the next run reads the whole table
    assert result.status == "success", result.error
    assert pq.read_table(root / "lake" / "events").num_rows == 3000
    assert set(routes) == {"mssql_python"}


def test_a_stopped_server_is_a_transient_connection_error(tmp_path, served, routes, monkeypatch):
    monkeypatch.setattr(odbc, "token_source_for", fixed_token(TOKEN))
    root, plan = token_project(tmp_path, served.port)
    served.stop()
    with pytest.raises(TransientError) as caught:
        hygge_core.run_entity(plan)
    assert "connection failed while connecting" in str(caught.value), caught.value
    assert set(routes) == {"mssql_python"}


def connection(**fields) -> ConnectionConfig:
    return ConnectionConfig(type="mssql", server="db.example", database="erp", auth="azure_ad", **fields)


@pytest.mark.parametrize(
    ("fields", "route"),
    [
        ({}, "mssql_python"),
        ({"options": {"MultiSubnetFailover": "yes", "ApplicationIntent": "ReadOnly"}}, "mssql_python"),
        ({"options": {"ColumnEncryption": "Enabled"}}, "pyodbc"),  # a keyword mssql-python refuses
        ({"driver": "ODBC Driver 17 for SQL Server"}, "pyodbc"),  # mssql-python would load its own driver instead
    ],
)
def test_the_token_route_follows_what_mssql_python_can_serve(fields, route, monkeypatch, msodbc):
    monkeypatch.setattr(odbc, "token_source_for", fixed_token(TOKEN))
    monkeypatch.setattr(odbc.drivers, "mssql_driver", lambda configured: configured or msodbc)
    target = odbc.build_target("ms", connection(**fields))
    assert target.route == route
    keywords = [part.split("=", 1)[0].lower() for part in target.connection_string.split(";") if part]
    if route == "mssql_python":  # it names itself and its driver, and refuses both keywords
        assert "driver" not in keywords and "app" not in keywords
    else:
        assert keywords[0] == "driver" and "app" in keywords
    assert USER not in target.connection_string and TOKEN not in target.connection_string


def test_without_mssql_python_token_logins_read_through_pyodbc(monkeypatch, msodbc):
    monkeypatch.setattr(odbc, "token_source_for", fixed_token(TOKEN))
    monkeypatch.setattr(odbc.drivers, "has_mssql_python", lambda: False)
    assert odbc.build_target("ms", connection()).route == "pyodbc"


@pytest.mark.parametrize("installed", [True, False])
def test_hygge_debug_says_which_library_reads(tmp_path, served, monkeypatch, installed):
    """A token login that falls back to pyodbc costs 3x the CPU; the home's check (what ``hygge debug`` prints) says so."""
    monkeypatch.setattr(odbc, "token_source_for", fixed_token(TOKEN))
    monkeypatch.setattr(odbc.drivers, "has_mssql_python", lambda: installed)
    _, plan = token_project(tmp_path, served.port)
    checked = plan.create_home().check()
    assert "table events readable, 3 column(s), read through " in checked, checked
    if installed:
        assert checked.endswith("read through mssql-python (Arrow)")
    else:
        assert "read through pyodbc rows converted to Arrow (about 3x the client CPU" in checked


@pytest.mark.parametrize("route", ["mssql_python", "pyodbc"])
def test_a_timed_out_query_is_cancelled_and_says_so(tmp_path, served, routes, monkeypatch, route):
    monkeypatch.setattr(odbc, "token_source_for", fixed_token(TOKEN))
    monkeypatch.setattr(odbc.drivers, "has_mssql_python", lambda: route == "mssql_python")
    root, plan = token_project(tmp_path, served.port, home="{type: mssql, connection: ms, query_timeout: 2s, batch_size: 100}")
    served.faults.stall_after(150, match="FROM [dbo].[events]", seconds=60)
    with pytest.raises(TransientError) as caught:
        hygge_core.run_entity(plan)
    message = str(caught.value)
    assert "reading [dbo].[events], which ran past home.query_timeout (2 s)" in message, message
    assert served.stats.attentions == 1  # the driver cancelled, and the server acknowledged it
    assert set(routes) == {route} and not (root / "lake" / "events").exists()

"""Every SQL Server type of hygge's map, served on the wire with NULLs and edge values, landed value for value.

The Arrow route (SQL login, arrow-odbc) runs through ``hygge start``; the token routes (FEDAUTH access token,
read through mssql-python's Arrow fetch, or pyodbc rows converted to Arrow) run in-process with a fixed token,
and must land the same table.
"""

from __future__ import annotations

import os
import textwrap
import time

import pyarrow.parquet as pq
import pytest
import scenarios
from scenarios import LARGE_VALUES, assert_lands_exactly
from tds_helpers import PASSWORD, PASSWORD_ENV, TOKEN, TdsSource, connection_yaml, write_table
from type_cases import served_table

import hygge_core
from hygge_core.errors import HomeError
from hygge_core.sql import drivers, odbc, pool
from hygge_core.sql.auth import AccessToken, TokenSource


@pytest.fixture
def types_served(tds_data, tds_server):
    table, declared = served_table()
    write_table(tds_data, "types", table, declared)
    return tds_server()


@pytest.mark.slow
def test_every_type_through_hygge_start(tmp_path, tds_source, msodbc):
    source: TdsSource = tds_source("tls")
    scenarios.every_type(source, tmp_path / "project")
    select = next(s for s in source.server.stats.statements if s.startswith("SELECT [id]"))
    assert "CAST(SWITCHOFFSET([c_datetimeoffset], '+00:00') AS datetime2(7))" in select
    assert "LOWER(CAST([c_uniqueidentifier] AS char(36)))" in select


def project_in_process(tmp_path, port, certificate, home_extra: str, *, mode: str = "off", token: bool = False):
    root = tmp_path / "inproc"
    root.mkdir(exist_ok=True)
    connection = connection_yaml(port, mode, certificate)
    if token:  # the token route: no user/password, an Azure AD mode
        connection = connection.replace("    user: hygge_reader\n", "").replace(
            f'    password: "${{{PASSWORD_ENV}}}"\n', "    auth: azure_ad\n"
        )
    (root / "hygge.yml").write_text(
        "name: types\nconnections:\n"
        + connection
        + textwrap.dedent(f"""
        flows:
          erp:
            home: {{type: mssql, connection: ms, {home_extra}}}
            store: {{type: parquet, path: "lake/{{entity}}"}}
            entities: [types]
        """),
        encoding="utf-8",
    )
    return root


@pytest.mark.parametrize("route", ["mssql_python", "pyodbc"])
def test_token_route_lands_the_same_values(
    tmp_path, tds_data, tds_server, tds_server_process, certificate, msodbc, monkeypatch, route
):
    """Token logins read through mssql-python's Arrow fetch, or through pyodbc rows when mssql-python is missing.

    mssql-python holds the GIL while it fetches LOB columns, so it reads from a server in a process of its own.
    """
    if route == "mssql_python":
        pytest.importorskip("mssql_python", reason="install hygge[mssql] (the test extra has it) for mssql-python")
    else:
        monkeypatch.setattr(drivers, "has_mssql_python", lambda: False)
    monkeypatch.setattr(
        odbc, "token_source_for", lambda _connection, label: TokenSource(label, lambda: AccessToken(TOKEN, time.time() + 3600))
    )
    opened: list[str] = []
    original = pool.open_connection
    monkeypatch.setattr(pool, "open_connection", lambda target: opened.append(target.route) or original(target))
    table, declared = served_table()
    write_table(tds_data, "types", table, declared)
    server = tds_server_process() if route == "mssql_python" else tds_server()
    root = project_in_process(tmp_path, server.port, certificate, LARGE_VALUES, mode="strict", token=True)
    result = hygge_core.run_entity(hygge_core.load_project(root).entity("erp/types"))
    assert result.status == "success", result.error
    assert_lands_exactly(pq.read_table(root / "lake" / "types"))
    assert opened and set(opened) == {route}
    if route == "pyodbc":
        assert server.stats.sessions == 1 and server.stats.encryption == ["strict"]


def test_a_value_beyond_max_text_size_names_its_column(tmp_path, types_served, certificate, msodbc, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    root = project_in_process(tmp_path, types_served.port, certificate, "max_text_size: 400000, max_binary_size: 200000")
    with pytest.raises(HomeError) as caught:
        hygge_core.run_entity(hygge_core.load_project(root).entity("erp/types"))
    message = str(caught.value)
    assert "column 'c_nvarchar_max' (nvarchar(max)) of [dbo].[types] holds a value of 1,048,576 characters" in message
    assert "more than home.max_text_size (400,000 bytes)" in message
    assert "c_varchar_max" not in message  # 100,000 characters fit in 400,000 bytes
    assert not (root / "lake" / "types").exists()
    assert PASSWORD not in message and os.environ[PASSWORD_ENV] == PASSWORD

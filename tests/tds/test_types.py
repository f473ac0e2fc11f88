"""Every SQL Server type of hygge's map, served on the wire with NULLs and edge values, landed value for value.

The Arrow route (SQL login, arrow-odbc) runs through ``hygge start``; the token route (FEDAUTH access token,
pyodbc rows converted to Arrow) runs in-process with a fixed token, and must land the same table.
"""

from __future__ import annotations

import os
import textwrap
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tds_helpers import PASSWORD, PASSWORD_ENV, TOKEN, connection_yaml, write_table
from test_hygge_start import hygge_start, ok
from type_cases import expected_rows, served_table

import hygge_core
from hygge_core.errors import HomeError
from hygge_core.sql import odbc
from hygge_core.sql.auth import AccessToken, TokenSource

# max_text_size counts UTF-8 bytes: the 1 Mi-character value of æøå✓ is 2.25 MiB
LARGE_VALUES = "max_text_size: 4000000, max_binary_size: 200000, max_bytes_per_batch: 67108864"

EXPECTED_SCHEMA = {
    "c_tinyint": pa.uint8(),
    "c_money": pa.decimal128(19, 4),
    "c_smallmoney": pa.decimal128(10, 4),
    "c_real": pa.float32(),
    "c_time": pa.time64("ns"),
    "c_time3": pa.time64("us"),
    "c_datetime": pa.timestamp("ms"),
    "c_datetime2_3": pa.timestamp("ms"),
    "c_datetime2": pa.timestamp("us"),
    "c_datetimeoffset": pa.timestamp("us", tz="UTC"),
    "c_uniqueidentifier": pa.string(),
    "c_nvarchar_max": pa.string(),
    "c_varbinary_max": pa.binary(),
    "c_rowversion": pa.binary(),
    "c_decimal": pa.decimal128(38, 10),
}


def assert_lands_exactly(table: pa.Table) -> None:
    for name, arrow_type in EXPECTED_SCHEMA.items():
        assert table.schema.field(name).type == arrow_type, name
    landed = sorted(table.to_pylist(), key=lambda row: row["id"])
    expected = expected_rows()
    assert len(landed) == len(expected)
    for want, got in zip(expected, landed, strict=True):
        for column, value in want.items():
            assert got[column] == value, f"row {want['id']} column {column}: {str(got[column])[:80]!r} != {str(value)[:80]!r}"
            assert type(got[column]) is type(value), f"row {want['id']} column {column}"


@pytest.fixture
def types_served(tds_data, tds_server):
    table, declared = served_table()
    write_table(tds_data, "types", table, declared)
    return tds_server()


@pytest.mark.slow
def test_every_type_through_hygge_start(tmp_path, types_served, certificate, msodbc):
    root = tmp_path / "project"
    root.mkdir()
    (root / "hygge.yml").write_text(
        "name: types\nconnections:\n"
        + connection_yaml(types_served.port, "tls", certificate)
        + textwrap.dedent(f"""
        flows:
          erp:
            home: {{type: mssql, connection: ms, {LARGE_VALUES}}}
            store: {{type: parquet, path: "lake/{{entity}}"}}
            entities: [types]
        """),
        encoding="utf-8",
    )
    ok(hygge_start(root))
    assert_lands_exactly(pq.read_table(root / "lake" / "types"))
    select = next(s for s in types_served.stats.statements if s.startswith("SELECT [id]"))
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


def test_token_route_lands_the_same_values(tmp_path, types_served, certificate, msodbc, monkeypatch):
    monkeypatch.setattr(
        odbc, "token_source_for", lambda _connection, label: TokenSource(label, lambda: AccessToken(TOKEN, time.time() + 3600))
    )
    root = project_in_process(tmp_path, types_served.port, certificate, LARGE_VALUES, mode="strict", token=True)
    result = hygge_core.run_entity(hygge_core.load_project(root).entity("erp/types"))
    assert result.status == "success", result.error
    assert_lands_exactly(pq.read_table(root / "lake" / "types"))
    assert types_served.stats.sessions == 1 and types_served.stats.encryption == ["strict"]


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

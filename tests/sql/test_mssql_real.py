"""Against a real SQL Server, when one is given; reported as skipped (with the reason) everywhere else.

    HYGGE_TEST_MSSQL_CONNECTION="server=localhost;port=1433;database=hygge_test;user=sa;password=...;trust_server_certificate=true"

Keys are ``ConnectionConfig`` fields (``auth`` defaults to sql). The suite creates
and drops its own tables in the ``dbo`` schema of that database.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import uuid

import pyarrow.parquet as pq
import pytest

import hygge_core
from hygge_core.config import ConnectionConfig

ENV = "HYGGE_TEST_MSSQL_CONNECTION"

pytestmark = [
    pytest.mark.mssql,
    pytest.mark.skipif(
        not os.environ.get(ENV), reason=f"no SQL Server: set {ENV} to run the real SQL Server suite (see docs/sql.md)"
    ),
]


def connection_values() -> dict[str, str]:
    pairs = [part.split("=", 1) for part in os.environ[ENV].split(";") if part.strip()]
    return {key.strip(): value.strip() for key, value in pairs}


@pytest.fixture
def mssql_project(write_project, monkeypatch):
    values = connection_values()
    monkeypatch.setenv("HYGGE_TEST_MSSQL_PASSWORD", values.pop("password", ""))
    config = ConnectionConfig.model_validate({"type": "mssql", **values, "password": "x"})
    lines = [f"    {key}: {value}" for key, value in values.items()]
    connection = "  ms:\n    type: mssql\n" + "\n".join(lines) + "\n    password: ${HYGGE_TEST_MSSQL_PASSWORD}\n"

    def write(flows: str):
        import textwrap

        return write_project("name: ms\nconnections:\n" + connection + textwrap.dedent(flows))

    return write, config


def run_sql(config: ConnectionConfig, statement: str) -> None:
    """Set-up SQL through pyodbc (the same driver, outside the code under test's read path)."""
    from dataclasses import replace

    from hygge_core.sql.connection import PyodbcConnection
    from hygge_core.sql.odbc import build_target

    real = ConnectionConfig.model_validate({**config.model_dump(), "password": os.environ["HYGGE_TEST_MSSQL_PASSWORD"]})
    connection = PyodbcConnection(replace(build_target("setup", real), route="pyodbc"))
    try:
        connection.execute(statement, during="setting up the SQL Server test")
    finally:
        connection.close()


def test_every_type_full_and_incremental(mssql_project):
    write, config = mssql_project
    table = f"hygge_types_{uuid.uuid4().hex[:8]}"
    run_sql(
        config,
        f"""
        CREATE TABLE dbo.{table} (
            id int PRIMARY KEY, c_tiny tinyint, c_small smallint, c_big bigint, c_bit bit, c_dec decimal(18,4), c_money money,
            c_float float, c_real real, c_date date, c_time time(7), c_dt datetime, c_dt2 datetime2(7), c_dto datetimeoffset(7),
            c_char char(4), c_vmax nvarchar(max), c_guid uniqueidentifier, c_bin varbinary(max), modified datetime2(3) NOT NULL);
        INSERT INTO dbo.{table} VALUES
          (1, 255, -32768, 9223372036854775807, 1, 12345678901234.5678, 922337203685477.5807, 0.1234567890123456789, 1.5,
           '0001-01-01', '23:59:59.9999999', '1753-01-01 00:00:00.003', '9999-12-31 23:59:59.9999999', '2024-06-01 12:00:00 +02:00',
           'ab', N'héllo ✓', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 0xDEADBEEF, '2024-01-01 00:00:00.000'),
          (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '2024-01-02');
    """,
    )
    try:
        root = write(f"""
        flows:
          erp:
            home: {{type: mssql, connection: ms}}
            store: {{type: parquet, path: "lake/{{entity}}"}}
            entities: [dbo.{table}]
            run_type: incremental
            watermark: {{column: modified, key: id}}
        """)
        plan = hygge_core.load_project(root).entity(f"erp/dbo.{table}")
        assert hygge_core.run_entity(plan).rows == 2
        row = sorted(pq.read_table(root / "lake" / f"dbo.{table}").to_pylist(), key=lambda r: r["id"])[0]
        assert row["c_float"] == 0.12345678901234568 and row["c_dec"] == decimal.Decimal("12345678901234.5678")
        assert (
            row["c_money"] == decimal.Decimal("922337203685477.5807") and row["c_guid"] == "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"
        )
        assert row["c_dto"] == dt.datetime(2024, 6, 1, 10, 0, tzinfo=dt.UTC) and row["c_vmax"] == "héllo ✓"
        assert row["c_bin"] == bytes.fromhex("deadbeef") and row["c_dt"] == dt.datetime(1753, 1, 1, 0, 0, 0, 3000)
        run_sql(
            config,
            f"INSERT INTO dbo.{table} (id, modified) VALUES (3, '2024-01-03'); UPDATE dbo.{table} SET c_bit = 0, modified = '2024-01-04' WHERE id = 1;",
        )
        assert hygge_core.run_entity(plan).rows == 2
        assert hygge_core.run_entity(plan).rows == 0
    finally:
        run_sql(config, f"DROP TABLE dbo.{table}")

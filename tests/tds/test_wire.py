"""Microsoft's ODBC Driver 18 against the TDS test server, through pyodbc and arrow-odbc, in every encryption mode."""

from __future__ import annotations

import datetime as dt
import decimal

import pyarrow as pa
import pytest
from tds_helpers import ENCRYPTION_MODES, PASSWORD, TOKEN, USER, odbc_string, write_table

from hygge_core.sql.auth import SQL_COPT_SS_ACCESS_TOKEN, pack_access_token


def orders() -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(1, 2001), pa.int32()),
            "customer": [f"kunde {i % 7} ø" for i in range(1, 2001)],
            "amount": pa.array([decimal.Decimal(i).scaleb(-2) for i in range(1, 2001)], pa.decimal128(12, 2)),
            "modified": [dt.datetime(2024, 1, 1) + dt.timedelta(minutes=i) for i in range(1, 2001)],
        }
    )


@pytest.fixture
def served(tds_data, tds_server):
    write_table(
        tds_data,
        "orders",
        orders(),
        {"id": "int", "customer": "nvarchar(40)", "amount": "decimal(12,2)", "modified": "datetime2(3)"},
    )
    return tds_server()


@pytest.mark.parametrize("mode", ENCRYPTION_MODES)
def test_pyodbc_reads_parameters_and_catalog(served, msodbc, certificate, mode):
    import pyodbc

    connection = pyodbc.connect(odbc_string(msodbc, served.port, mode, certificate), autocommit=True, timeout=10)
    try:
        cursor = connection.cursor()
        rows = cursor.execute(
            "SELECT id, customer, amount, modified FROM dbo.orders WHERE id > ? AND id <= ? ORDER BY id", 1990, 1992
        ).fetchall()
        assert [tuple(r) for r in rows] == [
            (1991, "kunde 3 ø", decimal.Decimal("19.91"), dt.datetime(2024, 1, 2, 9, 11)),
            (1992, "kunde 4 ø", decimal.Decimal("19.92"), dt.datetime(2024, 1, 2, 9, 12)),
        ]
        again = cursor.execute(
            "SELECT id, customer, amount, modified FROM dbo.orders WHERE id > ? AND id <= ? ORDER BY id", 5, 6
        ).fetchall()
        assert [r.id for r in again] == [6]  # the prepared handle, executed again with new values
        assert cursor.execute("SELECT COUNT(*) FROM dbo.orders").fetchval() == 2000
        assert [r.table_name for r in cursor.tables(tableType="TABLE")] == ["orders"]
        assert [(c.column_name, c.type_name) for c in cursor.columns(table="orders")] == [
            ("id", "int"),
            ("customer", "nvarchar"),
            ("amount", "decimal"),
            ("modified", "datetime2"),
        ]
        assert list(cursor.primaryKeys("orders")) == []
    finally:
        connection.close()
    assert served.stats.encryption == [mode]
    statements = " | ".join(served.stats.statements)
    assert "EXEC sp_prepexec" in statements and "EXEC sp_unprepare" in statements and "EXEC sp_datatype_info_100" in statements


@pytest.mark.parametrize("mode", ENCRYPTION_MODES)
def test_arrow_odbc_streams_batches(served, msodbc, certificate, mode):
    import arrow_odbc

    reader = arrow_odbc.read_arrow_batches_from_odbc(
        "SELECT id, customer, amount, modified FROM dbo.orders ORDER BY id",
        odbc_string(msodbc, served.port, mode, certificate),
        batch_size=500,
    )
    table = pa.Table.from_batches(list(reader))
    assert table.num_rows == 2000 and table.column("id").to_pylist() == list(range(1, 2001))
    assert table.schema.field("amount").type == pa.decimal128(12, 2)
    assert table.column("customer")[6].as_py() == "kunde 0 ø"
    assert table.column("modified")[0].as_py() == dt.datetime(2024, 1, 1, 0, 1)


def test_wrong_password_is_login_failed_18456(served, msodbc, certificate):
    import pyodbc

    with pytest.raises(pyodbc.Error) as caught:
        pyodbc.connect(odbc_string(msodbc, served.port, "tls", certificate, password="not-" + PASSWORD), timeout=10)
    message = str(caught.value)
    assert "18456" in message and f"Login failed for user '{USER}'" in message
    assert served.stats.failed_logins == 1 and served.stats.sessions == 0


@pytest.mark.parametrize("mode", ["tls", "strict"])
def test_access_token_login_checks_the_token(served, msodbc, certificate, mode):
    import pyodbc

    connect_string = odbc_string(msodbc, served.port, mode, certificate, user="")
    connection = pyodbc.connect(connect_string, attrs_before={SQL_COPT_SS_ACCESS_TOKEN: pack_access_token(TOKEN)}, timeout=10)
    try:
        assert connection.cursor().execute("SELECT MAX(id) AS top_id FROM dbo.orders").fetchval() == 2000
    finally:
        connection.close()
    with pytest.raises(pyodbc.Error, match="18456"):
        pyodbc.connect(connect_string, attrs_before={SQL_COPT_SS_ACCESS_TOKEN: pack_access_token("forged")}, timeout=10)
    assert served.stats.sessions == 1 and served.stats.failed_logins == 1


def test_sql_errors_carry_sql_server_numbers(served, msodbc, certificate):
    import pyodbc

    connection = pyodbc.connect(odbc_string(msodbc, served.port, "off", certificate), autocommit=True, timeout=10)
    try:
        cursor = connection.cursor()
        with pytest.raises(pyodbc.ProgrammingError, match=r"Invalid object name 'dbo.nowhere'.*\(208\)"):
            cursor.execute("SELECT * FROM dbo.nowhere")
        with pytest.raises(pyodbc.Error, match=r"\(2812\)"):
            cursor.execute("EXEC dbo.no_such_procedure")
        assert cursor.execute("SELECT 1").fetchval() == 1  # the session survives its errors
    finally:
        connection.close()


def test_attention_is_acknowledged_and_the_connection_reused(served, msodbc, certificate):
    """A query timeout makes the driver send an Attention; the server acknowledges it and the session goes on."""
    import pyodbc

    served.faults.stall_after(10, match="FROM dbo.orders ORDER BY", seconds=30)
    connection = pyodbc.connect(odbc_string(msodbc, served.port, "tls", certificate), autocommit=True, timeout=10)
    try:
        connection.timeout = 1
        cursor = connection.cursor()
        with pytest.raises(pyodbc.OperationalError, match="HYT00|timeout"):
            cursor.execute("SELECT id FROM dbo.orders ORDER BY id").fetchall()
        connection.timeout = 0
        assert cursor.execute("SELECT COUNT(*) FROM dbo.orders").fetchval() == 2000
    finally:
        connection.close()
    assert served.stats.attentions == 1 and served.stats.sessions == 1


def test_dropped_connection_mid_result_is_a_communication_error(served, msodbc, certificate):
    import pyodbc

    served.faults.drop_after(700, match="FROM dbo.orders ORDER BY")
    connection = pyodbc.connect(odbc_string(msodbc, served.port, "off", certificate), autocommit=True, timeout=10)
    try:
        with pytest.raises(pyodbc.Error, match="08S01|Communication link failure|TCP Provider"):
            connection.cursor().execute("SELECT id, customer FROM dbo.orders ORDER BY id").fetchall()
    finally:
        connection.close()
    assert served.stats.drops == 1


def test_the_server_counts_sessions(served, msodbc, certificate):
    import pyodbc

    connections = [pyodbc.connect(odbc_string(msodbc, served.port, "off", certificate), timeout=10) for _ in range(3)]
    assert served.stats.active == 3
    for connection in connections:
        connection.close()
    assert served.stats.sessions == 3 and served.stats.max_active == 3

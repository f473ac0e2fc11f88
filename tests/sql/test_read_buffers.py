"""Driver buffers sized to what a read needs: small tables and catalog lookups do not reserve bulk-read memory.

arrow-odbc allocates a read's whole transfer buffer before the first fetch, so a
50-row table read with the bulk settings paid for 16 MiB. These tests pin the
sizes hygge asks for, and that the smaller sizes lose nothing when a result
outgrows them. All of this is about psqlODBC's buffers, so these connections say ``reader: odbc``
(the native reader's own streaming is tested in test_native_reader.py).
"""

from __future__ import annotations

import pyarrow.parquet as pq

import hygge_core
from hygge_core.config import ConnectionConfig
from hygge_core.sql import connection as sql_connection
from hygge_core.sql.connection import METADATA_BUFFER_BYTES
from hygge_core.sql.pool import pool_for

ODBC = "    reader: odbc\n"
SMALL_TABLE = (
    "create table small (id int primary key, label text); insert into small select g, md5(g::text) from generate_series(1, 50) g;"
)


def record_reads(monkeypatch) -> list[tuple[str, sql_connection.ReadOptions]]:
    """Every (during, options) the ODBC connection is asked to read with."""
    seen: list[tuple[str, sql_connection.ReadOptions]] = []
    plain = sql_connection.ArrowOdbcConnection.read_batches

    def spy(self, query, schema, options, *, during, parameters=None):
        seen.append((during, options))
        return plain(self, query, schema, options, during=during, parameters=parameters)

    monkeypatch.setattr(sql_connection.ArrowOdbcConnection, "read_batches", spy)
    return seen


def test_a_small_table_reads_with_a_batch_sized_to_its_count(pgdb, pg_project, monkeypatch):
    pgdb.sql(SMALL_TABLE)
    root = pg_project(
        """
    flows:
      app:
        home: {type: postgres, connection: pg}
        store: {type: parquet, path: "lake/{entity}"}
        entities: [small]
      uncounted:
        home: {type: postgres, connection: pg, table: small, count_rows: false}
        store: {type: parquet, path: "lake/uncounted"}
        entities: [small]
    """,
        connection_extra=ODBC,
    )
    seen = record_reads(monkeypatch)
    project = hygge_core.load_project(root)
    result = hygge_core.run_entity(project.entity("app/small"))
    assert (result.rows, result.source_rows) == (50, 50)
    bulk = [options for during, options in seen if during == 'reading "public"."small"']
    assert len(bulk) == 1 and bulk[0].batch_size == 50 + 50 // 4 + 256
    lookups = [options for during, options in seen if options not in bulk]
    assert lookups and all(options.max_bytes_per_batch == METADATA_BUFFER_BYTES for options in lookups)
    rows = pq.read_table(root / "lake" / "small").sort_by("id").to_pylist()
    assert rows[0] == {"id": 1, "label": "c4ca4238a0b923820dcc509a6f75849b"} and len(rows) == 50

    seen.clear()
    hygge_core.run_entity(project.entity("uncounted/small"))  # no count: the configured batch size stands
    assert [options.batch_size for during, options in seen if during == 'reading "public"."small"'] == [100_000]


def test_rows_inserted_after_the_count_arrive_in_more_batches(pgdb, pg_project, monkeypatch):
    pgdb.sql("create table growing (id int primary key); insert into growing select generate_series(1, 10);")
    root = pg_project(
        """
    flows:
      app:
        home: {type: postgres, connection: pg}
        store: {type: parquet, path: "lake/{entity}"}
        entities: [growing]
    """,
        connection_extra=ODBC,
    )
    plain = sql_connection.SqlConnection.fetch_all

    def fetch_then_grow(self, query, *, during, parameters=None):
        table = plain(self, query, during=during, parameters=parameters)
        if during.startswith("counting rows"):
            pgdb.sql("insert into growing select generate_series(11, 1000);")  # committed between the count and the read
        return table

    monkeypatch.setattr(sql_connection.SqlConnection, "fetch_all", fetch_then_grow)
    project = hygge_core.load_project(root)
    result = hygge_core.run_entity(project.entity("app/growing"))
    assert result.source_rows == 10 and result.rows == 1000
    assert pq.read_table(root / "lake" / "growing").sort_by("id").column("id").to_pylist() == list(range(1, 1001))


def test_a_lookup_larger_than_its_buffer_comes_back_whole(pgdb):
    config = ConnectionConfig.model_validate(
        dict(
            type="postgres",
            server=pgdb.server.host,
            port=pgdb.server.port,
            database=pgdb.name,
            user=pgdb.user,
            password=pgdb.password,
            reader="odbc",
        )
    )
    with pool_for("pg", config).connection() as connection:
        # 3,000 rows of a text column reserve 4 KiB each: about 250 rows fit the 1 MiB lookup buffer.
        table = connection.fetch_all(
            "select g as n, repeat('x', g % 40) as s from generate_series(1, 3000) g order by g", during="test"
        )
    assert table.num_rows == 3000
    assert table.column("n").to_pylist() == list(range(1, 3001))
    assert table.column("s").to_pylist()[:3] == ["x", "xx", "xxx"] and table.column("s")[39].as_py() == ""

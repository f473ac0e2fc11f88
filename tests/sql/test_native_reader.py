"""The native PostgreSQL reader (ADBC): automatic parallel reads in one snapshot, lost connections, secrets.

Every read here goes through the default reader (native). Automatic splits are made to happen on small
tables with ``auto_partition_rows`` and a fixed core count, so the tests stay fast and do not depend on
the machine's cores.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import hygge_core
from hygge_core.config import ConnectionConfig
from hygge_core.errors import ConfigError, HomeError, TransientError
from hygge_core.sql import autosplit, native
from hygge_core.sql import pool as sql_pool
from hygge_core.sql.odbc import build_target
from hygge_core.sql.pool import pool_for

TABLES = """
create table by_id (id bigint primary key, label text);
insert into by_id select g, md5(g::text) from generate_series(1, 3000) g;
create table by_day (day date primary key, n int);
insert into by_day select date '2020-01-01' + g, g from generate_series(0, 1999) g;
create table no_key (label text, amount numeric(10,2));
insert into no_key select md5(g::text), g / 100.0 from generate_series(1, 3000) g;
create table skewed (id bigint primary key, label text);
insert into skewed select case when g <= 2900 then g else 1000000000 + g * 1000 end, md5(g::text) from generate_series(1, 3000) g;
analyze;
"""

FLOWS = """
flows:
  db:
    home: {type: postgres, connection: pg, batch_size: 100, auto_partition_rows: 1000}
    store: {type: parquet, path: "lake/{entity}"}
    entities: [by_id, by_day, no_key, skewed]
    retries: {max: 0}
"""


def md5(value: int) -> str:
    return hashlib.md5(str(value).encode()).hexdigest()


def published(root: Path, entity: str, key: str) -> list[dict]:
    return sorted(pq.read_table(root / "lake" / entity).to_pylist(), key=lambda r: r[key])


def files_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def four_cores(monkeypatch):
    monkeypatch.setattr(autosplit.os, "cpu_count", lambda: 4)


def run_alone(project, entity: str, **kwargs):
    """Run on fresh pools, so ``peak_open`` tells how many connections this one read used."""
    sql_pool.close_all()
    result = hygge_core.run_entity(project.entity(entity), **kwargs)
    return result, pool_for("pg", project.config.connections["pg"]).peak_open


def test_automatic_splits_by_key_type_and_one_stream_without_a_key(pgdb, pg_project, four_cores, caplog):
    pgdb.sql(TABLES)
    root = pg_project(FLOWS, pool_size=2)
    project = hygge_core.load_project(root)
    caplog.set_level(logging.INFO, logger="hygge.homes.sql")

    result, used = run_alone(project, "db/by_id")
    assert (result.rows, result.source_rows, used) == (3000, 3000, 2)
    assert published(root, "by_id", "id") == [{"id": g, "label": md5(g)} for g in range(1, 3001)]
    assert 'reading "public"."by_id" in 4 key ranges on \'id\' over up to 2 connections, in one snapshot' in caplog.text

    result, used = run_alone(project, "db/by_day")
    assert (result.rows, used) == (2000, 2)
    assert published(root, "by_day", "day") == [{"day": dt.date(2020, 1, 1) + dt.timedelta(days=g), "n": g} for g in range(2000)]

    caplog.clear()
    result, used = run_alone(project, "db/no_key")
    assert (result.rows, used) == (3000, 1)  # no primary key, no watermark.key: one stream
    assert "key ranges" not in caplog.text
    assert published(root, "no_key", "label")[0] == min(
        ({"label": md5(g), "amount": __import__("decimal").Decimal(g) / 100} for g in range(1, 3001)), key=lambda r: r["label"]
    )

    result, used = run_alone(project, "db/skewed")  # nearly every row in the first of 4 ranges by value
    assert (result.rows, used) == (3000, 2)
    expected = [{"id": g if g <= 2900 else 1_000_000_000 + g * 1000, "label": md5(g)} for g in range(1, 3001)]
    assert published(root, "skewed", "id") == expected


def test_small_table_reads_as_one_stream_below_the_threshold(pgdb, pg_project, four_cores):
    pgdb.sql("create table small (id int primary key); insert into small select generate_series(1, 999);")
    root = pg_project(FLOWS.replace("[by_id, by_day, no_key, skewed]", "[small]"), pool_size=2)
    result, used = run_alone(hygge_core.load_project(root), "db/small")
    assert (result.rows, used) == (999, 1)


def test_a_table_changed_during_the_read_is_published_as_of_its_snapshot(pgdb, pg_project, four_cores, monkeypatch):
    """Another session commits an UPDATE (moving keys across ranges), an INSERT and a DELETE once the read's
    snapshot is exported; the home's own connection waits until a second reader has started a range, so
    both readers read: neither publishes any of the change."""
    pgdb.sql(TABLES)
    root = pg_project(FLOWS, pool_size=2)
    project = hygge_core.load_project(root)
    plain_export, plain_read = native.AdbcPostgresConnection.export_snapshot, native.AdbcPostgresConnection.read_batches
    coordinator: list[int] = []
    ranges_read: list[int] = []
    second_reader = threading.Event()

    def export_then_change(self, *, during):
        snapshot_id = plain_export(self, during=during)
        coordinator.append(id(self))
        pgdb.sql(
            "update by_id set id = -id, label = 'moved' where id > 2500;"
            "update by_id set label = 'changed' where id between 1000 and 1100;"
            "insert into by_id select g, 'new' from generate_series(5000, 5100) g;"
            "delete from by_id where id between 1500 and 1600;"
        )
        return snapshot_id

    def read_once_both_read(self, query, schema, options, *, during, parameters=None):
        if "range" in during:
            ranges_read.append(id(self))
            if id(self) in coordinator:
                second_reader.wait(timeout=30)
            else:
                second_reader.set()
        return plain_read(self, query, schema, options, during=during, parameters=parameters)

    monkeypatch.setattr(native.AdbcPostgresConnection, "export_snapshot", export_then_change)
    monkeypatch.setattr(native.AdbcPostgresConnection, "read_batches", read_once_both_read)
    result, used = run_alone(project, "db/by_id")
    assert used == 2 and len(ranges_read) == 4 and len(set(ranges_read)) == 2, ranges_read
    assert (result.rows, result.source_rows) == (3000, 3000)
    assert published(root, "by_id", "id") == [{"id": g, "label": md5(g)} for g in range(1, 3001)]
    assert pgdb.sql("select count(*) from by_id where label in ('moved', 'changed', 'new')").strip() == str(500 + 101 + 101)


def test_rows_committed_after_the_count_wait_for_the_next_run(pgdb, pg_project, monkeypatch):
    """One stream is one snapshot too: the COUNT(*) and the rows read agree."""
    from hygge_core.sql.connection import SqlConnection

    pgdb.sql("create table growing (id int primary key); insert into growing select generate_series(1, 10);")
    root = pg_project(FLOWS.replace("[by_id, by_day, no_key, skewed]", "[growing]"))
    plain = SqlConnection.fetch_all

    def fetch_then_grow(self, query, *, during, parameters=None):
        table = plain(self, query, during=during, parameters=parameters)
        if during.startswith("counting rows"):
            pgdb.sql("insert into growing select generate_series(11, 1000);")
        return table

    monkeypatch.setattr(SqlConnection, "fetch_all", fetch_then_grow)
    result = hygge_core.run_entity(hygge_core.load_project(root).entity("db/growing"))
    assert (result.source_rows, result.rows) == (10, 10)
    assert pq.read_table(root / "lake" / "growing").sort_by("id").column("id").to_pylist() == list(range(1, 11))


def test_a_reader_losing_its_connection_fails_cleanly_and_keeps_the_previous_version(pgdb, pg_project, four_cores):
    pgdb.sql(
        "create table big (id bigint primary key, label text);"
        "insert into big select g, repeat(md5(g::text), 3) from generate_series(1, 200000) g; analyze big;"
    )
    root = pg_project(
        FLOWS.replace("[by_id, by_day, no_key, skewed]", "[big]").replace("batch_size: 100,", "batch_size: 2000,"),
        pool_size=2,
    )
    project = hygge_core.load_project(root)
    first, _ = run_alone(project, "db/big")
    assert first.rows == 200000
    before = files_bytes(root / "lake" / "big")
    pgdb.sql("update big set label = 'next' where id = 1")
    killed: list[str] = []

    def terminate_the_readers(report) -> None:
        if not killed:
            while pgdb.backends() < 2:  # the second reader has connected (it may still be setting up its session)
                time.sleep(0.02)
            killed.append(
                pgdb.server.psql(
                    f"select count(pg_terminate_backend(pid)) from pg_stat_activity "
                    f"where usename = '{pgdb.user}' and backend_type = 'client backend'"
                ).strip()
            )

    sql_pool.close_all()
    with pytest.raises(TransientError) as caught:
        hygge_core.run_entity(project.entity("db/big"), progress=terminate_the_readers)
    assert killed in (["1"], ["2"])  # both readers, or the home's alone when the other is between connections
    message = str(caught.value)
    assert f"127.0.0.1:{pgdb.server.port}/{pgdb.name}" in message and "connection failed while" in message
    assert pgdb.password not in message
    assert files_bytes(root / "lake" / "big") == before
    again, _ = run_alone(project, "db/big")
    assert again.rows == 200000 and published(root, "big", "id")[0] == {"id": 1, "label": "next"}


@pytest.mark.parametrize("server", ["127.0.0.1", "no-such-host.invalid"])
def test_wrong_password_or_host_never_shows_the_password(pgdb, server, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "s3cr3t;pw'" + pgdb.name
    config = ConnectionConfig(
        type="postgres", server=server, port=pgdb.server.port, database=pgdb.name, user=pgdb.user, password=secret
    )
    with pytest.raises((HomeError, TransientError)) as caught, pool_for("pg_wrong", config).connection():
        pass
    message = str(caught.value)
    assert ("login failed" if server == "127.0.0.1" else "connection failed") in message
    assert secret not in message and "s3cr3t" not in message and "s3cr3t" not in caplog.text
    assert "s3cr3t" not in repr(build_target("pg_wrong", config))


def test_connection_options_are_libpq_keywords_and_reader_fits_the_type():
    base = dict(type="postgres", server="h", database="d", user="u", password="pw")
    target = build_target("pg", ConnectionConfig(**base, options={"SSLmode": "require", "application_name": "lake"}))
    assert target.route == "adbc_postgres" and "sslmode='require'" in target.connection_string
    assert "application_name='lake'" in target.connection_string
    with pytest.raises(ConfigError, match=r"options.UseDeclareFetch is not a libpq keyword.*set reader: odbc"):
        build_target("pg", ConnectionConfig(**base, options={"UseDeclareFetch": "1"}))
    assert build_target("pg", ConnectionConfig(**base, reader="odbc", options={"UseDeclareFetch": "1"})).route == "arrow_odbc"
    with pytest.raises(ValueError, match="reader: native is for postgres connections"):
        ConnectionConfig(type="mssql", server="h", database="d", reader="native")
    assert {"sslmode", "sslrootcert"} <= native.LIBPQ_OPTIONS


def test_an_enum_reads_as_text_from_a_table_and_fails_clearly_from_a_query(pgdb, pg_project):
    pgdb.sql(
        "create type mood as enum ('sad', 'happy'); create table feelings (id int, m mood);"
        "insert into feelings values (1, 'happy'), (2, null);"
    )
    root = pg_project(
        FLOWS.replace(
            "entities: [by_id, by_day, no_key, skewed]",
            'entities: [feelings, {name: feelings_query, home: {query: "select id, m from feelings"}}]',
        )
    )
    project = hygge_core.load_project(root)
    assert hygge_core.run_entity(project.entity("db/feelings")).rows == 2
    assert published(root, "feelings", "id") == [{"id": 1, "m": "happy"}, {"id": 2, "m": None}]
    with pytest.raises(
        HomeError, match=r"column 'm' has a type the native reader does not know .*\(m::text\) or set reader: odbc"
    ):
        hygge_core.run_entity(project.entity("db/feelings_query"))


def test_reading_postgresql_does_not_load_polars_for_adbc_and_polars_still_loads_after(pgdb, pg_project):
    """ADBC's DB-API imports Polars for a backend hygge never uses (0.1 s and 27 MiB per process); hygge hides it."""
    pgdb.sql(TABLES)
    root = pg_project(FLOWS)
    script = textwrap.dedent(f"""
        import sys
        import hygge_core
        result = hygge_core.run_entity(hygge_core.load_project({str(root)!r}).entity("db/by_id"))
        assert result.status == "success", result.error
        print("polars loaded by the read:", "polars" in sys.modules)
        from adbc_driver_manager import _dbapi_backend
        print("adbc backends:", sorted(type(b).__name__ for b in _dbapi_backend._ALL_BACKENDS))
        import polars
        print("rows through polars:", polars.scan_parquet({str(root / "lake" / "by_id")!r} + "/*.parquet").select(polars.len()).collect().item())
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=os.environ.copy(), timeout=300)
    assert done.returncode == 0, done.stderr
    assert "polars loaded by the read: False" in done.stdout
    assert "adbc backends: ['_NoOpBackend', '_PyArrowBackend']" in done.stdout
    assert "rows through polars: 3000" in done.stdout

"""End to end through psqlODBC + arrow-odbc against the throwaway server: loads, increments, discovery, failures."""

from __future__ import annotations

import socket
import threading
import time

import pyarrow.parquet as pq
import pytest

import hygge_core
from hygge_core.errors import HomeError, TransientError


def lake_rows(root, entity, order_by=("id",)):
    rows = pq.read_table(root / "lake" / entity).to_pylist()
    return sorted(rows, key=lambda r: tuple(r[k] for k in order_by))


def test_full_load_replaces_and_matches_source(pgdb, pg_project):
    pgdb.sql(
        "create schema sales; create table sales.orders (id bigint primary key, customer text, amount numeric(12,2));"
        "insert into sales.orders select g, 'c' || (g % 7), g * 1.25 from generate_series(1, 2500) g;"
    )
    root = pg_project("""
    flows:
      erp:
        home: {type: postgres, connection: pg, table: "sales.{entity}", batch_size: 1000}
        store: {type: parquet, path: "lake/{entity}"}
        entities: [orders]
    """)
    project = hygge_core.load_project(root)
    first = hygge_core.run_entity(project.entity("erp/orders"))
    assert (first.rows, first.source_rows) == (2500, 2500)
    pgdb.sql("delete from sales.orders where id > 10; update sales.orders set customer = 'changed' where id = 1;")
    second = hygge_core.run_entity(project.entity("erp/orders"))
    assert second.rows == 10
    rows = lake_rows(root, "orders")
    assert [r["id"] for r in rows] == list(range(1, 11))
    assert rows[0]["customer"] == "changed" and str(rows[9]["amount"]) == "12.50"


def test_incremental_inserts_and_updates_no_loss_no_duplicates(pgdb, pg_project):
    pgdb.sql("""
        create table events (id int primary key, payload text, modified_at timestamp not null, version int not null);
        insert into events select g, 'v1', timestamp '2024-01-01' + g * interval '1 minute', 1 from generate_series(1, 100) g;
    """)
    root = pg_project("""
    flows:
      app:
        home: {type: postgres, connection: pg}
        store: {type: parquet, path: "lake/{entity}"}
        entities: [events]
        run_type: incremental
        watermark: {column: modified_at, key: id}
    """)
    project = hygge_core.load_project(root)
    plan = project.entity("app/events")
    first = hygge_core.run_entity(plan)
    assert first.rows == 100 and first.watermark_after.value == "2024-01-01T01:40:00"

    pgdb.sql("""
        insert into events select g, 'v1', timestamp '2024-02-01' + g * interval '1 second', 1 from generate_series(101, 130) g;
        update events set payload = 'v2', version = 2, modified_at = timestamp '2024-03-01' where id in (5, 50, 101);
    """)
    second = hygge_core.run_entity(plan)
    assert second.rows == 32 and second.source_rows == 32  # 30 new rows (101 already updated) + 2 updated old rows
    assert second.watermark_before.value == "2024-01-01T01:40:00"
    assert second.watermark_after.value == "2024-03-01T00:00:00"

    third = hygge_core.run_entity(plan)  # nothing new: nothing published, nothing duplicated
    assert third.rows == 0 and not third.published

    rows = pq.read_table(root / "lake" / "events").to_pylist()
    versions = sorted((r["id"], r["version"]) for r in rows)
    expected = sorted([(i, 1) for i in range(1, 131) if i != 101] + [(5, 2), (50, 2), (101, 2)])
    assert versions == expected  # every insert and every update exactly once
    latest = {r["id"]: r["payload"] for r in sorted(rows, key=lambda r: r["modified_at"])}
    assert latest[5] == latest[50] == latest[101] == "v2" and latest[6] == "v1"


def test_lookback_rereads_late_rows_without_duplicating(pgdb, pg_project):
    pgdb.sql("""
        create table ledger (id int primary key, at timestamptz not null);
        insert into ledger select g, timestamptz '2024-01-01 10:00:00+00' + g * interval '1 minute' from generate_series(1, 60) g;
    """)
    root = pg_project("""
    flows:
      app:
        home: {type: postgres, connection: pg}
        store: {type: parquet, path: "lake/{entity}"}
        entities: [ledger]
        run_type: incremental
        watermark: {column: at, key: id, lookback: 30m}
    """)
    plan = hygge_core.load_project(root).entity("app/ledger")
    assert hygge_core.run_entity(plan).rows == 60
    # A late row stamped before the stored watermark (a long transaction), plus a normal new row.
    pgdb.sql(
        "insert into ledger values (1000, timestamptz '2024-01-01 10:50:00+00'), (1001, timestamptz '2024-01-01 12:00:00+00');"
    )
    second = hygge_core.run_entity(plan)
    assert second.rows == 2
    row_count = next(check for check in second.checks if check.name == "row_count")
    assert row_count.passed, row_count.description  # the window counted 32 rows; the 30 re-read ones were dropped
    assert row_count.metadata["source_rows"] == 2
    assert second.watermark_after.value == "2024-01-01T12:00:00+00:00"
    ids = sorted(r["id"] for r in pq.read_table(root / "lake" / "ledger").to_pylist())
    assert ids == [*range(1, 61), 1000, 1001]


def test_upper_bound_is_fixed_at_the_start_of_the_run(pgdb, pg_project):
    """Rows committed while a run reads are left for the next run, not half-seen or lost."""
    pgdb.sql(
        "create table feed (id bigint primary key, note text); insert into feed select g, 'a' from generate_series(1, 20000) g;"
    )
    root = pg_project("""
    flows:
      app:
        home: {type: postgres, connection: pg, batch_size: 1000}
        store: {type: parquet, path: "lake/{entity}"}
        entities: [feed]
        run_type: incremental
        watermark: {column: id}
    """)
    plan = hygge_core.load_project(root).entity("app/feed")
    inserted = threading.Event()

    def progress(report):
        if not inserted.is_set():
            pgdb.sql("insert into feed select g, 'late' from generate_series(20001, 20100) g;")
            inserted.set()

    first = hygge_core.run_entity(plan, progress=progress)
    assert inserted.is_set()
    assert first.rows == 20000 and first.watermark_after.value == "20000"
    second = hygge_core.run_entity(plan)
    assert second.rows == 100
    ids = [r["id"] for r in pq.read_table(root / "lake" / "feed").to_pylist()]
    assert sorted(ids) == list(range(1, 20101))


def test_discovery_include_exclude_over_many_tables(pgdb, pg_project):
    statements = ["create schema sales; create schema hr;"]
    statements += [f"create table sales.t{i:02d} (id int); insert into sales.t{i:02d} values ({i});" for i in range(30)]
    statements += [f"create table sales.tmp_{i} (id int);" for i in range(3)]
    statements += ["create table hr.people (id int); create table public.misc (id int);"]
    pgdb.sql("\n".join(statements))
    root = pg_project(
        """
    flows:
      erp:
        home: {type: postgres, connection: pg, count_rows: false}
        store: {type: parquet, path: "lake/{entity}"}
        entities: {include: ["sales.*"], exclude: ["sales.tmp_*"]}
    """,
        pool_size=3,
    )
    project = hygge_core.load_project(root)
    names = [plan.entity for plan in project.plans]
    assert names == [f"sales.t{i:02d}" for i in range(30)]
    result = hygge_core.run_project(project, concurrency=6)
    assert [e.status for e in result.entities] == ["success"] * 30, [e.error for e in result.entities if e.error]
    assert pq.read_table(root / "lake" / "sales.t07").to_pylist() == [{"id": 7}]
    assert pgdb.backends() <= 3
    from hygge_core.sql.pool import pool_for

    pool = pool_for("pg", project.config.connections["pg"])  # the process-wide pool the 30 entities shared
    assert pool.peak_open <= 3 and pool.opened_total <= 3


def test_query_entity(pgdb, pg_project):
    pgdb.sql(
        "create table orders (id int, amount numeric(10,2), status text);"
        "insert into orders values (1, 10, 'open'), (2, 20, 'paid'), (3, 30, 'paid');"
    )
    root = pg_project("""
    flows:
      reports:
        home: {type: postgres, connection: pg}
        store: {type: parquet, path: "lake/{entity}"}
        entities:
          - name: paid_totals
            home: {query: "select status, sum(amount)::numeric(12,2) as total, count(*) as n, avg(amount)::float8 as mean from orders where status = 'paid' group by status"}
    """)
    result = hygge_core.run_entity(hygge_core.load_project(root).entity("reports/paid_totals"))
    assert result.rows == 1 and result.source_rows == 1
    row = pq.read_table(root / "lake" / "paid_totals").to_pylist()
    assert row == [{"status": "paid", "total": __import__("decimal").Decimal("50.00"), "n": 2, "mean": 25.0}]


def test_missing_table_names_table_and_server(pgdb, pg_project):
    root = pg_project("""
    flows:
      erp:
        home: {type: postgres, connection: pg}
        store: {type: parquet, path: "lake/{entity}"}
        entities: [nope.missing_table]
    """)
    plan = hygge_core.load_project(root).entity("erp/nope.missing_table")
    with pytest.raises(HomeError) as caught:
        hygge_core.run_entity(plan)
    message = str(caught.value)
    assert "nope.missing_table not found" in message and f"127.0.0.1:{pgdb.server.port}/{pgdb.name}" in message


def test_wrong_password_is_not_retried_and_never_shown(pgdb, pg_project, monkeypatch):
    root = pg_project("""
    flows:
      erp:
        home: {type: postgres, connection: pg}
        store: {type: parquet, path: "lake/{entity}"}
        entities: [anything]
        retries: {max: 3, delay: 0s}
    """)
    monkeypatch.setenv("HYGGE_TEST_PG_PASSWORD", "wrong-Secret-123")
    result = hygge_core.run_with_retries(hygge_core.load_project(root).entity("erp/anything"))
    assert result.status == "failed" and result.attempts == 1 and result.error_type == "HomeError"
    assert "login failed" in result.error and "check the user and password" in result.error
    assert "wrong-Secret-123" not in result.error and pgdb.password not in result.error


def dead_port_plan(write_project, port: int):
    """An entity whose connection points at ``port`` on loopback with a 2 s login timeout (password from $PW)."""
    root = write_project(f"""
    name: t
    connections:
      dead: {{type: postgres, server: 127.0.0.1, port: {port}, database: db, user: u, password: "${{PW}}", login_timeout: 2s}}
    flows:
      f:
        home: {{type: postgres, connection: dead}}
        store: {{type: parquet, path: "lake/{{entity}}"}}
        entities: [t]
    """)
    return hygge_core.load_project(root).entity("f/t")


def test_unreachable_port_fails_fast_naming_the_server(pgdb, write_project, monkeypatch):
    monkeypatch.setenv("PW", "x")
    with socket.socket() as listener:  # a port that accepts TCP but never speaks: only the login timeout ends the wait
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        plan = dead_port_plan(write_project, port)
        started = time.monotonic()
        with pytest.raises(TransientError) as caught:
            hygge_core.run_entity(plan)
        elapsed = time.monotonic() - started
    assert f"127.0.0.1:{port}/db" in str(caught.value)
    assert elapsed < 2 + 3  # the login timeout, plus slack for a loaded machine; never the driver's default


def test_refused_port_is_transient(write_project, monkeypatch):
    monkeypatch.setenv("PW", "x")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransientError, match=rf"127\.0\.0\.1:{port}/db.*(refused|could not connect)"):
        hygge_core.run_entity(dead_port_plan(write_project, port))


def test_server_drops_connection_mid_read_keeps_previous_version(pgdb, pg_project):
    pgdb.sql(
        "create table big (id bigint primary key, label text); insert into big select g, 'row ' || g from generate_series(1, 200000) g;"
    )
    root = pg_project("""
    flows:
      erp:
        home: {type: postgres, connection: pg, batch_size: 2000}
        store: {type: parquet, path: "lake/{entity}"}
        entities: [big]
        retries: {max: 0}
    """)
    plan = hygge_core.load_project(root).entity("erp/big")
    assert hygge_core.run_entity(plan).rows == 200000
    before = lake_rows(root, "big")

    pgdb.sql("update big set label = 'second run' where id <= 10;")
    killed = threading.Event()

    def kill_backend(report):
        if report.rows >= 4000 and not killed.is_set():
            killed.set()
            pgdb.server.psql(f"select pg_terminate_backend(pid) from pg_stat_activity where usename = '{pgdb.user}'")

    with pytest.raises(TransientError) as caught:
        hygge_core.run_entity(plan, progress=kill_backend)
    assert killed.is_set()
    assert pgdb.name in str(caught.value)
    assert lake_rows(root, "big") == before  # the previous version, untouched
    staging = root / "lake" / ".hygge-staging"
    assert not staging.exists() or not [p for p in staging.iterdir() if p.suffix != ".lock"]  # nothing left behind

    # The broken connection was discarded: the next run gets a fresh one and succeeds.
    again = hygge_core.run_entity(plan)
    assert again.rows == 200000
    assert lake_rows(root, "big")[0]["label"] == "second run"


def test_postgres_sample_runs(pgdb, tmp_path, monkeypatch):
    """samples/postgres_to_parquet.yaml, as shipped, against the throwaway server."""
    import shutil
    from pathlib import Path

    sample = Path(__file__).resolve().parents[2] / "samples" / "postgres_to_parquet.yaml"
    pgdb.sql(
        "create schema shop;"
        "create table shop.customers (customer_id int primary key, name text, updated_at timestamp not null);"
        "insert into shop.customers select g, 'customer ' || g, timestamp '2024-01-01' + g * interval '1 hour' from generate_series(1, 50) g;"
        "create table shop.orders (order_id bigint primary key, customer_id int, amount numeric(12,2), updated_at timestamp not null);"
        "insert into shop.orders select g, g % 50 + 1, g * 0.5, timestamp '2024-01-01' + g * interval '1 minute' from generate_series(1, 500) g;"
    )
    for key, value in pgdb.env().items():
        monkeypatch.setenv(key, value)
    copy = tmp_path / "sample" / "hygge.yml"
    copy.parent.mkdir()
    shutil.copy(sample, copy)
    project = hygge_core.load_project(copy)
    result = hygge_core.run_project(project)
    assert {(e.entity, e.status, e.rows) for e in result.entities} == {
        ("shop.customers", "success", 50),
        ("shop.orders", "success", 500),
    }

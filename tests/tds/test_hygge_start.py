"""``hygge start`` against the TDS test server: a real hygge process, Microsoft's driver, the wire, DuckDB behind it."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
import scenarios
from scenarios import hygge_start, lake, ok, orders, snapshot, write_project
from tds_helpers import ENCRYPTION_MODES, TdsSource

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("mode", ENCRYPTION_MODES)
def test_full_load_lands_every_value(tmp_path: Path, tds_source, msodbc, mode):
    source: TdsSource = tds_source(mode)
    # a second full drop once (the encryption mode does not change it): the same data, once
    scenarios.full_load(source, tmp_path / "project", twice=mode == "off")
    assert set(source.server.stats.encryption) == {mode} and source.server.stats.failed_logins == 0
    assert source.server.settled() == 0  # every session hygge opened was closed when its process ended


def test_incremental_inserts_updates_and_lookback_no_loss_no_duplicates(tmp_path: Path, tds_source, msodbc):
    source: TdsSource = tds_source("tls")
    scenarios.incremental_with_lookback(source, tmp_path / "project")
    assert set(source.server.stats.encryption) == {"tls"}


def test_discovery_include_exclude_and_a_query_entity(tmp_path: Path, tds_source, msodbc):
    source: TdsSource = tds_source("strict")
    scenarios.discovery_and_a_query_entity(source, tmp_path / "project")
    stats = source.server.stats
    assert set(stats.encryption) == {"strict"} and source.server.settled() == 0
    # The default step mode: the 10 discovered tables share one step (2 loading threads: concurrency 4 over 2 steps),
    # the query entity has its own, in another process. Never more than pool_size sessions at once, and a login per
    # pool slot claimed (3) plus discovery's (closed before the steps start), not one per entity (11).
    assert stats.max_active <= 3, f"{stats.max_active} sessions at once with pool_size 3"
    assert stats.sessions <= 4, f"{stats.sessions} logins for 11 entities: connections were not reused"


def test_in_process_runs_share_pool_size_connections(tmp_path: Path, tds_source, msodbc):
    """With the in-process executor every entity borrows from one pool: the server sees at most pool_size sessions.

    (The multiprocess executor gives each step process its own pool, so a login per step process; the parent
    closes the plan's discovery connection before the steps start.)
    """
    source: TdsSource = tds_source("off")
    for index in range(10):
        source.create(
            f"t{index:02d}", pa.table({"id": pa.array(range(index * 100, index * 100 + 100), pa.int32())}), {"id": "int"}
        )
    root = write_project(
        tmp_path / "project",
        source,
        """
    concurrency: 3
    dagster: {executor: in_process}
    flows:
      erp:
        home: {type: mssql, connection: ms}
        store: {type: parquet, path: "lake/{entity}"}
        entities: {include: ["*"]}
    """,
        pool_size=3,
    )
    ok(hygge_start(root, password=source.password))
    stats = source.server.stats
    assert lake(root, "dbo.t04").column("id").to_pylist() == list(range(400, 500))
    assert stats.max_active <= 3, f"{stats.max_active} sessions at once with pool_size 3"
    # Reused, not one login per entity. One more than pool_size is allowed: a worker that gives back its pool slot
    # closes the idle connection no slot covers any more (so other processes may have it), and a later read logs in.
    assert stats.sessions <= 4, f"{stats.sessions} logins for 10 entities: pooled connections were not reused"
    assert source.server.settled() == 0


def test_wrong_password_is_a_clear_error_without_the_secret(tmp_path: Path, tds_source, msodbc):
    source: TdsSource = tds_source("off")
    scenarios.wrong_password(source, tmp_path / "project")
    assert source.server.stats.failed_logins >= 1


def test_connection_dropped_mid_result_keeps_the_previous_version_then_retries(tmp_path: Path, tds_source, msodbc):
    source: TdsSource = tds_source("tls")
    server = source.server
    source.create("orders", orders(3000), scenarios.ORDERS_DECLARED)
    root = write_project(
        tmp_path / "project",
        source,
        """
    flows:
      erp:
        home: {type: mssql, connection: ms, batch_size: 500}
        store: {type: parquet, path: "lake/{entity}"}
        entities: [orders]
        retries: {max: 1, delay: 1s, jitter: false}
    """,
    )
    ok(hygge_start(root, password=source.password))
    before = snapshot(root / "lake" / "orders")
    server.execute("UPDATE dbo.orders SET note = 'second' WHERE id = 1")

    server.faults.drop_after(1200, match="FROM [dbo].[orders]", times=2)  # the attempt and its retry both lose the connection
    failed = hygge_start(root, password=source.password)
    assert failed.returncode != 0 and server.stats.drops == 2
    assert "Communication link failure" in failed.stdout + failed.stderr or "TCP Provider" in failed.stdout + failed.stderr
    assert snapshot(root / "lake" / "orders") == before  # the published version is untouched

    server.faults.drop_after(1200, match="FROM [dbo].[orders]", times=1)  # transient: the retry succeeds
    ok(hygge_start(root, password=source.password))
    assert server.stats.drops == 3
    landed = lake(root, "orders").sort_by("id")
    assert landed.num_rows == 3000 and landed.column("note")[0].as_py() == "second"

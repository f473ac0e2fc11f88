"""``hygge start`` against the TDS test server: a real hygge process, Microsoft's driver, the wire, DuckDB behind it."""

from __future__ import annotations

import datetime as dt
import decimal
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tds_helpers import ENCRYPTION_MODES, PASSWORD, PASSWORD_ENV, connection_yaml, write_table

HYGGE = str(Path(sys.executable).with_name("hygge"))

pytestmark = pytest.mark.slow


def hygge_start(root: Path, *args: str, password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", PASSWORD_ENV: password}
    env.pop("DAGSTER_HOME", None)
    return subprocess.run([HYGGE, "start", *args], cwd=root, env=env, capture_output=True, text=True, timeout=600)


def ok(completed: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert completed.returncode == 0, f"hygge start failed:\n{completed.stdout}\n{completed.stderr}"
    return completed


def project(tmp_path: Path, port: int, mode: str, certificate, flows: str, *, pool_size: int = 2) -> Path:
    root = tmp_path / "project"
    root.mkdir(exist_ok=True)
    text = "name: tds\nconnections:\n" + connection_yaml(port, mode, certificate, pool_size=pool_size) + textwrap.dedent(flows)
    (root / "hygge.yml").write_text(text, encoding="utf-8")
    return root


def lake(root: Path, entity: str) -> pa.Table:
    return pq.read_table(root / "lake" / entity)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".hygge-staging" not in p.parts
    }


ORDERS_DECLARED = {
    "id": "int",
    "customer": "nvarchar(60)",
    "amount": "money",
    "placed": "date",
    "modified": "datetime2(3)",
    "note": "varchar(20)",
}


def orders(count: int = 1500) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(1, count + 1), pa.int32()),
            "customer": [f"Kunde {i % 11} – Ærø" if i % 5 else "" for i in range(1, count + 1)],
            "amount": pa.array([decimal.Decimal(i * 1001).scaleb(-4) for i in range(1, count + 1)], pa.decimal128(19, 4)),
            "placed": [dt.date(2024, 1, 1) + dt.timedelta(days=i % 366) for i in range(1, count + 1)],
            "modified": pa.array(
                [dt.datetime(2024, 1, 1) + dt.timedelta(seconds=i, milliseconds=i % 1000) for i in range(1, count + 1)],
                pa.timestamp("ms"),
            ),
            "note": [None if i % 7 == 0 else f"n{i}" for i in range(1, count + 1)],
        }
    )


def expected_lake_schema() -> pa.Schema:
    return pa.schema(
        [
            ("id", pa.int32()),
            ("customer", pa.string()),
            ("amount", pa.decimal128(19, 4)),
            ("placed", pa.date32()),
            ("modified", pa.timestamp("ms")),
            ("note", pa.string()),
        ]
    )


FULL_FLOW = """
flows:
  erp:
    home: {type: mssql, connection: ms, table: "dbo.{entity}", batch_size: 400}
    store: {type: parquet, path: "lake/{entity}"}
    entities: [orders]
"""


@pytest.mark.parametrize("mode", ENCRYPTION_MODES)
def test_full_load_lands_every_value(tmp_path, tds_data, tds_server, certificate, msodbc, mode):
    served = orders()
    write_table(tds_data, "orders", served, ORDERS_DECLARED)
    server = tds_server()
    root = project(tmp_path, server.port, mode, certificate, FULL_FLOW)
    first = ok(hygge_start(root))
    landed = lake(root, "orders").sort_by("id")
    assert landed.schema.remove_metadata() == expected_lake_schema()
    assert landed.to_pylist() == served.cast(expected_lake_schema()).to_pylist()
    assert PASSWORD not in first.stdout + first.stderr
    assert set(server.stats.encryption) == {mode} and server.stats.failed_logins == 0
    if mode == "off":  # a full drop again (once is enough: the encryption mode does not change it): the same data, once
        ok(hygge_start(root))
        assert lake(root, "orders").sort_by("id").to_pylist() == landed.to_pylist()
        assert len([k for k in snapshot(root / "lake" / "orders") if k.endswith(".parquet")]) == 1
    assert server.stats.active == 0  # every session hygge opened was closed when its process ended


def test_incremental_inserts_and_updates_no_loss_no_duplicates(tmp_path, tds_data, tds_server, certificate, msodbc):
    write_table(tds_data, "orders", orders(300), ORDERS_DECLARED)
    server = tds_server()
    root = project(
        tmp_path,
        server.port,
        "tls",
        certificate,
        """
    flows:
      erp:
        home: {type: mssql, connection: ms}
        store: {type: parquet, path: "lake/{entity}"}
        entities: [orders]
        run_type: incremental
        watermark: {column: modified, key: id}
    """,
    )
    ok(hygge_start(root))
    assert lake(root, "orders").num_rows == 300
    server.execute(
        "INSERT INTO dbo.orders (id, customer, amount, placed, modified, note) VALUES "
        "(301, N'Neu ✓', 1.5, '2024-06-01', '2024-01-01 00:06:00.500', 'new'), "
        "(302, N'Neu 2', 2.5, '2024-06-02', '2024-02-01 00:00:00.000', NULL);"
        "UPDATE dbo.orders SET customer = N'geändert', modified = '2024-03-01 00:00:00.000' WHERE id IN (5, 150);"
    )
    ok(hygge_start(root))
    rows = lake(root, "orders").to_pylist()
    by_version: dict[int, list[str]] = {}
    for row in sorted(rows, key=lambda r: r["modified"]):
        by_version.setdefault(row["id"], []).append(row["customer"])
    assert sorted(by_version) == list(range(1, 303))  # nothing lost
    assert by_version[5][-1] == by_version[150][-1] == "geändert" and by_version[301] == ["Neu ✓"]
    assert len(rows) == 304  # 300 + 2 inserts + 2 updated versions, each exactly once
    ok(hygge_start(root))  # nothing new: nothing duplicated
    assert lake(root, "orders").num_rows == 304


def test_discovery_include_exclude_and_a_query_entity(tmp_path, tds_data, tds_server, certificate, msodbc):
    for index in range(10):
        write_table(tds_data, f"sales.t{index:02d}", pa.table({"id": pa.array([index], pa.int32())}), {"id": "int"})
    for index in range(2):
        write_table(tds_data, f"sales.tmp_{index}", pa.table({"id": pa.array([index], pa.int32())}), {"id": "int"})
    write_table(tds_data, "hr.people", pa.table({"id": pa.array([1], pa.int32())}), {"id": "int"})
    write_table(tds_data, "orders", orders(50), ORDERS_DECLARED)
    server = tds_server()
    root = project(
        tmp_path,
        server.port,
        "strict",
        certificate,
        """
    flows:
      erp:
        home: {type: mssql, connection: ms}
        store: {type: parquet, path: "lake/{entity}"}
        entities: {include: ["sales.*"], exclude: ["sales.tmp_*"]}
      report:
        home: {type: mssql, connection: ms, query: "SELECT placed, COUNT(*) AS orders, SUM(amount) AS total FROM dbo.orders WHERE note IS NOT NULL GROUP BY placed"}
        store: {type: parquet, path: "lake/report"}
    """,
        pool_size=3,
    )
    completed = ok(hygge_start(root))
    landed = sorted(p.name for p in (root / "lake").iterdir() if not p.name.startswith("."))
    assert landed == ["report", *[f"sales.t{i:02d}" for i in range(10)]]
    assert lake(root, "sales.t07").to_pylist() == [{"id": 7}]
    report = sorted(lake(root, "report").to_pylist(), key=lambda r: r["placed"])
    source = [r for r in orders(50).to_pylist() if r["note"] is not None]
    assert sum(r["orders"] for r in report) == len(source)
    assert sum(r["total"] for r in report) == sum(r["amount"] for r in source)
    assert "11 of 11 entities succeeded" in completed.stdout
    assert set(server.stats.encryption) == {"strict"} and server.stats.active == 0
    # The default step mode: the 10 discovered tables share one step (2 loading threads: concurrency 4 over 2 steps),
    # the query entity has its own, in another process. Never more than pool_size sessions at once, and a login per
    # pool slot claimed (3) plus discovery's (closed before the steps start), not one per entity (11).
    assert server.stats.max_active <= 3, f"{server.stats.max_active} sessions at once with pool_size 3"
    assert server.stats.sessions <= 4, f"{server.stats.sessions} logins for 11 entities: connections were not reused"


def test_in_process_runs_share_pool_size_connections(tmp_path, tds_data, tds_server, certificate, msodbc):
    """With the in-process executor every entity borrows from one pool: the server sees at most pool_size sessions.

    (The multiprocess executor gives each step process its own pool, so a login per step process; the parent
    closes the plan's discovery connection before the steps start.)
    """
    for index in range(10):
        write_table(
            tds_data,
            f"t{index:02d}",
            pa.table({"id": pa.array(range(index * 100, index * 100 + 100), pa.int32())}),
            {"id": "int"},
        )
    server = tds_server()
    root = project(
        tmp_path,
        server.port,
        "off",
        certificate,
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
    ok(hygge_start(root))
    assert lake(root, "dbo.t04").column("id").to_pylist() == list(range(400, 500))
    assert server.stats.max_active <= 3, f"{server.stats.max_active} sessions at once with pool_size 3"
    # Reused, not one login per entity. One more than pool_size is allowed: a worker that gives back its pool slot
    # closes the idle connection no slot covers any more (so other processes may have it), and a later read logs in.
    assert server.stats.sessions <= 4, f"{server.stats.sessions} logins for 10 entities: pooled connections were not reused"
    assert server.stats.active == 0


def test_wrong_password_is_a_clear_error_without_the_secret(tmp_path, tds_data, tds_server, certificate, msodbc):
    write_table(tds_data, "orders", orders(10), ORDERS_DECLARED)
    server = tds_server()
    root = project(tmp_path, server.port, "off", certificate, FULL_FLOW)
    wrong = "Wr0ng-Secret;value"
    completed = hygge_start(root, password=wrong)
    output = completed.stdout + completed.stderr
    assert completed.returncode != 0
    assert "Login failed for user 'hygge_reader'" in output and "18456" in output, output
    assert "connection 'ms' (mssql localhost:" in output
    assert wrong not in output and PASSWORD not in output
    assert server.stats.failed_logins >= 1 and not (root / "lake" / "orders").exists()


def test_connection_dropped_mid_result_keeps_the_previous_version_then_retries(
    tmp_path, tds_data, tds_server, certificate, msodbc
):
    write_table(tds_data, "orders", orders(3000), ORDERS_DECLARED)
    server = tds_server()
    root = project(
        tmp_path,
        server.port,
        "tls",
        certificate,
        """
    flows:
      erp:
        home: {type: mssql, connection: ms, batch_size: 500}
        store: {type: parquet, path: "lake/{entity}"}
        entities: [orders]
        retries: {max: 1, delay: 1s, jitter: false}
    """,
    )
    ok(hygge_start(root))
    before = snapshot(root / "lake" / "orders")
    server.execute("UPDATE dbo.orders SET note = 'second' WHERE id = 1")

    server.faults.drop_after(1200, match="FROM [dbo].[orders]", times=2)  # the attempt and its retry both lose the connection
    failed = hygge_start(root)
    assert failed.returncode != 0 and server.stats.drops == 2
    assert "Communication link failure" in failed.stdout + failed.stderr or "TCP Provider" in failed.stdout + failed.stderr
    assert snapshot(root / "lake" / "orders") == before  # the published version is untouched

    server.faults.drop_after(1200, match="FROM [dbo].[orders]", times=1)  # transient: the retry succeeds
    ok(hygge_start(root))
    assert server.stats.drops == 3
    landed = lake(root, "orders").sort_by("id")
    assert landed.num_rows == 3000 and landed.column("note")[0].as_py() == "second"

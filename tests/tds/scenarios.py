"""SQL Server scenarios run by both suites: on the wire through the TDS test server (tests/tds) and against a real
SQL Server (tests/sql/test_mssql_real.py), so the day a real server is reachable the two can be compared.

A scenario gets a ``Source`` (where its tables live and how a project connects to it), makes its tables,
runs hygge and asserts what lands in the lake, value by value. It returns what it ran, so the TDS suite can
add what only its server can witness (sessions, encryption, the statements it executed).
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tds_helpers import PASSWORD_ENV
from type_cases import expected_rows, served_table

import hygge_core
from hygge_core.result import EntityResult

HYGGE = str(Path(sys.executable).with_name("hygge"))


class Source(Protocol):
    """Where a scenario's tables live: the TDS test server, or a real SQL Server."""

    user: str
    password: str
    rowversion_is_served: bool  # False on a real server: it generates rowversion values itself

    def table(self, stem: str) -> str:
        """A table name in ``dbo`` for this test alone (a real server's database is shared between runs)."""
        ...

    def create(self, name: str, table: pa.Table, declared: dict[str, str]) -> None:
        """``dbo.<name>`` with the declared SQL Server types, holding ``table``'s rows."""
        ...

    def execute(self, sql: str) -> None:
        """Run T-SQL (changes between runs)."""
        ...

    def connection(self, *, pool_size: int) -> str:
        """The ``ms:`` entry of ``connections:``, its password read from ``PASSWORD_ENV``."""
        ...


# --- running hygge ----------------------------------------------------------------------------------


def hygge_start(root: Path, *args: str, password: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", PASSWORD_ENV: password}
    env.pop("DAGSTER_HOME", None)
    return subprocess.run([HYGGE, "start", *args], cwd=root, env=env, capture_output=True, text=True, timeout=600)


def ok(completed: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert completed.returncode == 0, f"hygge start failed:\n{completed.stdout}\n{completed.stderr}"
    return completed


def write_project(folder: Path, source: Source, flows: str, *, pool_size: int = 2) -> Path:
    folder.mkdir(exist_ok=True)
    text = "name: tds\nconnections:\n" + source.connection(pool_size=pool_size) + textwrap.dedent(flows)
    (folder / "hygge.yml").write_text(text, encoding="utf-8")
    return folder


def lake(root: Path, entity: str) -> pa.Table:
    return pq.read_table(root / "lake" / entity)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".hygge-staging" not in p.parts
    }


# --- the orders table ---------------------------------------------------------------------------------

ORDERS_DECLARED = {
    "id": "int",
    "customer": "nvarchar(60)",
    "amount": "money",
    "placed": "date",
    "modified": "datetime2(3)",
    "note": "varchar(20)",
}
ORDERS_LAKE_SCHEMA = pa.schema(
    [
        ("id", pa.int32()),
        ("customer", pa.string()),
        ("amount", pa.decimal128(19, 4)),
        ("placed", pa.date32()),
        ("modified", pa.timestamp("ms")),
        ("note", pa.string()),
    ]
)


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


# --- scenarios ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ran:
    root: Path
    output: str  # stdout and stderr of the (last) hygge start


def full_load(source: Source, folder: Path, *, twice: bool = False) -> Ran:
    """A full load lands every value; run ``twice``, the second full drop replaces it with the same data, once."""
    name = source.table("orders")
    served = orders()
    source.create(name, served, ORDERS_DECLARED)
    root = write_project(
        folder,
        source,
        f"""
    flows:
      erp:
        home: {{type: mssql, connection: ms, table: "dbo.{{entity}}", batch_size: 400}}
        store: {{type: parquet, path: "lake/{{entity}}"}}
        entities: [{name}]
    """,
    )
    first = ok(hygge_start(root, password=source.password))
    landed = lake(root, name).sort_by("id")
    assert landed.schema.remove_metadata() == ORDERS_LAKE_SCHEMA
    assert landed.to_pylist() == served.cast(ORDERS_LAKE_SCHEMA).to_pylist()
    output = first.stdout + first.stderr
    assert source.password not in output
    if twice:
        again = ok(hygge_start(root, password=source.password))
        assert lake(root, name).sort_by("id").to_pylist() == landed.to_pylist()
        assert len([k for k in snapshot(root / "lake" / name) if k.endswith(".parquet")]) == 1
        output = again.stdout + again.stderr
    return Ran(root, output)


def incremental_with_lookback(source: Source, folder: Path) -> Ran:
    """Inserts and updates between runs land once each; a late row inside the lookback lands; re-read rows do not repeat."""
    name = source.table("orders")
    source.create(name, orders(300), ORDERS_DECLARED)
    root = write_project(
        folder,
        source,
        f"""
    flows:
      erp:
        home: {{type: mssql, connection: ms}}
        store: {{type: parquet, path: "lake/{{entity}}"}}
        entities: [{name}]
        run_type: incremental
        watermark: {{column: modified, key: id, lookback: 1h}}
    """,
    )
    ok(hygge_start(root, password=source.password))
    assert lake(root, name).num_rows == 300
    source.execute(
        f"INSERT INTO dbo.{name} (id, customer, amount, placed, modified, note) VALUES "
        "(301, N'Neu ✓', 1.5, '2024-06-01', '2024-01-01 00:06:00.500', 'new'), "
        "(302, N'Neu 2', 2.5, '2024-06-02', '2024-02-01 00:00:00.000', NULL);"
        f"UPDATE dbo.{name} SET customer = N'geändert', modified = '2024-03-01 00:00:00.000' WHERE id IN (5, 150);"
    )
    ok(hygge_start(root, password=source.password))  # the lookback re-reads every earlier row: none may repeat
    rows = lake(root, name).to_pylist()
    by_version: dict[int, list[str]] = {}
    for row in sorted(rows, key=lambda r: r["modified"]):
        by_version.setdefault(row["id"], []).append(row["customer"])
    assert sorted(by_version) == list(range(1, 303))  # nothing lost
    assert by_version[5][-1] == by_version[150][-1] == "geändert" and by_version[301] == ["Neu ✓"]
    assert len(rows) == 304  # 300 + 2 inserts + 2 updated versions, each exactly once
    # A late row: stamped 30 minutes before the watermark (committed after the last run), inside the 1h lookback.
    source.execute(
        f"INSERT INTO dbo.{name} (id, customer, amount, placed, modified, note) "
        "VALUES (303, N'spät', 3.5, '2024-02-29', '2024-02-29 23:30:00.000', 'late');"
    )
    last = ok(hygge_start(root, password=source.password))
    rows = lake(root, name).to_pylist()
    assert len(rows) == 305 and [r["customer"] for r in rows if r["id"] == 303] == ["spät"]
    assert sorted({r["id"] for r in rows}) == list(range(1, 304))
    return Ran(root, last.stdout + last.stderr)


def discovery_and_a_query_entity(source: Source, folder: Path) -> Ran:
    """Ten tables found by include, two left out by exclude, one outside the pattern, and a query entity (pool_size 3)."""
    tables = [source.table(f"t{index:02d}") for index in range(10)]
    for index, name in enumerate(tables):
        source.create(name, pa.table({"id": pa.array([index], pa.int32())}), {"id": "int"})
    for index in range(2):
        source.create(source.table(f"tmp_{index}"), pa.table({"id": pa.array([index], pa.int32())}), {"id": "int"})
    source.create(source.table("people"), pa.table({"id": pa.array([1], pa.int32())}), {"id": "int"})
    name = source.table("orders")
    source.create(name, orders(50), ORDERS_DECLARED)
    prefix = source.table("")
    root = write_project(
        folder,
        source,
        f"""
    flows:
      erp:
        home: {{type: mssql, connection: ms}}
        store: {{type: parquet, path: "lake/{{entity}}"}}
        entities: {{include: ["dbo.{prefix}t*"], exclude: ["dbo.{prefix}tmp_*"]}}
      report:
        home: {{type: mssql, connection: ms, query: "SELECT placed, COUNT(*) AS orders, SUM(amount) AS total FROM dbo.{name} WHERE note IS NOT NULL GROUP BY placed"}}
        store: {{type: parquet, path: "lake/report"}}
    """,
        pool_size=3,
    )
    completed = ok(hygge_start(root, password=source.password))
    landed = sorted(p.name for p in (root / "lake").iterdir() if not p.name.startswith("."))
    assert landed == ["dbo." + t for t in tables] + ["report"]
    assert lake(root, f"dbo.{tables[7]}").to_pylist() == [{"id": 7}]
    report = sorted(lake(root, "report").to_pylist(), key=lambda r: r["placed"])
    served = [r for r in orders(50).to_pylist() if r["note"] is not None]
    assert sum(r["orders"] for r in report) == len(served)
    assert sum(r["total"] for r in report) == sum(r["amount"] for r in served)
    assert "11 of 11 entities succeeded" in completed.stdout
    return Ran(root, completed.stdout + completed.stderr)


def wrong_password(source: Source, folder: Path) -> Ran:
    """A wrong password fails with SQL Server's login error (18456), naming the connection, never showing a secret."""
    name = source.table("orders")
    source.create(name, orders(10), ORDERS_DECLARED)
    root = write_project(
        folder,
        source,
        f"""
    flows:
      erp:
        home: {{type: mssql, connection: ms}}
        store: {{type: parquet, path: "lake/{{entity}}"}}
        entities: [{name}]
    """,
    )
    wrong = "Wr0ng-Secret;value"
    completed = hygge_start(root, password=wrong)
    output = completed.stdout + completed.stderr
    assert completed.returncode != 0
    assert f"Login failed for user '{source.user}'" in output and "18456" in output, output
    assert "connection 'ms' (mssql " in output
    assert wrong not in output and source.password not in output
    assert not (root / "lake" / name).exists()
    return Ran(root, output)


def events(count: int) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(1, count + 1), pa.int64()),
            "at": pa.array([dt.datetime(2020, 1, 1) + dt.timedelta(hours=i) for i in range(count)], pa.timestamp("us")),
            "payload": [f"e{i}" if i % 9 else None for i in range(count)],
        }
    )


EVENTS_DECLARED = {"id": "bigint", "at": "datetime2(7)", "payload": "nvarchar(20)"}


def partitioned_read(source: Source, folder: Path) -> EntityResult:
    """``partitions: {column: at, count: 4}`` reads four disjoint key ranges over pooled connections, in process."""
    name = source.table("events")
    source.create(name, events(5000), EVENTS_DECLARED)
    root = write_project(
        folder,
        source,
        f"""
    flows:
      erp:
        home: {{type: mssql, connection: ms, partitions: {{column: at, count: 4}}}}
        store: {{type: parquet, path: "lake/{{entity}}"}}
        entities: [{name}]
    """,
        pool_size=3,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PASSWORD_ENV, source.password)
        result = hygge_core.run_entity(hygge_core.load_project(root).entity(f"erp/{name}"))
    assert (result.rows, result.source_rows) == (5000, 5000)
    assert lake(root, name).sort_by("id").to_pylist() == events(5000).to_pylist()
    return result


# max_text_size counts UTF-8 bytes: the 1 Mi-character value of æøå✓ is 2.25 MiB
LARGE_VALUES = "max_text_size: 4000000, max_binary_size: 200000, max_bytes_per_batch: 67108864"

TYPES_LAKE_SCHEMA = {
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


def assert_lands_exactly(table: pa.Table, *, rowversion_is_served: bool = True) -> None:
    """Every type of the map landed as its documented Arrow type with exactly the served values (tests/tds/type_cases.py)."""
    for name, arrow_type in TYPES_LAKE_SCHEMA.items():
        assert table.schema.field(name).type == arrow_type, name
    landed = sorted(table.to_pylist(), key=lambda row: row["id"])
    expected = expected_rows()
    assert len(landed) == len(expected)
    for want, got in zip(expected, landed, strict=True):
        for column, value in want.items():
            if column == "c_rowversion" and not rowversion_is_served:  # the server stamps every row itself
                assert isinstance(got[column], bytes) and len(got[column]) == 8, f"row {want['id']}: {got[column]!r}"
                continue
            assert got[column] == value, f"row {want['id']} column {column}: {str(got[column])[:80]!r} != {str(value)[:80]!r}"
            assert type(got[column]) is type(value), f"row {want['id']} column {column}"


def every_type(source: Source, folder: Path) -> Ran:
    """Every SQL Server type of hygge's map, NULLs and edge values, through ``hygge start`` (the Arrow route)."""
    name = source.table("types")
    table, declared = served_table()
    source.create(name, table, declared)
    root = write_project(
        folder,
        source,
        f"""
    flows:
      erp:
        home: {{type: mssql, connection: ms, {LARGE_VALUES}}}
        store: {{type: parquet, path: "lake/{{entity}}"}}
        entities: [{name}]
    """,
    )
    completed = ok(hygge_start(root, password=source.password))
    assert_lands_exactly(lake(root, name), rowversion_is_served=source.rowversion_is_served)
    return Ran(root, completed.stdout + completed.stderr)

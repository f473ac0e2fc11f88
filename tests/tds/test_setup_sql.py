"""The real-server suite's set-up SQL (tests/tds/setup_sql.py) is T-SQL that means the tables the TDS suite serves.

No SQL Server runs here, so its CREATE TABLE and INSERT statements run on the TDS test server's engine (T-SQL
parsed by sqlglot, executed by DuckDB), and each table must equal, value by value, its twin loaded from Parquet
the way the TDS suite loads it. Only the rowversion column differs: a real server stamps it, so it is never written.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from scenarios import EVENTS_DECLARED, ORDERS_DECLARED, events, orders
from setup_sql import create_table, drop_table
from tds_helpers import write_table
from type_cases import served_table

from tests.tds_server import Engine
from tests.tds_server.engine import Rows


def run(engine: Engine, sql: str) -> list[tuple]:
    session = engine.session(0)
    rows: list[tuple] = []
    try:
        for outcome in session.run(sql):
            if isinstance(outcome, Rows):
                rows = [row for batch in outcome.batches for row in batch]
    finally:
        session.close()
    return rows


def tables() -> list[tuple[str, pa.Table, dict[str, str]]]:
    types, declared = served_table()
    return [("orders", orders(1200), ORDERS_DECLARED), ("events", events(30), EVENTS_DECLARED), ("types", types, declared)]


@pytest.mark.parametrize("name, table, declared", tables(), ids=["orders", "events", "types"])
def test_setup_sql_creates_the_served_table(tmp_path: Path, name: str, table: pa.Table, declared: dict[str, str]) -> None:
    engine = Engine(tmp_path / "none")
    statements = create_table(name, table, declared)
    assert len(statements) == 1 + -(-table.num_rows // 1000)  # CREATE, then VALUES lists of at most 1,000 rows
    for statement in statements:
        run(engine, statement)
    write_table(tmp_path, f"dbo.{name}_parquet", table, declared)
    engine.load_parquet(tmp_path / f"dbo.{name}_parquet.parquet")
    created = run(engine, f"SELECT * FROM dbo.{name} ORDER BY id")
    loaded = run(engine, f"SELECT * FROM dbo.{name}_parquet ORDER BY id")
    assert len(created) == len(loaded) == table.num_rows
    generated = [i for i, column in enumerate(table.column_names) if declared.get(column) == "timestamp"]
    for made, served in zip(created, loaded, strict=True):
        for index, column in enumerate(table.column_names):
            if index in generated:
                assert made[index] is None  # not written: a real server stamps it
            else:
                assert made[index] == served[index], f"{name}.{column}: {str(made[index])[:60]!r} != {str(served[index])[:60]!r}"
    run(engine, drop_table(name))
    assert ("dbo", name) not in engine.tables
    run(engine, drop_table(name))  # IF EXISTS: dropping it again is no error

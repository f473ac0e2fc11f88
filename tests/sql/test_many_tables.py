"""Many discovered PostgreSQL tables through ``hygge start``: one catalog query per run, never more connections than the pool.

The server is the witness: it logs every statement of this test's login
(``log_statement = all`` on the role), and ``pg_stat_activity`` is sampled while the
run goes, so neither count depends on what hygge says about itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

HYGGE = str(Path(sys.executable).with_name("hygge"))
TABLES = 12
DISCOVERY_SQL = "c.relname AS table_name FROM pg_catalog.pg_class"

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("step", ["flow", "entity"])
def test_discovery_runs_once_and_the_pool_is_never_exceeded(pgdb, pg_project, tmp_path: Path, step: str) -> None:
    for i in range(TABLES):
        pgdb.sql(
            f"create table t{i:02d} (id int primary key, label text not null);"
            f"insert into t{i:02d} select g, 't{i:02d}-' || g from generate_series(1, {50 + i}) g;"
        )
    pgdb.server.psql(f"alter role {pgdb.user} set log_statement = 'all'")
    root = pg_project(
        f"""
        flows:
          db:
            home: {{type: postgres, connection: pg}}
            store: {{type: parquet, path: lake}}
            entities: {{include: ["public.*"]}}
            dagster: {{step: {step}}}
        """,
        pool_size=2,
    )
    (root / "hygge.yml").write_text((root / "hygge.yml").read_text().replace("name: sqltest", "name: sqltest\nconcurrency: 4"))
    log = pgdb.server.data_dir.parent / "server.log"
    log_start = log.stat().st_size

    most = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal most
        while not done.is_set():
            most = max(most, pgdb.backends())
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster")}
    (tmp_path / "dagster").mkdir()
    try:
        finished = subprocess.run([HYGGE, "start", "-p", str(root)], env=env, capture_output=True, text=True, timeout=600)
    finally:
        done.set()
        sampler.join()
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert f"OK: {TABLES} of {TABLES} entities succeeded" in finished.stdout

    with log.open("rb") as handle:
        handle.seek(log_start)
        statements = handle.read().decode("utf-8", "replace")
    assert statements.count(DISCOVERY_SQL) == 1, "the catalog should be queried once per run, by the parent"
    assert 1 <= most <= 2, f"{most} connections were open at once with pool_size 2"
    for i in range(TABLES):
        table = pq.read_table(sorted((root / "lake" / f"public.t{i:02d}").glob("*.parquet"))).sort_by("id")
        assert table.column("id").to_pylist() == list(range(1, 51 + i))
        assert table.column("label").to_pylist() == [f"t{i:02d}-{g}" for g in range(1, 51 + i)]

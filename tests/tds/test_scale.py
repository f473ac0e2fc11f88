"""The scale test on the wire: 50 discovered tables through one flow with ``pool_size: 5``, by ``hygge start``.

One run, made once for the module (50 tables of 29-78 rows, Encrypt=no: the
encryption modes are covered elsewhere), and the server as the witness: it counts
every login, the sessions open at once and the sessions still open at the end. The
run is the default one: a flow of 5+ entities shares one step (``dagster: {step:
auto}``), loaded on threads that keep a pooled connection across entities. The run's
peak memory is PSS summed over its whole process tree (bench/proctree.py); the TDS
server runs in the test process, outside that tree.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tds_helpers import PASSWORD, PASSWORD_ENV, USER, connection_yaml, write_table

from bench import proctree  # the repository root is on sys.path (conftest)
from tests.tds_server import Certificate, Engine, TdsServer

pytestmark = pytest.mark.slow

HYGGE = str(Path(sys.executable).with_name("hygge"))
TABLES = 50
POOL_SIZE = 5
CONCURRENCY = 8  # more loading threads than pooled connections: the pool, not the threads, bounds the sessions
MEMORY_LIMIT_MIB = 500
DECLARED = {"id": "int", "label": "nvarchar(40)", "amount": "decimal(12,2)", "at": "datetime2(3)"}
LAKE_SCHEMA = pa.schema(
    [("id", pa.int32()), ("label", pa.string()), ("amount", pa.decimal128(12, 2)), ("at", pa.timestamp("ms"))]
)


def served(index: int) -> pa.Table:
    """Table ``scale.t<index>``: its own row count and values, so a mix-up between tables shows."""
    ids = range(1, 30 + index)
    return pa.table(
        {
            "id": pa.array(ids, pa.int32()),
            "label": [None if i % 9 == 0 else f"t{index:02d} rad {i} – ø" for i in ids],
            "amount": pa.array([decimal.Decimal(index * 1000 + i).scaleb(-2) for i in ids], pa.decimal128(12, 2)),
            "at": pa.array([dt.datetime(2024, 1, 1 + index % 28, 0, 0, i % 60, i * 1000) for i in ids], pa.timestamp("ms")),
        },
        schema=LAKE_SCHEMA,
    )


@dataclass(frozen=True)
class ScaleRun:
    root: Path
    server: TdsServer
    run: proctree.TreeRun
    active_after: int


@pytest.fixture(scope="module")
def scale_run(tmp_path_factory: pytest.TempPathFactory, certificate: Certificate) -> Iterator[ScaleRun]:
    pytest.importorskip("mssql_python_odbc", reason="install hygge[mssql] (the test extra has it) for Microsoft's driver")
    data = tmp_path_factory.mktemp("scale-data")
    for index in range(TABLES):
        write_table(data, f"scale.t{index:02d}", served(index), DECLARED)
    write_table(data, "dbo.not_scale", served(0), DECLARED)  # outside the include pattern: must not land
    root = tmp_path_factory.mktemp("scale-project")
    with TdsServer(Engine(data), logins={USER: PASSWORD}, certificate=certificate) as server:
        (root / "hygge.yml").write_text(
            f"name: scale\nconcurrency: {CONCURRENCY}\nconnections:\n"
            + connection_yaml(server.port, "off", certificate, pool_size=POOL_SIZE)
            + textwrap.dedent("""
            flows:
              erp:
                home: {type: mssql, connection: ms}
                store: {type: parquet, path: "lake/{entity}"}
                entities: {include: ["scale.*"]}
            """),
            encoding="utf-8",
        )
        env = {**os.environ, "COLUMNS": "200", PASSWORD_ENV: PASSWORD}
        env.pop("DAGSTER_HOME", None)
        run = proctree.run([HYGGE, "start"], env=env, cwd=root, interval=0.1)
        yield ScaleRun(root=root, server=server, run=run, active_after=server.settled())


def test_every_table_lands_whole_and_exact(scale_run: ScaleRun) -> None:
    run = scale_run.run
    assert run.returncode == 0, f"hygge start failed:\n{run.stdout}\n{run.stderr}"
    assert f"OK: {TABLES} of {TABLES} entities succeeded" in run.stdout, run.stdout
    lake = scale_run.root / "lake"
    names = [f"scale.t{i:02d}" for i in range(TABLES)]
    assert sorted(p.name for p in lake.iterdir()) == [".hygge-staging", *names]
    # staging keeps only the entities' lock files: nothing staged is left behind
    assert sorted(p.name for p in (lake / ".hygge-staging").iterdir()) == [f"{name}.lock" for name in names]
    for index in range(TABLES):
        folder = lake / f"scale.t{index:02d}"
        data_files = sorted(p.name for p in folder.iterdir() if p.suffix == ".parquet")
        assert len(data_files) == 1, f"{folder.name}: {data_files}"
        assert sorted(p.name for p in folder.iterdir()) == ["_hygge", data_files[0]]
        landed = pq.read_table(folder / data_files[0])
        assert landed.schema.remove_metadata() == LAKE_SCHEMA, folder.name
        assert landed.sort_by("id").to_pylist() == served(index).to_pylist(), folder.name


def test_connections_are_bounded_by_the_pool_and_reused(scale_run: ScaleRun) -> None:
    stats = scale_run.server.stats
    assert stats.failed_logins == 0
    assert 1 <= stats.max_active <= POOL_SIZE, f"{stats.max_active} sessions at once with pool_size {POOL_SIZE}"
    # Reused across entities: a loading thread holds a pool slot until the queue is empty, and a login happens only when
    # a thread claims a slot and finds no idle connection (the first reuses discovery's). So at most one login per
    # thread (8), not one per entity (50); and every TCP connection the server accepted logged in.
    assert stats.sessions <= CONCURRENCY, f"{stats.sessions} logins for {TABLES} entities: connections were not reused"
    assert stats.connections == stats.sessions
    reads = [s for s in stats.statements if s.startswith("SELECT [id], [label], [amount], [at] FROM [scale].[t")]
    assert len(reads) == TABLES  # one read per table, over the reused sessions


def test_no_session_is_left_open(scale_run: ScaleRun) -> None:
    assert scale_run.active_after == 0, f"{scale_run.active_after} sessions still open after hygge start ended"


def test_peak_memory_of_the_run_is_bounded(scale_run: ScaleRun) -> None:
    run = scale_run.run
    assert run.samples > 0
    assert run.peak_pss_mib < MEMORY_LIMIT_MIB, f"peak PSS over the process tree {run.peak_pss_mib:.0f} MiB"

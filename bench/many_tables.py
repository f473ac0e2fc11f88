"""N small PostgreSQL tables -> Parquet, whole processes side by side (issue 10).

    python bench/many_tables.py --tables 10 100 300 --reps 3
    python bench/many_tables.py --tables 100 --reps 3 --only hygge_start --only dlt

Each table: 1,000 rows, 5 columns (int key, text, numeric(12,2), timestamp, bool) in schema ``bench``
of a throwaway PostgreSQL (tests/sql/pg_server.py, loopback TCP, scram passwords). Approaches, each
one whole process measured by bench/proctree.py (wall seconds, peak PSS summed over the process tree):

* ``hygge_start``: ``hygge start -p <project>``, one flow discovering ``bench.*`` over a
  ``type: postgres`` connection (project defaults: multiprocess executor, concurrency 4, pool_size 4,
  ``step: auto``, so from 5 tables on one step carries the flow);
* ``hygge_start_entity``: the same with ``dagster: {step: entity}``: a step (process) per table;
* ``dagster_cli``: ``dagster asset materialize -m hygge_dagster.definitions --select '*'`` on the same
  project (``HYGGE_PROJECT``, ``DAGSTER_HOME`` = the project's ``.dagster``);
* ``dlt``: dlt ``sql_database`` over the same schema, connectorx backend, Parquet on a local
  ``filesystem`` destination (the peer: ratios are against it);
* ``floor``: a no-op Dagster ``multi_asset`` with the same N asset keys, each emitting a
  materialisation with hygge's metadata entries and the three check results hygge emits for a full
  drop (row_count, schema_drift, not_empty), through ``dagster asset materialize``: what Dagster's
  bookkeeping alone costs on Dagster's default SQLite instance under ``DAGSTER_HOME``;
* ``floor_hygge``: the same no-op asset on the instance settings hygge writes into a new project's
  ``.dagster/dagster.yaml`` (hygge's event log storage, ``hygge_dagster/event_log_storage.py``), executed
  in the run's process as hygge's one-step runs are (``hygge_dagster/executor.py``): what Dagster's
  imports and bookkeeping alone cost ``hygge start`` and ``dagster asset materialize``.

The hygge approaches run on a ``.dagster`` with the settings hygge writes for a new project.

Every run starts from nothing: outputs, the Dagster home and dlt's pipeline folder are removed first,
and the outputs are verified after (every table's 1,000 rows in Parquet). The server and the scratch
folder are removed at the end, also on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sqlite3
import sys
import tempfile
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import sidebyside

from hygge_cli.instance import SETTINGS as HYGGE_DAGSTER_YAML

REPO = Path(__file__).resolve().parent.parent
ROWS = 1_000
APPROACHES = ("hygge_start", "hygge_start_entity", "dagster_cli", "dlt", "floor", "floor_hygge")
DAGSTER_DEFAULT_YAML = "telemetry:\n  enabled: false\n"

TABLE_SQL = """
create table bench.t_{i:04d} (id integer primary key, label text not null, amount numeric(12,2), created_at timestamp, flag boolean);
insert into bench.t_{i:04d}
select g, md5(g::text || '{i}'), (g * 1.25 + {i})::numeric(12,2), timestamp '2024-01-01' + g * interval '1 minute', g % 2 = 0
from generate_series(1, {rows}) g;
"""

DLT_CHILD = """
import os
import dlt
from dlt.sources.sql_database import sql_database

source = sql_database(credentials=os.environ["BENCH_PG_URL"], schema="bench", backend="connectorx")
pipeline = dlt.pipeline(
    pipeline_name="many_tables",
    destination=dlt.destinations.filesystem(bucket_url=os.environ["BENCH_DLT_OUT"]),
    dataset_name="bench",
    pipelines_dir=os.environ["BENCH_DLT_PIPELINES"],
)
info = pipeline.run(source, loader_file_format="parquet")
info.raise_on_failed_jobs()
"""

# The same keys, metadata entries and check results as hygge's assets, with no work behind them.
FLOOR_DEFS = """
import os
import dagster as dg

TABLES = int(os.environ["BENCH_FLOOR_TABLES"])
CHECKS = ("row_count", "schema_drift", "not_empty")
SCHEMA = dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in
                                 (("id", "int32"), ("label", "string"), ("amount", "decimal128(12, 2)"),
                                  ("created_at", "timestamp[us]"), ("flag", "bool"))])
specs = [dg.AssetSpec(["many", f"bench_t_{i:04d}"], group_name="many", kinds={"postgres", "parquet"}) for i in range(TABLES)]
check_specs = [dg.AssetCheckSpec(name, asset=spec.key) for spec in specs for name in CHECKS]


@dg.multi_asset(specs=specs, check_specs=check_specs, can_subset=True)
def floor(context: dg.AssetExecutionContext):
    for key in sorted(context.selected_asset_keys):
        yield dg.MaterializeResult(asset_key=key, metadata={
            "dagster/row_count": 1000, "hygge/rows_per_second": 50000.0, "hygge/duration_s": 0.02, "hygge/bytes": 30000,
            "hygge/files": 1, "hygge/run_type": "full_drop", "hygge/destination": dg.MetadataValue.path("lake/" + key.path[-1]),
            "hygge/source": "bench." + key.path[-1], "hygge/published": True, "hygge/watermark_before": "none",
            "hygge/watermark_after": "none", "hygge/attempt": 1, "hygge/source_rows": 1000, "dagster/column_schema": SCHEMA,
        })
        for name in CHECKS:
            yield dg.AssetCheckResult(asset_key=key, check_name=name, passed=True, metadata={"rows": 1000})


defs = dg.Definitions(assets=[floor], executor=dg.in_process_executor if os.environ.get("BENCH_FLOOR_IN_PROCESS") else None)
"""


class ManyTables:
    def __init__(self, server, work: Path) -> None:  # type: ignore[no-untyped-def]
        self.server = server
        self.work = work
        self.bin = Path(sys.executable).parent
        self.base_env = {**os.environ, "BENCH_PW": server.password, "RUNTIME__DLTHUB_TELEMETRY": "false", "PYTHONUNBUFFERED": "1"}
        self.base_env.pop("DAGSTER_HOME", None)
        (work / "dlt_child.py").write_text(DLT_CHILD)
        (work / "floor_defs.py").write_text(FLOOR_DEFS)

    def create_tables(self, count: int) -> None:
        sql = "drop schema if exists bench cascade; create schema bench;\n"
        sql += "".join(TABLE_SQL.format(i=i, rows=ROWS) for i in range(count))
        self.server.psql(sql + "analyze;")

    def project(self, count: int, step: str = "auto") -> Path:
        folder = self.work / f"project_{count}_{step}"
        folder.mkdir(exist_ok=True)
        (folder / "hygge.yml").write_text(
            textwrap.dedent(f"""\
            name: many_tables
            connections:
              pg:
                type: postgres
                server: 127.0.0.1
                port: {self.server.port}
                database: postgres
                user: {self.server.superuser}
                password: "${{BENCH_PW}}"
            flows:
              many:
                home: {{type: postgres, connection: pg}}
                store: {{type: parquet, path: "lake/{{entity}}"}}
                entities: {{include: ["bench.*"]}}
                dagster: {{step: {step}}}
            """)
        )
        return folder

    @staticmethod
    def fresh_dagster_home(folder: Path, settings: str = HYGGE_DAGSTER_YAML) -> None:
        shutil.rmtree(folder / ".dagster", ignore_errors=True)
        (folder / ".dagster").mkdir(parents=True)
        (folder / ".dagster" / "dagster.yaml").write_text(settings)

    @staticmethod
    def parquet_rows(root: Path, count: int, *, skip_prefix: str = "_") -> int:
        """Rows in the Parquet files of each table folder under ``root``; every table must have all its rows."""
        tables = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((skip_prefix, ".")))
        if len(tables) != count:
            raise RuntimeError(f"{root}: expected {count} table folders, found {len(tables)}: {[t.name for t in tables][:5]}...")
        total = 0
        for table in tables:
            rows = sum(
                pq.ParquetFile(f).metadata.num_rows
                for f in table.rglob("*.parquet")
                if not any(part.startswith(("_", ".")) for part in f.relative_to(table).parts)
            )
            if rows != ROWS:
                raise RuntimeError(f"{table}: expected {ROWS} rows in Parquet, found {rows}")
            total += rows
        return total

    @staticmethod
    def floor_events(home: Path, count: int) -> int:
        """The floor's run must have recorded every materialisation and check result (read from its SQLite event log)."""
        shards = [p for p in (home / "history" / "runs").glob("*.db") if p.stem != "index"]
        if len(shards) != 1:
            raise RuntimeError(
                f"{home}: expected one run's event log, found {sorted(str(p.relative_to(home)) for p in home.rglob('*'))}"
            )
        with contextlib.closing(sqlite3.connect(shards[0])) as db:
            kinds = dict(db.execute("select dagster_event_type, count(*) from event_logs group by dagster_event_type").fetchall())
        if kinds.get("ASSET_MATERIALIZATION") != count or kinds.get("ASSET_CHECK_EVALUATION") != 3 * count:
            raise RuntimeError(
                f"{home}: the floor recorded {kinds}, expected {count} materialisations and {3 * count} check evaluations"
            )
        return 0

    def approaches(self, count: int, only: list[str]) -> list[sidebyside.Approach]:
        project = self.project(count)
        lake = project / "lake"

        def reset_project() -> None:
            shutil.rmtree(lake, ignore_errors=True)
            self.fresh_dagster_home(project)

        def verify_project() -> int:
            return self.parquet_rows(lake, count)

        per_entity = self.project(count, "entity")

        def reset_per_entity() -> None:
            shutil.rmtree(per_entity / "lake", ignore_errors=True)
            self.fresh_dagster_home(per_entity)

        def verify_per_entity() -> int:
            return self.parquet_rows(per_entity / "lake", count)

        dlt_out, dlt_pipelines = self.work / f"dlt_out_{count}", self.work / f"dlt_pipelines_{count}"

        def reset_dlt() -> None:
            shutil.rmtree(dlt_out, ignore_errors=True)
            shutil.rmtree(dlt_pipelines, ignore_errors=True)

        def verify_dlt() -> int:
            return self.parquet_rows(dlt_out / "bench", count)

        floor = self.work / f"floor_{count}"

        def reset_floor() -> None:
            self.fresh_dagster_home(floor, DAGSTER_DEFAULT_YAML)

        def verify_floor() -> int:
            return self.floor_events(floor / ".dagster", count)

        floor_hygge = self.work / f"floor_hygge_{count}"

        def reset_floor_hygge() -> None:
            self.fresh_dagster_home(floor_hygge)

        def verify_floor_hygge() -> int:
            return self.floor_events(floor_hygge / ".dagster", count)

        url = f"postgresql+psycopg2://{self.server.superuser}:{self.server.password}@127.0.0.1:{self.server.port}/postgres"
        every = [
            sidebyside.Approach(
                "hygge_start",
                "hygge start",
                [str(self.bin / "hygge"), "start", "-p", str(project)],
                {**self.base_env},
                reset_project,
                verify_project,
                cwd=project,
            ),
            sidebyside.Approach(
                "hygge_start_entity",
                "hygge start, step: entity",
                [str(self.bin / "hygge"), "start", "-p", str(per_entity)],
                {**self.base_env},
                reset_per_entity,
                verify_per_entity,
                cwd=per_entity,
            ),
            sidebyside.Approach(
                "dagster_cli",
                "dagster asset materialize",
                [str(self.bin / "dagster"), "asset", "materialize", "-m", "hygge_dagster.definitions", "--select", "*"],
                {**self.base_env, "HYGGE_PROJECT": str(project / "hygge.yml"), "DAGSTER_HOME": str(project / ".dagster")},
                reset_project,
                verify_project,
                cwd=project,
            ),
            sidebyside.Approach(
                "dlt",
                "dlt sql_database + connectorx",
                [sys.executable, str(self.work / "dlt_child.py")],
                {
                    **self.base_env,
                    "BENCH_PG_URL": url,
                    "BENCH_DLT_OUT": dlt_out.as_uri(),
                    "BENCH_DLT_PIPELINES": str(dlt_pipelines),
                },
                reset_dlt,
                verify_dlt,
                cwd=self.work,
            ),
            sidebyside.Approach(
                "floor",
                "no-op multi_asset floor",
                [str(self.bin / "dagster"), "asset", "materialize", "-f", str(self.work / "floor_defs.py"), "--select", "*"],
                {**self.base_env, "BENCH_FLOOR_TABLES": str(count), "DAGSTER_HOME": str(floor / ".dagster")},
                reset_floor,
                verify_floor,
                cwd=self.work,
            ),
            sidebyside.Approach(
                "floor_hygge",
                "no-op floor, hygge's instance settings, in process",
                [str(self.bin / "dagster"), "asset", "materialize", "-f", str(self.work / "floor_defs.py"), "--select", "*"],
                {
                    **self.base_env,
                    "BENCH_FLOOR_TABLES": str(count),
                    "BENCH_FLOOR_IN_PROCESS": "1",
                    "DAGSTER_HOME": str(floor_hygge / ".dagster"),
                },
                reset_floor_hygge,
                verify_floor_hygge,
                cwd=self.work,
            ),
        ]
        return [a for a in every if a.name in only]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, nargs="+", default=[10, 100, 300])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", action="append", choices=APPROACHES, help="repeatable; default: all")
    args = parser.parse_args()
    only = args.only or list(APPROACHES)
    peer = "dlt" if "dlt" in only else only[0]
    sys.path.insert(0, str(REPO / "tests" / "sql"))
    import pg_server

    server = pg_server.start(max_connections=200)
    work = Path(tempfile.mkdtemp(prefix="hygge-bench-many-"))
    try:
        bench = ManyTables(server, work)
        for count in args.tables:
            bench.create_tables(count)
            session = sidebyside.measure(
                f"{count} PostgreSQL tables x {ROWS:,} rows -> Parquet", bench.approaches(count, only), args.reps
            )
            print(sidebyside.report(session, peers=[peer], per=("table", count)), flush=True)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

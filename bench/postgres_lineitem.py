"""PostgreSQL TPC-H lineitem -> Parquet, whole processes side by side (issue 11).

    python bench/postgres_lineitem.py --scale 1 --reps 3
    python bench/postgres_lineitem.py --scale 0.1 --reps 1 --only hygge_start --only connectorx

DuckDB's dbgen writes lineitem as Parquet; DuckDB turns it into CSV and ``psql \\copy`` loads it into a
throwaway PostgreSQL (tests/sql/pg_server.py: loopback TCP, scram passwords) with the TPC-H column types
(bigint keys, integer line number, numeric(15,2), char(1) flags, dates, varchar) and the TPC-H primary key
(l_orderkey, l_linenumber), built after the load. The scratch data and the
server are removed at the end, also on failure. Approaches, each one whole process measured by
bench/proctree.py:

* ``hygge_start``: ``hygge start -p <project>``, one entity over a ``type: postgres`` connection with its
  default reader (native: ADBC's PostgreSQL driver, binary COPY; the table is split automatically on its primary
  key into ranges read at once in one snapshot) into a Parquet store;
* ``hygge_odbc`` (only with ``--only hygge_odbc``): the same with ``reader: odbc`` (psqlODBC through arrow-odbc,
  one stream), the reader before issue 11;
* ``dlt``: dlt ``sql_table(backend="connectorx")`` into Parquet on a local ``filesystem`` destination
  (the peer of issue 11's target: hygge >= 1.2x its speed);
* ``connectorx``: connectorx ``read_sql(return_type="arrow_stream", batch_size=100_000)`` streamed into one
  pyarrow ``ParquetWriter`` (zstd), one row group per batch (issue 11: hygge >= 1.0x its speed, no more memory).

Outputs are verified after every run (rows in the written Parquet equal the table's).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import sidebyside
import tpch

from hygge_cli.instance import SETTINGS as DAGSTER_YAML  # what a new project's .dagster gets

REPO = Path(__file__).resolve().parent.parent
APPROACHES = ("hygge_start", "hygge_odbc", "dlt", "connectorx")
DEFAULT_APPROACHES = ["hygge_start", "dlt", "connectorx"]

LINEITEM_DDL = """
drop table if exists lineitem;
create table lineitem (
    l_orderkey bigint not null, l_partkey bigint not null, l_suppkey bigint not null, l_linenumber integer not null,
    l_quantity numeric(15,2) not null, l_extendedprice numeric(15,2) not null, l_discount numeric(15,2) not null,
    l_tax numeric(15,2) not null, l_returnflag char(1) not null, l_linestatus char(1) not null, l_shipdate date not null,
    l_commitdate date not null, l_receiptdate date not null, l_shipinstruct varchar(25) not null,
    l_shipmode varchar(10) not null, l_comment varchar(44) not null
);
"""

TO_CSV = """
import sys
import duckdb
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute(f"COPY (SELECT * FROM read_parquet('{sys.argv[1]}')) TO '{sys.argv[2]}' (FORMAT csv, HEADER false)")
"""

DLT = """
import os
import dlt
from dlt.sources.sql_database import sql_table

table = sql_table(credentials=os.environ["BENCH_PG_URL"], table="lineitem", backend="connectorx")
pipeline = dlt.pipeline(
    pipeline_name="lineitem",
    destination=dlt.destinations.filesystem(bucket_url=os.environ["BENCH_DLT_OUT"]),
    dataset_name="bench",
    pipelines_dir=os.environ["BENCH_DLT_PIPELINES"],
)
pipeline.run(table, loader_file_format="parquet").raise_on_failed_jobs()
"""

CONNECTORX = """
import os, sys
import connectorx as cx
import pyarrow.parquet as pq

reader = cx.read_sql(os.environ["BENCH_CX_URL"], "select * from lineitem", return_type="arrow_stream", batch_size=100_000)
os.makedirs(sys.argv[1])
with pq.ParquetWriter(os.path.join(sys.argv[1], "part-0.parquet"), reader.schema, compression="zstd") as writer:
    for batch in reader:
        writer.write_batch(batch)
"""


def parquet_rows(folder: Path) -> int:
    """Rows in the Parquet files under ``folder``, skipping hygge's ``_hygge``/``.hygge-staging`` and dlt's ``_dlt*``."""
    return sum(
        pq.ParquetFile(f).metadata.num_rows
        for f in folder.rglob("*.parquet")
        if not any(part.startswith(("_", ".")) for part in f.relative_to(folder).parts)
    )


def load_lineitem(server, work: Path, scale: float) -> int:  # type: ignore[no-untyped-def]
    """Generate lineitem with dbgen and COPY it into the server; the generated files are deleted once loaded."""
    source = work / "tpch"
    rows = tpch.generate(scale, source, ["lineitem"])["lineitem"]
    csv = work / "lineitem.csv"
    done = subprocess.run(
        [sys.executable, "-c", TO_CSV, str(source / "lineitem" / "part-0.parquet"), str(csv)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"DuckDB could not write lineitem as CSV:\n{done.stderr[-3000:]}")
    shutil.rmtree(source)
    server.psql(
        LINEITEM_DDL
        + f"\\copy lineitem from '{csv}' with (format csv)\n"
        + "alter table lineitem add primary key (l_orderkey, l_linenumber);\nvacuum analyze lineitem;\n"
    )
    csv.unlink()
    counted = int(server.psql("select count(*) from lineitem").strip())
    if counted != rows:
        raise RuntimeError(f"lineitem holds {counted:,} rows after COPY, dbgen wrote {rows:,}")
    return rows


def approaches(server, work: Path, rows: int, only: list[str]) -> list[sidebyside.Approach]:  # type: ignore[no-untyped-def]
    bin_dir = Path(sys.executable).parent
    project = work / "project"
    project.mkdir()
    odbc_project = work / "project_odbc"
    for folder, reader in ((project, "native"), (odbc_project, "odbc")):
        folder.mkdir(exist_ok=True)
        (folder / "hygge.yml").write_text(
            textwrap.dedent(f"""\
            name: pg_lineitem
            connections:
              pg:
                type: postgres
                server: 127.0.0.1
                port: {server.port}
                database: postgres
                user: {server.superuser}
                password: "${{BENCH_PW}}"
                reader: {reader}
            flows:
              pg:
                home: {{type: postgres, connection: pg}}
                store: {{type: parquet, path: "lake/{{entity}}"}}
                entities: [lineitem]
            """)
        )
    login = f"{server.superuser}:{server.password}@127.0.0.1:{server.port}/postgres"
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "HYGGE_PROJECT")}
    env.update(
        {
            "BENCH_PW": server.password,
            "RUNTIME__DLTHUB_TELEMETRY": "false",
            "BENCH_PG_URL": f"postgresql+psycopg2://{login}",
            "BENCH_CX_URL": f"postgresql://{login}",
        }
    )
    lake, dlt_out, dlt_pipelines, cx_out = project / "lake", work / "dlt_out", work / "dlt_pipelines", work / "cx_out"

    def resetter(folder: Path):  # noqa: ANN202
        def reset_project() -> None:
            shutil.rmtree(folder / "lake", ignore_errors=True)
            shutil.rmtree(folder / ".dagster", ignore_errors=True)
            (folder / ".dagster").mkdir()
            (folder / ".dagster" / "dagster.yaml").write_text(DAGSTER_YAML)

        return reset_project

    def reset_dlt() -> None:
        shutil.rmtree(dlt_out, ignore_errors=True)
        shutil.rmtree(dlt_pipelines, ignore_errors=True)

    def reset_cx() -> None:
        shutil.rmtree(cx_out, ignore_errors=True)

    def verifier(root: Path):  # noqa: ANN202
        def verify() -> int:
            found = parquet_rows(root)
            if found != rows:
                raise RuntimeError(f"{root}: {found:,} rows written, lineitem has {rows:,}")
            return found

        return verify

    every = [
        sidebyside.Approach(
            "hygge_start",
            "hygge start",
            [str(bin_dir / "hygge"), "start", "-p", str(project)],
            env,
            resetter(project),
            verifier(lake / "lineitem"),
            cwd=project,
        ),
        sidebyside.Approach(
            "hygge_odbc",
            "hygge start, reader: odbc",
            [str(bin_dir / "hygge"), "start", "-p", str(odbc_project)],
            env,
            resetter(odbc_project),
            verifier(odbc_project / "lake" / "lineitem"),
            cwd=odbc_project,
        ),
        sidebyside.Approach(
            "dlt",
            "dlt sql_table + connectorx",
            [sys.executable, "-c", DLT],
            {**env, "BENCH_DLT_OUT": dlt_out.as_uri(), "BENCH_DLT_PIPELINES": str(dlt_pipelines)},
            reset_dlt,
            verifier(dlt_out / "bench" / "lineitem"),
            cwd=work,
        ),
        sidebyside.Approach(
            "connectorx",
            "connectorx arrow_stream -> ParquetWriter",
            [sys.executable, "-c", CONNECTORX, str(cx_out)],
            env,
            reset_cx,
            verifier(cx_out),
            cwd=work,
        ),
    ]
    return [a for a in every if a.name in only]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="TPC-H scale factor (1 = 6,001,215 lineitem rows)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", action="append", choices=APPROACHES, help="repeatable; default: hygge_start, dlt, connectorx")
    parser.add_argument(
        "--scratch", type=Path, default=None, help="parent folder for the generated data (default: the system temp folder)"
    )
    args = parser.parse_args()
    only = args.only or DEFAULT_APPROACHES
    sys.path.insert(0, str(REPO / "tests" / "sql"))
    import pg_server

    server = pg_server.start()
    work = Path(tempfile.mkdtemp(prefix="hygge-bench-pg-lineitem-", dir=args.scratch))
    try:
        rows = load_lineitem(server, work, args.scale)
        print(f"loaded lineitem sf={args.scale:g}: {rows:,} rows", file=sys.stderr, flush=True)
        title = f"PostgreSQL TPC-H sf={args.scale:g} lineitem ({rows:,} rows, 16 columns) -> Parquet"
        session = sidebyside.measure(title, approaches(server, work, rows, only), args.reps)
        peers = [p for p in ("dlt", "connectorx") if p in only]
        print(sidebyside.report(session, peers=peers), flush=True)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

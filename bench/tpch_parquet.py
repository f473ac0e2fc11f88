"""TPC-H lineitem + orders, Parquet -> Parquet, whole processes side by side (issues 10 and 11).

    python bench/tpch_parquet.py --scale 1 --reps 3
    python bench/tpch_parquet.py --scale 0.1 --reps 1 --only hygge_start --only in_process

DuckDB's dbgen writes both tables as Parquet (zstd, DuckDB's default row groups of 122,880 rows) into a
scratch folder, removed at the end. Approaches, each one whole process measured by bench/proctree.py:

* ``hygge_start``: ``hygge start -p <project>``, one flow with the two entities (project defaults:
  multiprocess executor with forkserver, concurrency 4);
* ``hygge_start_flow``: the same with ``dagster: {step: flow}`` on the flow: one step carries both
  entities, so hygge runs that one-step run in process (no forkserver, no step process);
* ``in_process``: the same project through the engine in one process, no Dagster:
  ``python -c 'import hygge_core; hygge_core.run_project(hygge_core.load_project(...))'`` (the peer of
  issue 10's target: ``hygge start`` within 1.15x of its time and 1.2x of its memory);
* ``in_process_lanes``: the same, with ``parallel_files: auto`` on the store (one file encoded per core at
  once, issue 11 item 4);
* ``pyarrow``: ``ParquetFile(pre_buffer=False).read_row_group(i)`` into one ``ParquetWriter`` (zstd)
  per table, one table after the other (issue 11's memory bar);
* ``polars``: ``pl.scan_parquet(...).sink_parquet(...)`` (zstd) per table, one after the other (issue
  11's speed bar).

Outputs are verified after every run (row counts of the written Parquet equal the source's).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import sidebyside
import tpch

from hygge_cli.instance import SETTINGS as DAGSTER_YAML  # what a new project's .dagster gets

TABLES = ["lineitem", "orders"]
APPROACHES = ("hygge_start", "hygge_start_flow", "in_process", "in_process_lanes", "pyarrow", "polars")

IN_PROCESS = """
import sys
import hygge_core
result = hygge_core.run_project(hygge_core.load_project(sys.argv[1]))
failed = [(e.key, e.error) for e in result.entities if e.status != "success"]
if failed:
    sys.exit(f"failed: {failed}")
"""

PYARROW = """
import sys
from pathlib import Path
import pyarrow.parquet as pq
source, target = Path(sys.argv[1]), Path(sys.argv[2])
for table in sys.argv[3].split(","):
    (target / table).mkdir(parents=True)
    with pq.ParquetWriter(target / table / "part-0.parquet", pq.read_schema(next((source / table).glob("*.parquet"))), compression="zstd") as writer:
        for path in sorted((source / table).glob("*.parquet")):
            handle = pq.ParquetFile(path, pre_buffer=False)
            for index in range(handle.num_row_groups):
                batch = handle.read_row_group(index)
                writer.write_table(batch, row_group_size=max(batch.num_rows, 1))
"""

POLARS = """
import sys
from pathlib import Path
import polars as pl
source, target = Path(sys.argv[1]), Path(sys.argv[2])
for table in sys.argv[3].split(","):
    (target / table).mkdir(parents=True)
    pl.scan_parquet(source / table / "*.parquet").sink_parquet(target / table / "part-0.parquet", compression="zstd")
"""


def parquet_rows(folder: Path) -> int:
    """Rows in the Parquet files under ``folder``, skipping hygge's own ``_hygge``/``.hygge-staging`` entries."""
    return sum(
        pq.ParquetFile(f).metadata.num_rows
        for f in folder.rglob("*.parquet")
        if not any(part.startswith(("_", ".")) for part in f.relative_to(folder).parts)
    )


def approaches(work: Path, source: Path, expected: dict[str, int], only: list[str]) -> list[sidebyside.Approach]:
    bin_dir = Path(sys.executable).parent
    project = work / "project"
    project.mkdir()
    (project / "hygge.yml").write_text(
        textwrap.dedent(f"""\
        name: tpch
        flows:
          tpch:
            home: {{type: parquet, path: "{source}"}}
            store: {{type: parquet, path: lake}}
            entities: [{", ".join(TABLES)}]
        """)
    )
    flow_project = work / "project_flow"
    flow_project.mkdir()
    (flow_project / "hygge.yml").write_text(
        (project / "hygge.yml").read_text().replace("    entities:", "    dagster: {step: flow}\n    entities:")
    )
    lanes_project = work / "project_lanes"
    lanes_project.mkdir()
    (lanes_project / "hygge.yml").write_text(
        (project / "hygge.yml").read_text().replace("path: lake}", "path: lake, parallel_files: auto}")
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "HYGGE_PROJECT")}
    lake, out = project / "lake", work / "out"

    def resetter(folder: Path):  # noqa: ANN202
        def reset() -> None:
            """Nothing from an earlier run: no lake, a fresh Dagster home."""
            shutil.rmtree(folder / "lake", ignore_errors=True)
            shutil.rmtree(folder / ".dagster", ignore_errors=True)
            (folder / ".dagster").mkdir()
            (folder / ".dagster" / "dagster.yaml").write_text(DAGSTER_YAML)

        return reset

    reset_project, reset_flow_project, reset_lanes_project = resetter(project), resetter(flow_project), resetter(lanes_project)

    def reset_out() -> None:
        shutil.rmtree(out, ignore_errors=True)

    def verifier(root: Path):  # noqa: ANN202
        def verify() -> int:
            for table in TABLES:
                rows = parquet_rows(root / table)
                if rows != expected[table]:
                    raise RuntimeError(f"{root / table}: {rows:,} rows written, the source has {expected[table]:,}")
            return sum(expected.values())

        return verify

    names = ",".join(TABLES)
    every = [
        sidebyside.Approach(
            "hygge_start",
            "hygge start",
            [str(bin_dir / "hygge"), "start", "-p", str(project)],
            env,
            reset_project,
            verifier(lake),
            cwd=project,
        ),
        sidebyside.Approach(
            "hygge_start_flow",
            "hygge start, step: flow",
            [str(bin_dir / "hygge"), "start", "-p", str(flow_project)],
            env,
            reset_flow_project,
            verifier(flow_project / "lake"),
            cwd=flow_project,
        ),
        sidebyside.Approach(
            "in_process",
            "engine in process",
            [sys.executable, "-c", IN_PROCESS, str(project)],
            env,
            reset_project,
            verifier(lake),
            cwd=project,
        ),
        sidebyside.Approach(
            "in_process_lanes",
            "engine in process, parallel_files: auto",
            [sys.executable, "-c", IN_PROCESS, str(lanes_project)],
            env,
            reset_lanes_project,
            verifier(lanes_project / "lake"),
            cwd=lanes_project,
        ),
        sidebyside.Approach(
            "pyarrow",
            "pyarrow row-group copy",
            [sys.executable, "-c", PYARROW, str(source), str(out), names],
            env,
            reset_out,
            verifier(out),
            cwd=work,
        ),
        sidebyside.Approach(
            "polars",
            "polars sink_parquet",
            [sys.executable, "-c", POLARS, str(source), str(out), names],
            env,
            reset_out,
            verifier(out),
            cwd=work,
        ),
    ]
    return [a for a in every if a.name in only]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="TPC-H scale factor (1 = 6M lineitem + 1.5M orders rows)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", action="append", choices=APPROACHES, help="repeatable; default: all four")
    parser.add_argument(
        "--scratch", type=Path, default=None, help="parent folder for the generated data (default: the system temp folder)"
    )
    args = parser.parse_args()
    only = args.only or list(APPROACHES)
    work = Path(tempfile.mkdtemp(prefix="hygge-bench-tpch-", dir=args.scratch))
    try:
        source = work / "tpch"
        expected = tpch.generate(args.scale, source, TABLES)
        print(f"generated TPC-H sf={args.scale:g}: {expected}", file=sys.stderr, flush=True)
        title = f"TPC-H sf={args.scale:g} lineitem + orders ({sum(expected.values()):,} rows) Parquet -> Parquet"
        session = sidebyside.measure(title, approaches(work, source, expected, only), args.reps)
        peers = [p for p in ("in_process", "pyarrow", "polars") if p in only]
        print(sidebyside.report(session, peers=peers), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

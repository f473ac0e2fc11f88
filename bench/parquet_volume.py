"""Volume: a 100M-row entity Parquet -> Parquet with peak memory within 1.2x of a 10M-row entity's (issue 11, item 5).

    python bench/parquet_volume.py --reps 3
    python bench/parquet_volume.py --reps 1 --parallel-files 1 2

The 10M-row *mixed* input of bench/parquet_bench.py (10 columns, zstd, 1M-row row groups, about 190 MB) is
generated (or reused) where that benchmark keeps it, ``$TMPDIR/hygge-bench/inputs``; the 10M-row entity is a folder holding it once, the 100M-row entity a folder
holding it ten times as hard links (about 1.9 GB of Parquet to read, no extra disk). Each approach is the engine
in one process (``python -c 'hygge_core.run_project(...)'``) on a one-entity project with the store's defaults
and the given ``parallel_files``, measured as a whole process by bench/proctree.py (peak PSS over the process
tree). 100M rows write about 1.7 GB of output: check ``df -h /tmp`` first. The projects and their lakes are
removed at the end.
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

COPIES = 10  # the 100M-row entity is the 10M-row input ten times
IN_PROCESS = """
import sys
import hygge_core
result = hygge_core.run_project(hygge_core.load_project(sys.argv[1]))
failed = [(e.key, e.error) for e in result.entities if e.status != "success"]
if failed:
    sys.exit(f"failed: {failed}")
"""


def generate() -> Path:
    """The 10M-row mixed input, made by bench/parquet_bench.py in a child (this process never holds the data)."""
    bench = Path(__file__).resolve().parent / "parquet_bench.py"
    scratch = Path(tempfile.gettempdir()) / "hygge-bench"
    command = [sys.executable, str(bench), "_child", "generate", str(scratch), "mixed:10M"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return Path(done.stdout.strip().splitlines()[-1])


def entity_rows(folder: Path) -> int:
    return sum(
        pq.ParquetFile(f).metadata.num_rows
        for f in folder.rglob("*.parquet")
        if not any(part.startswith(("_", ".")) for part in f.relative_to(folder).parts)
    )


def approach(work: Path, source: Path, rows: int, lanes: int) -> sidebyside.Approach:
    name = f"{rows // 1_000_000}M_lanes{lanes}"
    project = work / f"project_{name}"
    project.mkdir()
    (project / "hygge.yml").write_text(
        textwrap.dedent(f"""\
        name: volume
        flows:
          volume:
            home: {{type: parquet, path: "{source}"}}
            store: {{type: parquet, path: "lake/{{entity}}", parallel_files: {lanes}}}
            entities: [entity]
        """)
    )
    lake = project / "lake"

    def reset() -> None:
        shutil.rmtree(lake, ignore_errors=True)

    def verify() -> int:
        written = entity_rows(lake / "entity")
        if written != rows:
            raise RuntimeError(f"{lake / 'entity'}: {written:,} rows written, the source has {rows:,}")
        return written

    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "HYGGE_PROJECT")}
    label = f"{rows // 1_000_000}M rows, parallel_files: {lanes}"
    return sidebyside.Approach(name, label, [sys.executable, "-c", IN_PROCESS, str(project)], env, reset, verify, cwd=project)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--parallel-files", type=int, nargs="*", default=[1], help="the store's parallel_files values to run")
    parser.add_argument(
        "--scratch", type=Path, default=None, help="parent folder for the projects (on the input's filesystem: hard links)"
    )
    args = parser.parse_args()
    single = generate()
    work = Path(tempfile.mkdtemp(prefix="hygge-bench-volume-", dir=args.scratch or single.parent.parent))
    try:
        rows = pq.ParquetFile(single).metadata.num_rows
        small, large = work / "home10", work / "home100"  # the entity is <home>/entity
        (small / "entity").mkdir(parents=True)
        (large / "entity").mkdir(parents=True)
        os.link(single, small / "entity" / "part-00.parquet")
        for copy in range(COPIES):
            os.link(single, large / "entity" / f"part-{copy:02d}.parquet")
        approaches = [
            approach(work, folder, count, lanes)
            for lanes in args.parallel_files
            for folder, count in ((small, rows), (large, rows * COPIES))
        ]
        session = sidebyside.measure(f"mixed {rows:,} vs {rows * COPIES:,} rows Parquet -> Parquet", approaches, args.reps)
        print(sidebyside.report(session, peers=[approaches[0].name]), flush=True)
        for lanes in args.parallel_files:
            ratio = session.ratio(
                f"{rows * COPIES // 1_000_000}M_lanes{lanes}", f"{rows // 1_000_000}M_lanes{lanes}", sidebyside.pss
            )
            print(
                f"parallel_files: {lanes}: peak PSS of the 100M-row entity / the 10M-row entity's = {ratio:.2f}x (target <= 1.2x)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

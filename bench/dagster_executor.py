"""What Dagster's executors cost per entity, and throughput with 2/4/8/16 entities in parallel.

Every measurement is one ``materialize_entities`` call (one Dagster run on a fresh
sqlite instance) in a fresh process, timed around that call only, so it includes what
one ``hygge start`` pays: planning the run, starting the forkserver (or spawning),
step processes, event writes.

* ``overhead``: N tiny entities (1,000 rows) so the engine's own work is negligible;
  wall seconds per entity for in-process, multiprocess+forkserver (hygge preloaded) and
  multiprocess+spawn, each with its ratio to in-process measured in the same repetition.
* ``throughput``: n entities of ``--rows`` rows each, all allowed to run at once
  (``concurrency`` n), per step mode (a step per entity, one step for the flow) and executor
  (in process, forkserver).

Methods are interleaved within each repetition (the machine is shared); figures are medians.

    python bench/dagster_executor.py                       # both, 3 repetitions
    python bench/dagster_executor.py --only throughput --rows 500000 --reps 5
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

CHILD = r"""
import json, sys, time
from dagster import instance_for_test
from hygge_core import load_project
from hygge_dagster import materialize_entities

if __name__ == "__main__":
    project = load_project(sys.argv[1])
    with instance_for_test() as instance:
        start = time.perf_counter()
        report = materialize_entities(project, project.plans, instance=instance, max_concurrent=int(sys.argv[2]))
        wall = time.perf_counter() - start
    assert report.success, [o.error for o in report.entities]
    print(json.dumps({"wall": wall, "rows": report.rows}))
"""


def make_project(
    folder: Path, entities: int, rows: int, start_method: str, *, step: str = "entity", executor: str | None = None
) -> Path:
    src = folder / "src"
    table = pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "amount": pa.array([i * 0.25 for i in range(rows)], pa.float64()),
            "name": pa.array([f"name {i % 9973}" for i in range(rows)]),
        }
    )
    for i in range(entities):
        (src / f"e{i:02d}").mkdir(parents=True)
        pq.write_table(table, src / f"e{i:02d}" / "part.parquet", row_group_size=100_000)
    names = ", ".join(f"e{i:02d}" for i in range(entities))
    chosen_executor = f", executor: {executor}" if executor else ""
    (folder / "hygge.yml").write_text(
        "name: bench\n"
        f"concurrency: {max(1, min(entities, 16))}\n"
        f"dagster: {{start_method: {start_method}{chosen_executor}}}\n"
        "flows:\n"
        "  f:\n"
        f"    home: {{type: parquet, path: {src}}}\n"
        "    store: {type: parquet, path: lake}\n"
        f"    dagster: {{step: {step}}}\n"
        f"    entities: [{names}]\n"
    )
    return folder / "hygge.yml"


def run_once(project: Path, max_concurrent: int, child: Path) -> float:
    shutil.rmtree(project.parent / "lake", ignore_errors=True)
    done = subprocess.run([sys.executable, str(child), str(project), str(max_concurrent)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])["wall"]


def overhead(scratch: Path, child: Path, entities: int, reps: int) -> None:
    projects = {}
    for method in ("forkserver", "spawn"):
        folder = scratch / f"overhead-{method}"
        folder.mkdir()
        projects[method] = make_project(folder, entities, 1_000, method)
    samples: dict[str, list[float]] = {"in_process": [], "forkserver": [], "spawn": []}
    for _ in range(reps):
        samples["in_process"].append(run_once(projects["forkserver"], 1, child))
        samples["forkserver"].append(run_once(projects["forkserver"], 2, child))
        samples["spawn"].append(run_once(projects["spawn"], 2, child))
    base = statistics.median(samples["in_process"])
    print(f"\n{entities} entities of 1,000 rows; multiprocess runs use max_concurrent=2 on this 2-core VM\n")
    print(
        "| executor | run wall s (median) | wall s per entity | ratio to in-process | extra wall per entity: (wall - in-process) / N |"
    )
    print("|---|---|---|---|---|")
    for name, values in samples.items():
        wall = statistics.median(values)
        cost = "—" if name == "in_process" else f"{(wall - base) / entities:.2f} s"
        print(f"| {name} | {wall:.2f} | {wall / entities:.2f} | {wall / base:.1f}x | {cost} |")


THROUGHPUT_MODES = (
    # (label, step, explicit executor, max_concurrent: None = n)
    ("step: entity, in process", "entity", None, 1),
    ("step: entity, forkserver", "entity", None, None),
    ("step: flow, in process (hygge's choice for a one-step run)", "flow", None, None),
    ("step: flow, forkserver (executor: multiprocess)", "flow", "multiprocess", None),
)


def throughput(scratch: Path, child: Path, rows: int, reps: int) -> None:
    print(f"\nn entities of {rows:,} rows each, concurrency n; rows/s of the whole run (median of {reps})\n")
    print("| n | " + " | ".join(label for label, *_ in THROUGHPUT_MODES) + " |")
    print("|---|" + "---|" * len(THROUGHPUT_MODES))
    for n in (2, 4, 8, 16):
        projects = []
        for index, (_, step, executor, _) in enumerate(THROUGHPUT_MODES):
            folder = scratch / f"throughput-{n}-{index}"
            folder.mkdir()
            projects.append(make_project(folder, n, rows, "forkserver", step=step, executor=executor))
        walls: list[list[float]] = [[] for _ in THROUGHPUT_MODES]
        for rep in range(reps):
            order = list(range(len(THROUGHPUT_MODES)))
            order = order[rep % len(order) :] + order[: rep % len(order)]  # rotate: the machine is shared
            for index in order:
                max_concurrent = THROUGHPUT_MODES[index][3] or n
                walls[index].append(run_once(projects[index], max_concurrent, child))
        total = n * rows
        cells = [f"{total / statistics.median(w):,.0f} rows/s ({statistics.median(w):.2f} s)" for w in walls]
        print(f"| {n} | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["overhead", "throughput"])
    parser.add_argument("--entities", type=int, default=6, help="entities in the overhead runs")
    parser.add_argument("--rows", type=int, default=300_000, help="rows per entity in the throughput runs")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hygge-dagster-exec-") as scratch_name:
        scratch = Path(scratch_name)
        child = scratch / "child.py"
        child.write_text(CHILD)
        if args.only in (None, "overhead"):
            overhead(scratch, child, args.entities, args.reps)
        if args.only in (None, "throughput"):
            throughput(scratch, child, args.rows, args.reps)


if __name__ == "__main__":
    main()

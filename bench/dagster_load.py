"""How long a code location takes to load a flow of N entities (the issue's bar: 500 entities < 3 s CPU).

Each measurement runs in a fresh process (nothing warm) and reports CPU seconds for:

* ``import``: ``import dagster`` plus ``hygge_dagster`` (paid once per process);
* ``definitions``: ``build_definitions(project)``: YAML, planning, one asset + checks per
  entity, schedule and sensor;
* ``snapshot``: resolving the repository and serialising its snapshot, which is what a
  code server sends to the webserver (``dagster dev`` pays this too).

The project is generated in a scratch folder (listed Parquet entities; loading never
touches the data). Figures are medians of ``--reps`` fresh processes.

    python bench/dagster_load.py                 # 500 entities, 5 repetitions
    python bench/dagster_load.py --entities 100 500 1000 --reps 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, time
start = time.process_time()
import dagster
import hygge_dagster
imported = time.process_time()
defs = hygge_dagster.build_definitions(sys.argv[1])
built = time.process_time()
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._serdes import serialize_value
repo = defs.get_repository_def()
snap = serialize_value(RepositorySnap.from_def(repo))
done = time.process_time()
print(json.dumps({"import": imported - start, "definitions": built - imported, "snapshot": done - built,
                  "assets": len(list(defs.resolve_all_asset_specs())), "snapshot_mb": len(snap) / 1e6}))
"""


def write_project(folder: Path, entities: int) -> Path:
    names = ", ".join(f"table_{i:04d}" for i in range(entities))
    (folder / "hygge.yml").write_text(
        "name: bench\n"
        "flows:\n"
        "  big:\n"
        "    home: {type: parquet, path: src}\n"
        "    store: {type: parquet, path: lake}\n"
        f"    entities: [{names}]\n"
        "    watermark: {key: id}\n"
        "    schedule: '0 2 * * *'\n"
    )
    return folder / "hygge.yml"


def measure(project: Path) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", CHILD, str(project)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, nargs="+", default=[500])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    print("| entities | import CPU s | definitions CPU s | snapshot CPU s | definitions + snapshot | snapshot MB |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="hygge-dagster-load-") as scratch:
        for count in args.entities:
            folder = Path(scratch) / str(count)
            folder.mkdir()
            project = write_project(folder, count)
            runs = [measure(project) for _ in range(args.reps)]
            assert all(run["assets"] == count for run in runs)
            med = {
                key: statistics.median(run[key] for run in runs) for key in ("import", "definitions", "snapshot", "snapshot_mb")
            }
            print(
                f"| {count} | {med['import']:.2f} | {med['definitions']:.2f} | {med['snapshot']:.2f} | "
                f"{statistics.median(r['definitions'] + r['snapshot'] for r in runs):.2f} | {med['snapshot_mb']:.1f} |"
            )


if __name__ == "__main__":
    main()

"""Parquet → local Delta table: hygge's delta store against ``deltalake.write_deltalake``, and hygge's Parquet store.

Why this shape:

* Every load runs in a fresh process; the parent samples ``/proc/<pid>/smaps_rollup`` of
  that process and all its descendants every 20 ms and keeps the peak of the summed PSS
  (delta-rs and pyarrow allocate outside Python, so only the kernel's view counts).
* Time is the whole process, wall clock from ``Popen`` to exit: interpreter start,
  imports, planning, the load and the commit.
* Methods are interleaved within each repetition (the first one rotates) and figures
  are medians, because the machine is shared.

Methods:

* ``write_deltalake``: the peer, fed the same data as a ``RecordBatchReader`` over
  ``ParquetFile(pre_buffer=False).iter_batches(100_000)``, ``mode="overwrite"``.
* ``hygge delta``: a ``parquet`` home → ``delta`` store project, full drop, hygge's defaults.
* ``hygge parquet``: the same entity into hygge's Parquet store, for comparison.

The input is ``bench/parquet_bench.py``'s deterministic *mixed* table (10 columns,
2–10% nulls), generated once into the scratch folder and reused.

    python bench/delta_bench.py                  # 10M rows, 3 repetitions
    python bench/delta_bench.py --rows 1M --reps 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
METHODS = ["write_deltalake", "hygge delta", "hygge parquet"]
SAMPLE_SECONDS = 0.02


def child_main(argv: list[str]) -> None:
    """``_child METHOD SOURCE TARGET QUEUE``: one load; prints one JSON line with the rows written."""
    method, source, target, queue_size = argv[0], Path(argv[1]), Path(argv[2]), int(argv[3])
    if method == "write_deltalake":
        import pyarrow as pa
        import pyarrow.parquet as pq
        from deltalake import DeltaTable, write_deltalake

        handle = pq.ParquetFile(source, pre_buffer=False)
        reader = pa.RecordBatchReader.from_batches(handle.schema_arrow, handle.iter_batches(batch_size=100_000))
        write_deltalake(str(target / "entity"), reader, mode="overwrite")
        rows = DeltaTable(str(target / "entity")).count()
    else:
        from hygge_core import load_project, run_entity

        store = "delta" if method == "hygge delta" else "parquet"
        (target / "hygge.yml").write_text(
            textwrap.dedent(
                f"""\
                name: bench
                flows:
                  copy:
                    home: {{type: parquet, path: {json.dumps(str(source))}}}
                    store: {{type: {store}, path: {json.dumps(str(target / "entity"))}}}
                    queue_size: {queue_size}
                """
            ),
            encoding="utf-8",
        )
        rows = run_entity(load_project(target).entity("copy/copy")).rows
    print(json.dumps({"rows": rows}))


def tree_pss_kib(root: int) -> int:
    """PSS of ``root`` and every descendant, in KiB, from ``/proc`` (processes that vanish mid-read count 0)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
                for line in handle:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


def run_child(method: str, source: Path, work: Path, queue_size: int) -> dict[str, Any]:
    target = work / "out"
    target.mkdir(parents=True)
    command = [sys.executable, str(Path(__file__).resolve()), "_child", method, str(source), str(target), str(queue_size)]
    try:
        with tempfile.TemporaryFile(mode="w+") as out, tempfile.TemporaryFile(mode="w+") as errors:
            started = time.perf_counter()
            process = subprocess.Popen(command, stdout=out, stderr=errors, text=True)
            peak = 0
            while process.poll() is None:
                peak = max(peak, tree_pss_kib(process.pid))
                time.sleep(SAMPLE_SECONDS)
            seconds = time.perf_counter() - started
            if process.returncode != 0:
                errors.seek(0)
                raise RuntimeError(f"{method} failed ({process.returncode}):\n{errors.read()}")
            out.seek(0)
            record = json.loads(out.read().strip().splitlines()[-1])
        record.update(
            method=method,
            seconds=seconds,
            peak_pss_mib=peak / 1024,
            output_mib=sum(p.stat().st_size for p in target.rglob("*.parquet")) / 2**20,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return record


def generate(scratch: Path, rows: int) -> Path:
    """The input, made by parquet_bench.py in its own process (the parent stays small)."""
    case = f"mixed:{rows // 1_000_000}M" if rows >= 1_000_000 else f"mixed:{rows // 1_000}k"
    command = [sys.executable, str(HERE / "parquet_bench.py"), "_child", "generate", str(scratch), case]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return Path(done.stdout.strip().splitlines()[-1])


def report(records: list[dict[str, Any]], rows: int, load: str) -> str:
    by_method = {m: [r for r in records if r["method"] == m] for m in METHODS if any(r["method"] == m for r in records)}
    med = {
        m: (statistics.median(r["seconds"] for r in rs), statistics.median(r["peak_pss_mib"] for r in rs))
        for m, rs in by_method.items()
        if rs
    }
    peer_seconds, peer_pss = med["write_deltalake"]
    lines = [
        f"{rows:,} rows, {len(by_method['write_deltalake'])} runs each, load average {load}",
        "",
        "| method | seconds (whole process) | rows/s | speed ÷ write_deltalake | peak PSS MiB (tree) | PSS ÷ write_deltalake | output MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for method, (seconds, pss) in med.items():
        output = statistics.median(r["output_mib"] for r in by_method[method])
        lines.append(
            f"| {method} | {seconds:.1f} | {rows / seconds / 1e6:.2f}M | {peer_seconds / seconds:.2f}× | {pss:.0f} | {pss / peer_pss:.2f}× | {output:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()) / "hygge-bench")
    parser.add_argument("--rows", default="10M", help="10M, 1M or 100k")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--queue-size", type=int, default=4, help="the hygge flows' queue_size (hygge's default is 4)")
    parser.add_argument("--methods", nargs="*", default=METHODS, choices=METHODS)
    parser.add_argument("--json", type=Path, help="append every raw record to this JSON-lines file")
    args = parser.parse_args()
    rows = int(args.rows.rstrip("kM")) * {"k": 1_000, "M": 1_000_000}.get(args.rows[-1:], 1)
    source = generate(args.scratch, rows)
    records: list[dict[str, Any]] = []
    loads = []
    for rep in range(args.reps):
        order = args.methods[rep % len(args.methods) :] + args.methods[: rep % len(args.methods)]
        for method in order:
            record = run_child(method, source, args.scratch / "work" / f"{rep}-{method.replace(' ', '_')}", args.queue_size)
            assert record["rows"] == rows, record
            record["queue_size"] = args.queue_size
            loads.append(os.getloadavg()[0])
            records.append(record)
            print(json.dumps(record), flush=True)
            if args.json:
                with open(args.json, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(record) + "\n")
    print()
    print(report(records, rows, f"{statistics.median(loads):.1f}"))


if __name__ == "__main__":
    main()

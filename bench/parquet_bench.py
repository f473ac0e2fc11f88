"""Parquet → Parquet: hygge against two baselines, each copy in a fresh process.

Why this shape:

* Every copy runs in its own subprocess, so peak RSS (``ru_maxrss`` from ``os.wait4``)
  belongs to that copy alone and nothing is warm in memory from a previous one.
* The machine is shared, so methods are interleaved within each repetition (noise
  hits all of them alike) and figures are medians; ratios are taken within one run.
* Timing starts after imports: it covers planning, reading, writing and (for hygge)
  the atomic publish with its fsyncs.

Baselines:

* ``pyarrow``: ``ParquetFile(pre_buffer=False).read_row_group(i)`` into one
  ``ParquetWriter`` (zstd), the fastest bounded-memory method we measured before.
* ``polars``: ``scan_parquet(...).sink_parquet(...)`` (zstd), the streaming engine.

Inputs are generated deterministically (same bytes every time) into a scratch
folder outside the repository, with 1M-row row groups, and reused when present.

    python bench/parquet_bench.py                     # everything, 3 repetitions
    python bench/parquet_bench.py --cases mixed:10M mixed:1M --reps 5
    python bench/parquet_bench.py --quick             # small cases only, a smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROW_GROUP_ROWS = 1_000_000
MIB = 1024 * 1024

# (schema, rows): the wide schema stops at 100k rows (200 columns × 100k rows is already
# about 110 MB of Parquet); 1M mixed is there to show memory does not grow with rows.
ALL_CASES = [
    ("mixed", 100),
    ("mixed", 100_000),
    ("mixed", 1_000_000),
    ("mixed", 10_000_000),
    ("narrow", 100),
    ("narrow", 100_000),
    ("narrow", 10_000_000),
    ("wide", 100),
    ("wide", 100_000),
]
QUICK_CASES = [("mixed", 100), ("mixed", 100_000), ("narrow", 100_000), ("wide", 100)]


@dataclass(frozen=True)
class Method:
    """One way of copying a file: a baseline, or hygge with a batch size and queue size."""

    name: str
    kind: str  # "pyarrow" | "polars" | "hygge"
    batch_size: int | None = None
    queue_size: int | None = None
    parallel_files: int = 1  # the store's parallel_files (files encoded at once)


METHODS = [
    Method("pyarrow", "pyarrow"),
    Method("polars", "polars"),
    Method("hygge b=100k q=4", "hygge", 100_000, 4),  # the defaults
    Method("hygge b=250k q=4", "hygge", 250_000, 4),
    Method("hygge b=1M q=1", "hygge", 1_000_000, 1),
    Method("hygge b=1M q=4", "hygge", 1_000_000, 4),
    Method("hygge lanes=2", "hygge", 100_000, 4, 2),  # the defaults with parallel_files: 2
]
DEFAULT_HYGGE = METHODS[2]


# ---------------------------------------------------------------- input generation


def _label_pool(size: int, seed: int, min_len: int, max_len: int) -> list[str]:
    """Deterministic text of varied length, so string columns compress like real text, not like a constant."""
    words = ["north", "south", "order", "parcel", "blue", "green", "invoice", "return", "alpha", "kilo", "delta", "metro"]
    rng = random.Random(seed)
    pool = []
    for _ in range(size):
        target = rng.randint(min_len, max_len)
        text = ""
        while len(text) < target:
            text += rng.choice(words) + rng.choice(" -_/") + str(rng.randint(0, 999))
        pool.append(text[:target])
    return pool


def _chunk(schema: str, start: int, rows: int) -> Any:
    """Rows ``start .. start+rows`` of a schema as an Arrow table; pure arithmetic on the row id, so deterministic."""
    import polars as pl
    import pyarrow as pa

    prime = 2_147_483_629

    def mix(salt: int) -> pl.Expr:
        # Two rounds of multiply-mod-prime: cheap, reproducible, well spread; stays inside int64.
        first = ((pl.col("id") + salt * 7_919) * 1_103_515_245 + 12_345) % prime
        return (first * 2_654_435_761 + salt) % prime

    def nullable(expr: pl.Expr, salt: int, percent: int) -> pl.Expr:
        return pl.when(mix(salt) % 100 < percent).then(None).otherwise(expr)

    ids = pl.DataFrame({"id": pl.int_range(start, start + rows, dtype=pl.Int64, eager=True)})
    if schema == "mixed":
        labels = pl.Series(_label_pool(4_096, 1, 9, 37))
        categories = pl.Series(["retail", "wholesale", "online", "partner", "internal", "export"])
        frame = ids.with_columns(
            nullable((mix(1) % 1_000).cast(pl.Int32), 2, 5).alias("qty"),
            nullable((mix(3) % 1_000_000) / 1_000.0, 4, 3).alias("score"),
            nullable(((mix(5) % 1_000_000_000).cast(pl.Decimal(18, 4)) / 10_000).cast(pl.Decimal(18, 4)), 6, 8).alias("amount"),
            nullable(pl.lit(labels).gather(mix(7) % labels.len()), 8, 4).alias("label"),
            nullable((pl.lit(1_600_000_000_000_000) + pl.col("id") * 1_000_003).cast(pl.Datetime("us")), 9, 2).alias(
                "created_at"
            ),
            nullable((pl.lit(18_000) + mix(10) % 2_000).cast(pl.Int32).cast(pl.Date), 11, 6).alias("day"),
            nullable(mix(12) % 3 == 0, 13, 10).alias("flag"),
            pl.lit(categories).gather(mix(14) % categories.len()).alias("category"),
            nullable(((mix(15) % 10_000) / 100.0).cast(pl.Float32), 16, 5).alias("ratio"),
        )
    elif schema == "narrow":
        codes = pl.Series(_label_pool(65_536, 2, 8, 8))
        frame = ids.with_columns(
            ((mix(1) % 10_000_000) / 7.0).alias("value"),
            pl.lit(codes).gather(mix(2) % codes.len()).alias("code"),
        )
    elif schema == "wide":
        texts = pl.Series(_label_pool(8_192, 3, 12, 12))
        columns = []
        for i in range(66):
            columns.append((mix(100 + i) % 1_000_000_007).alias(f"i{i:03d}"))
        for i in range(67):
            columns.append(((mix(200 + i) % 1_000_000) / 64.0).alias(f"f{i:03d}"))
        for i in range(66):
            columns.append(pl.lit(texts).gather(mix(300 + i) % texts.len()).alias(f"s{i:03d}"))
        frame = ids.with_columns(columns)
    else:
        raise ValueError(f"unknown schema {schema!r}")
    table = frame.to_arrow()
    # polars exports large_string; real Parquet sources mostly hold plain strings.
    return table.cast(pa.schema([f.with_type(pa.string()) if pa.types.is_large_string(f.type) else f for f in table.schema]))


def input_file(scratch: Path, schema: str, rows: int) -> Path:
    """The generated input for a case, created once (deterministic bytes) and reused."""
    import pyarrow.parquet as pq

    path = scratch / "inputs" / f"{schema}_{rows}.parquet"
    # Inputs are written under another name and renamed when complete, so one that exists is whole.
    if path.exists() and pq.ParquetFile(path).metadata.num_rows == rows:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    writer = None
    for start in range(0, rows, ROW_GROUP_ROWS):
        table = _chunk(schema, start, min(ROW_GROUP_ROWS, rows - start))
        if writer is None:
            writer = pq.ParquetWriter(partial, table.schema, compression="zstd")
        writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
    assert writer is not None
    writer.close()
    partial.rename(path)
    return path


# ---------------------------------------------------------------- the copies (run in children)


def copy_pyarrow(source: Path, target: Path) -> int:
    import pyarrow.parquet as pq

    handle = pq.ParquetFile(source, pre_buffer=False)
    rows = 0
    with pq.ParquetWriter(target / "part-0.parquet", handle.schema_arrow, compression="zstd") as writer:
        for index in range(handle.num_row_groups):
            table = handle.read_row_group(index)
            writer.write_table(table, row_group_size=max(table.num_rows, 1))
            rows += table.num_rows
    return rows


def copy_polars(source: Path, target: Path) -> int:
    import polars as pl

    pl.scan_parquet(source).sink_parquet(target / "part-0.parquet", compression="zstd")
    return pl.scan_parquet(target / "part-0.parquet").select(pl.len()).collect().item()


def copy_hygge(source: Path, target: Path, batch_size: int, queue_size: int, parallel_files: int) -> int:
    """Through the library API, exactly as a user's project would run it (planning, flow, atomic publish)."""
    from hygge_core import load_project, run_entity

    project_dir = target.parent / (target.name + "-project")
    project_dir.mkdir()
    (project_dir / "hygge.yml").write_text(
        textwrap.dedent(
            f"""\
            name: bench
            flows:
              copy:
                home: {{type: parquet, path: {json.dumps(str(source))}, batch_size: {batch_size}}}
                store: {{type: parquet, path: {json.dumps(str(target / "entity"))}, parallel_files: {parallel_files}}}
                queue_size: {queue_size}
            """
        ),
        encoding="utf-8",
    )
    result = run_entity(load_project(project_dir).entity("copy/copy"))
    return result.rows


def child_main(argv: list[str]) -> None:
    """``_child KIND SOURCE TARGET [BATCH QUEUE LANES]``: do one copy, print one JSON line."""
    kind, source, target = argv[0], Path(argv[1]), Path(argv[2])
    if kind == "generate":  # ``_child generate SCRATCH SCHEMA:ROWS``: make an input, print its path
        print(input_file(source, *_parse_case(argv[2])))
        return
    # Imports happen before the clock starts: interpreter and library start-up are not the copy.
    if kind == "hygge":
        import hygge_core  # noqa: F401
    elif kind == "polars":
        import polars  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    started, cpu_started = time.perf_counter(), time.process_time()
    if kind == "pyarrow":
        rows = copy_pyarrow(source, target)
    elif kind == "polars":
        rows = copy_polars(source, target)
    else:
        rows = copy_hygge(source, target, int(argv[3]), int(argv[4]), int(argv[5]))
    seconds, copy_cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    print(json.dumps({"rows": rows, "seconds": seconds, "copy_cpu_seconds": copy_cpu_seconds}))


# ---------------------------------------------------------------- the parent


def _generate(scratch: Path, schema: str, rows: int) -> Path:
    """Make an input in a child process.

    Linux carries a process's peak RSS across ``fork`` + ``exec`` (``ru_maxrss`` of the
    child starts at the parent's), so the parent must stay small: it never imports
    pyarrow or polars itself.
    """
    command = [sys.executable, str(Path(__file__).resolve()), "_child", "generate", str(scratch), _case_name(schema, rows)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"generating {schema}:{rows} failed:\n{done.stderr}")
    return Path(done.stdout.strip().splitlines()[-1])


def run_child(method: Method, source: Path, work: Path) -> dict[str, Any]:
    """One copy in a fresh process; its peak RSS and CPU come from ``wait4`` on that process alone."""
    target = work / "out"
    target.mkdir(parents=True)
    command = [sys.executable, str(Path(__file__).resolve()), "_child", method.kind, str(source), str(target)]
    if method.kind == "hygge":
        command += [str(method.batch_size), str(method.queue_size), str(method.parallel_files)]
    try:
        with tempfile.TemporaryFile(mode="w+") as errors:  # a file, not a pipe: a chatty child cannot block
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
            stdout = process.stdout.read()  # type: ignore[union-attr]
            # wait4 rather than wait: it returns the rusage of this one child.
            _, status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(status)
            if process.returncode != 0:
                errors.seek(0)
                raise RuntimeError(f"{method.name} on {source.name} failed ({process.returncode}):\n{errors.read()}")
        record = json.loads(stdout.strip().splitlines()[-1])
        record["peak_rss_mib"] = usage.ru_maxrss / 1024  # Linux reports KiB
        record["cpu_seconds"] = usage.ru_utime + usage.ru_stime
        record["output_bytes"] = sum(p.stat().st_size for p in target.rglob("*.parquet"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return record


def _rate(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e3:
        return f"{value / 1e3:.0f}k"
    return f"{value:.0f}"


def _parse_case(text: str) -> tuple[str, int]:
    schema, _, size = text.partition(":")
    multiplier = {"k": 1_000, "M": 1_000_000}.get(size[-1:], 1)
    return schema, int(size.rstrip("kM")) * multiplier


def _case_name(schema: str, rows: int) -> str:
    if rows >= 1_000_000:
        return f"{schema}:{rows // 1_000_000}M"
    if rows >= 1_000:
        return f"{schema}:{rows // 1_000}k"
    return f"{schema}:{rows}"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--scratch", type=Path, default=Path(tempfile.gettempdir()) / "hygge-bench", help="inputs and outputs (not the repo)"
    )
    parser.add_argument("--reps", type=int, default=3, help="repetitions per case; medians are reported")
    parser.add_argument("--cases", nargs="*", help="e.g. mixed:10M narrow:100k wide:100 (default: all)")
    parser.add_argument("--methods", nargs="*", help="method names to run (default: all), e.g. pyarrow polars 'hygge b=1M q=4'")
    parser.add_argument(
        "--hygge", nargs="*", default=[], metavar="BATCH:QUEUE", help="extra hygge settings to run, e.g. 20k:4 1M:2"
    )
    parser.add_argument("--quick", action="store_true", help="small cases only")
    parser.add_argument("--json", type=Path, help="append every raw record to this JSON-lines file")
    parser.add_argument("--report", type=Path, help="print the tables from a --json file of an earlier run, run nothing")
    args = parser.parse_args()

    if args.report:
        report([json.loads(line) for line in args.report.read_text(encoding="utf-8").splitlines() if line.strip()])
        return
    cases = [_parse_case(c) for c in args.cases] if args.cases else (QUICK_CASES if args.quick else ALL_CASES)
    methods = [m for m in METHODS if not args.methods or m.name in args.methods]
    for setting in args.hygge:
        batch, _, queue = setting.partition(":")
        methods.append(Method(f"hygge b={batch} q={queue}", "hygge", _parse_case(f"x:{batch}")[1], int(queue)))
    args.scratch.mkdir(parents=True, exist_ok=True)
    print(f"# python {sys.version.split()[0]}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, scratch {args.scratch}")

    everything: list[dict[str, Any]] = []
    for schema, rows in cases:
        case = _case_name(schema, rows)
        source = _generate(args.scratch, schema, rows)
        records = []
        for rep in range(args.reps):
            order = methods if rep % 2 == 0 else list(reversed(methods))  # interleave; alternate who goes first
            for method in order:
                load = os.getloadavg()[0]
                record = run_child(method, source, args.scratch / "work" / f"{os.getpid()}-{rep}")
                if record["rows"] != rows:
                    raise RuntimeError(f"{method.name} copied {record['rows']} rows of {rows} from {source}")
                record = {
                    "case": case,
                    "method": method.name,
                    "rep": rep,
                    "load": load,
                    "input_bytes": source.stat().st_size,
                    **record,
                }
                records.append(record)
                if args.json:
                    with args.json.open("a", encoding="utf-8") as out:
                        out.write(json.dumps(record) + "\n")
        print_case(case, records)
        everything.extend(records)
    print_targets(summarize(everything))


def summarize(records: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, float]]:
    """Medians per (case, method) of rows/s, rows per CPU-second, peak RSS, CPU and output size."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["case"], record["method"]), []).append(record)
    return {
        key: {
            "runs": len(runs),
            "rows_per_second": statistics.median(r["rows"] / r["seconds"] for r in runs),
            # CPU of the copy alone (all threads), so start-up does not swamp small cases.
            "rows_per_cpu_second": statistics.median(
                r["rows"] / max(r.get("copy_cpu_seconds", r["cpu_seconds"]), 1e-9) for r in runs
            ),
            "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in runs),
            "cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
            "output_mib": statistics.median(r["output_bytes"] for r in runs) / MIB,
            "load": statistics.median(r.get("load", float("nan")) for r in runs),
        }
        for key, runs in groups.items()
    }


def print_case(case: str, records: list[dict[str, Any]]) -> None:
    """One table per case.

    ``CPU s`` is the whole process (interpreter start and imports included), from ``wait4``;
    ``rows/CPU-s`` counts only the copy's CPU (all threads), which machine load barely moves.
    """
    summary = summarize(records)
    methods = list(dict.fromkeys(r["method"] for r in records))
    first = summary[(case, methods[0])]
    input_mib = records[0].get("input_bytes", 0) / MIB
    print(f"\n## {case}  ({input_mib:.1f} MiB input, {int(first['runs'])} runs, median load {first['load']:.1f})")
    print(
        f"{'method':<18} {'rows/s':>8} {'÷pyarrow':>8} {'÷polars':>7} {'peak RSS MiB':>12} {'RSS÷pyarrow':>11} "
        f"{'CPU s':>6} {'rows/CPU-s':>10} {'÷pyarrow':>8} {'÷polars':>7} {'out MiB':>7}"
    )

    def ratio(method: str, baseline: str, metric: str) -> str:
        base = summary.get((case, baseline))
        return f"{summary[(case, method)][metric] / base[metric]:.2f}×" if base else "-"

    for method in methods:
        m = summary[(case, method)]
        print(
            f"{method:<18} {_rate(m['rows_per_second']):>8} {ratio(method, 'pyarrow', 'rows_per_second'):>8} "
            f"{ratio(method, 'polars', 'rows_per_second'):>7} {m['peak_rss_mib']:>12.0f} {ratio(method, 'pyarrow', 'peak_rss_mib'):>11} "
            f"{m['cpu_seconds']:>6.2f} {_rate(m['rows_per_cpu_second']):>10} {ratio(method, 'pyarrow', 'rows_per_cpu_second'):>8} "
            f"{ratio(method, 'polars', 'rows_per_cpu_second'):>7} {m['output_mib']:>7.1f}"
        )


def report(records: list[dict[str, Any]]) -> None:
    for case in dict.fromkeys(r["case"] for r in records):
        print_case(case, [r for r in records if r["case"] == case])
    print_targets(summarize(records))


def print_targets(summary: dict[tuple[str, str], dict[str, float]]) -> None:
    """The issue's acceptance figures, when the cases that define them were run."""
    hygge = DEFAULT_HYGGE.name
    ten, one = "mixed:10M", "mixed:1M"
    lines = []
    if (ten, hygge) in summary and (ten, "pyarrow") in summary and (ten, "polars") in summary:
        h, a, p = summary[(ten, hygge)], summary[(ten, "pyarrow")], summary[(ten, "polars")]
        speed_a = h["rows_per_second"] / a["rows_per_second"]
        speed_p = h["rows_per_second"] / p["rows_per_second"]
        rss = h["peak_rss_mib"] / a["peak_rss_mib"]
        lines.append(f"{ten}: hygge/pyarrow rows/s {speed_a:.2f}× (target ≥ 1.00) {'ok' if speed_a >= 1.0 else 'MISSED'}")
        lines.append(f"{ten}: hygge/polars rows/s {speed_p:.2f}× (target ≥ 0.80) {'ok' if speed_p >= 0.8 else 'MISSED'}")
        lines.append(f"{ten}: hygge peak RSS / pyarrow {rss:.2f}× (target ≤ 1.25) {'ok' if rss <= 1.25 else 'MISSED'}")
        cpu_a = h["rows_per_cpu_second"] / a["rows_per_cpu_second"]
        cpu_p = h["rows_per_cpu_second"] / p["rows_per_cpu_second"]
        lines.append(f"{ten}: rows per CPU-second, hygge/pyarrow {cpu_a:.2f}×, hygge/polars {cpu_p:.2f}× (load-insensitive)")
    if (ten, hygge) in summary and (one, hygge) in summary:
        growth = summary[(ten, hygge)]["peak_rss_mib"] / summary[(one, hygge)]["peak_rss_mib"]
        lines.append(
            f"memory bound: hygge peak RSS 10M / 1M mixed rows {growth:.2f}× (target ≤ 1.50) {'ok' if growth <= 1.5 else 'MISSED'}"
        )
    if lines:
        print("\n## targets (default hygge settings: batch_size 100k, queue_size 4)")
        print("\n".join(lines))


if __name__ == "__main__":
    main()

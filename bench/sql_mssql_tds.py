"""SQL Server -> Parquet through the TDS test server: hygge against raw arrow-odbc and pyodbc, same server, same driver.

    python bench/sql_mssql_tds.py --rows 200000 --reps 3

The server (tests/tds_server, Python encoding every value, DuckDB behind it) runs in
this process on a loopback port; every method runs in a fresh process (Microsoft's
ODBC Driver 18 from the mssql-python-odbc wheel, Encrypt=no), methods interleaved
and rotated between reps. Peak memory is PSS summed over the method's process tree,
sampled from /proc. The server, not the client, bounds the absolute figures: compare
the ratios, not the rows per second, with a real SQL Server.
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

USER, PASSWORD = "bench", "Bench-Pw-1"
DECLARED = {
    "id": "bigint",
    "qty": "int",
    "score": "float",
    "amount": "decimal(18,4)",
    "label": "nvarchar(40)",
    "created_at": "datetime2(3)",
    "day": "date",
    "flag": "bit",
}

CHILD = r"""
import json, os, sys, time
method, out = sys.argv[1], sys.argv[2]
cs = os.environ["BENCH_CS"]
started = time.perf_counter()
rows = 0
if method == "hygge":
    import hygge_core
    result = hygge_core.run_entity(hygge_core.load_project(os.environ["BENCH_PROJECT"]).entity("bench/mixed"))
    rows = result.rows
elif method == "arrow_odbc":
    import arrow_odbc, pyarrow.parquet as pq
    reader = arrow_odbc.read_arrow_batches_from_odbc("SELECT * FROM dbo.mixed", cs, batch_size=100_000, max_text_size=8192)
    writer = None
    for batch in reader:
        writer = writer or pq.ParquetWriter(out, batch.schema, compression="zstd")
        writer.write_batch(batch)
        rows += batch.num_rows
    writer.close()
elif method == "pyodbc":
    import pyodbc, pyarrow as pa, pyarrow.parquet as pq
    cur = pyodbc.connect(cs, timeout=10).cursor()
    cur.execute("SELECT * FROM dbo.mixed")
    names = [d[0] for d in cur.description]
    writer = None
    while True:
        chunk = cur.fetchmany(100_000)
        if not chunk:
            break
        table = pa.table({name: list(column) for name, column in zip(names, zip(*chunk))})
        writer = writer or pq.ParquetWriter(out, table.schema, compression="zstd")
        writer.write_table(table)
        rows += table.num_rows
    writer.close()
print(json.dumps({"method": method, "rows": rows, "seconds": time.perf_counter() - started}))
"""


def make_table(rows: int):  # type: ignore[no-untyped-def]
    import pyarrow as pa

    ids = range(1, rows + 1)
    return pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "qty": pa.array([None if i % 20 == 0 else i * 7919 % 100000 for i in ids], pa.int32()),
            "score": pa.array([None if i % 25 == 0 else i * 0.3183098861837907 for i in ids], pa.float64()),
            "amount": pa.array(
                [None if i % 33 == 0 else decimal.Decimal(i * 104729 % 100000000).scaleb(-4) for i in ids], pa.decimal128(18, 4)
            ),
            "label": pa.array([None if i % 50 == 0 else f"label-{i:x}-{'x' * (i % 29)}" for i in ids], pa.string()),
            "created_at": pa.array(
                [None if i % 40 == 0 else dt.datetime(2020, 1, 1) + dt.timedelta(seconds=17 * i) for i in ids], pa.timestamp("ms")
            ),
            "day": pa.array(
                [None if i % 45 == 0 else dt.date(2020, 1, 1) + dt.timedelta(days=i % 2000) for i in ids], pa.date32()
            ),
            "flag": pa.array([None if i % 10 == 0 else i % 3 == 0 for i in ids], pa.bool_()),
        }
    )


def tree_pss_kib(root: int) -> int:
    """PSS of ``root`` and every descendant, from /proc (0 for processes that are gone)."""
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{pid}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return total


def run(method: str, work: Path, env: dict[str, str]) -> dict:
    out = work / f"{method}.parquet"
    process = subprocess.Popen(
        [sys.executable, str(work / "child.py"), method, str(out)], env=env, stdout=subprocess.PIPE, text=True
    )
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_pss_kib(process.pid))
        time.sleep(0.05)
    stdout = process.stdout.read() if process.stdout else ""
    if process.returncode != 0:
        raise RuntimeError(f"{method} failed")
    record = json.loads(stdout.strip().splitlines()[-1])
    record["peak_pss_mib"] = peak / 1024
    out.unlink(missing_ok=True)
    for lake in work.glob("project/lake"):
        import shutil

        shutil.rmtree(lake)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    from hygge_core.sql.drivers import shipped_msodbcsql
    from tests.tds_server import Engine, TdsServer

    with tempfile.TemporaryDirectory(prefix="tds-bench-") as folder:
        work = Path(folder)
        data = work / "data"
        data.mkdir()
        import pyarrow.parquet as pq

        pq.write_table(make_table(args.rows), data / "mixed.parquet")
        (data / "mixed.types.json").write_text(json.dumps(DECLARED))
        (work / "child.py").write_text(CHILD)
        server = TdsServer(Engine(data), logins={USER: PASSWORD}).start()
        try:
            project = work / "project"
            project.mkdir()
            (project / "hygge.yml").write_text(
                textwrap.dedent(f"""
            name: bench
            connections:
              ms: {{type: mssql, server: localhost, port: {server.port}, database: hygge, user: {USER}, password: "${{BENCH_PW}}", encrypt: false}}
            flows:
              bench:
                home: {{type: mssql, connection: ms}}
                store: {{type: parquet, path: "lake/{{entity}}"}}
                entities: [mixed]
            """)
            )
            env = {
                **os.environ,
                "BENCH_PW": PASSWORD,
                "BENCH_PROJECT": str(project),
                "BENCH_CS": f"DRIVER={{{shipped_msodbcsql()}}};SERVER=tcp:localhost,{server.port};DATABASE=hygge;UID={USER};PWD={PASSWORD};Encrypt=no;",
            }
            methods = ["hygge", "arrow_odbc", "pyodbc"]
            records: dict[str, list[dict]] = {m: [] for m in methods}
            for rep in range(args.reps):
                for method in methods[rep % 3 :] + methods[: rep % 3]:
                    record = run(method, work, env)
                    assert record["rows"] == args.rows, record
                    records[method].append(record)
        finally:
            server.stop()
    base = statistics.median(r["seconds"] for r in records["arrow_odbc"])
    print(f"\n{args.rows:,} rows x 8 mixed columns, {args.reps} reps, TDS test server (Encrypt=no), median of fresh processes\n")
    print("| method | seconds (median) | vs raw arrow-odbc | peak PSS MiB (median) |")
    print("|---|---|---|---|")
    for method in methods:
        seconds = statistics.median(r["seconds"] for r in records[method])
        pss = statistics.median(r["peak_pss_mib"] for r in records[method])
        print(f"| {method} | {seconds:.2f} | {seconds / base:.2f}x | {pss:.0f} |")


if __name__ == "__main__":
    main()

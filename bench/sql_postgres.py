"""PostgreSQL -> Parquet: hygge against pyodbc fetchmany->polars and raw arrow-odbc, in the same run.

    python bench/sql_postgres.py [--rows 2000000] [--reps 3]

Starts a throwaway server (tests/sql/pg_server.py), builds the 2M-row mixed table
from the environment notes, then runs each method in a fresh process (so peak
RSS is per method) and prints medians and ratios as Markdown. Also measures
connection reuse (pool) against a connection per entity, and 50 tables through
one flow (peak RSS).
"""

from __future__ import annotations

import argparse
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
sys.path.insert(0, str(REPO / "tests" / "sql"))

MAKE_TABLE = """
create table bench_mixed as
select g::bigint as id,
       case when g % 20 = 0 then null else (g::bigint * 7919 % 100000)::int end as qty,
       case when g % 25 = 0 then null else (g * 0.3183098861837907)::float8 end as score,
       case when g % 33 = 0 then null else ((g::bigint * 104729 % 100000000) / 10000.0)::numeric(18,4) end as amount,
       case when g % 50 = 0 then null else left(md5(g::text) || md5((g + 1)::text), 9 + g % 29)::varchar(40) end as label,
       case when g % 40 = 0 then null else timestamp '2020-01-01' + (g * interval '17 seconds') end as created_at,
       case when g % 45 = 0 then null else date '2020-01-01' + (g % 2000) end as day,
       case when g % 10 = 0 then null else g % 3 = 0 end as flag
from generate_series(1, {rows}) g;
alter table bench_mixed add primary key (id);
analyze bench_mixed;
"""

CHILD = r'''
import json, os, resource, sys, time
method, out = sys.argv[1], sys.argv[2]
cs = os.environ["BENCH_CS"]
started = time.perf_counter()
rows = 0
if method == "hygge":
    import hygge_core
    project = hygge_core.load_project(os.environ["BENCH_PROJECT"])
    result = hygge_core.run_entity(project.entity("bench/bench_mixed"))
    rows = result.rows
elif method == "arrow_odbc":
    import arrow_odbc, pyarrow as pa, pyarrow.parquet as pq
    con = arrow_odbc.connect(cs, login_timeout_sec=10)
    reader = con.read_arrow_batches("select * from bench_mixed", batch_size=100_000, max_text_size=8192,
                                    map_schema=lambda s: pa.schema([f.with_type(pa.float64()) if f.type == pa.float32() else f for f in s]))
    writer = None
    for batch in reader:
        writer = writer or pq.ParquetWriter(out, batch.schema, compression="zstd")
        writer.write_batch(batch, row_group_size=1_000_000)
        rows += batch.num_rows
    writer.close()
elif method == "pyodbc":
    import pyodbc, polars as pl, pyarrow.parquet as pq
    con = pyodbc.connect(cs, timeout=10)
    cur = con.cursor()
    cur.execute("select * from bench_mixed")
    names = [d[0] for d in cur.description]
    writer = None
    while True:
        chunk = cur.fetchmany(100_000)
        if not chunk:
            break
        frame = pl.DataFrame([tuple(r) for r in chunk], schema=names, orient="row", infer_schema_length=None)
        table = frame.to_arrow()
        writer = writer or pq.ParquetWriter(out, table.schema, compression="zstd")
        writer.write_table(table)
        rows += table.num_rows
    writer.close()
elif method in ("pool", "per_entity"):
    import hygge_core
    from hygge_core.sql import pool as sql_pool
    project = hygge_core.load_project(os.environ["BENCH_PROJECT"])
    plans = [p for p in project.plans if p.flow == "small"]
    for plan in plans:
        rows += hygge_core.run_entity(plan).rows
        if method == "per_entity":
            sql_pool.close_all()  # what a connection per entity costs
elif method == "fifty":
    import hygge_core
    project = hygge_core.load_project(os.environ["BENCH_PROJECT"])
    result = hygge_core.run_project(project, flows=["fifty"], concurrency=4)
    assert all(e.status == "success" for e in result.entities), [e.error for e in result.entities if e.error]
    rows = sum(e.rows for e in result.entities)
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"method": method, "rows": rows, "seconds": seconds, "peak_mib": peak, "cpu": usage.ru_utime + usage.ru_stime}))
'''


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    import pg_server

    server = pg_server.start(max_connections=200)
    work = Path(tempfile.mkdtemp(prefix="hygge-bench-"))
    try:
        started = time.perf_counter()
        server.psql(MAKE_TABLE.format(rows=args.rows))
        small = "\n".join(f"create table small_{i:02d} as select g as id, md5(g::text) as label from generate_series(1, 200) g;" for i in range(20))
        fifty = "\n".join(f"create table wide_{i:02d} as select g as id, g * 1.5 as x, md5(g::text) as label, now() as at from generate_series(1, 20000) g;" for i in range(50))
        server.psql(small + fifty)
        print(f"built tables in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        (work / "hygge.yml").write_text(textwrap.dedent(f"""
            name: bench
            connections:
              pg: {{type: postgres, server: 127.0.0.1, port: {server.port}, database: postgres, user: {server.superuser}, password: "${{BENCH_PW}}", pool_size: 4}}
            flows:
              bench:
                home: {{type: postgres, connection: pg, count_rows: false}}
                store: {{type: parquet, path: "lake/{{entity}}"}}
                entities: [bench_mixed]
              small:
                home: {{type: postgres, connection: pg, count_rows: false}}
                store: {{type: parquet, path: "lake/small/{{entity}}"}}
                entities: [{", ".join(f"small_{i:02d}" for i in range(20))}]
              fifty:
                home: {{type: postgres, connection: pg}}
                store: {{type: parquet, path: "lake/fifty/{{entity}}"}}
                entities: {{include: ["public.wide_*"]}}
        """))
        env = {
            **os.environ, "BENCH_PW": server.password, "BENCH_PROJECT": str(work),
            "BENCH_CS": f"Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port={server.port};Database=postgres;UID={server.superuser};"
                        f"PWD={{{server.password}}};UseDeclareFetch=1;Fetch=20000;BoolsAsChar=0;",
        }
        child = work / "child.py"
        child.write_text(CHILD)
        records: dict[str, list[dict]] = {}
        order = ["arrow_odbc", "hygge", "pyodbc", "pool", "per_entity", "fifty"]
        for rep in range(args.reps):
            for method in order:
                out = work / f"{method}.parquet"
                done = subprocess.run([sys.executable, str(child), method, str(out)], env=env, capture_output=True, text=True, check=True)
                record = json.loads(done.stdout.strip().splitlines()[-1])
                records.setdefault(method, []).append(record)
                print(f"rep {rep} {method}: {record}", file=sys.stderr)
        report(records, args.rows)
    finally:
        server.stop()


def report(records: dict[str, list[dict]], rows: int) -> None:
    def med(method: str, key: str) -> float:
        return statistics.median(r[key] for r in records[method])

    rate = {m: med(m, "rows") / med(m, "seconds") for m in ("arrow_odbc", "hygge", "pyodbc")}
    print(f"\nPostgreSQL {rows:,} mixed rows -> Parquet, median of {len(records['hygge'])} fresh processes each:\n")
    print("| method | rows/s | peak RSS MiB | client CPU-s |")
    print("|---|---|---|---|")
    for method, label in (("hygge", "hygge (postgres home -> parquet store)"), ("arrow_odbc", "raw arrow-odbc -> ParquetWriter"), ("pyodbc", "pyodbc fetchmany -> polars -> ParquetWriter")):
        print(f"| {label} | {rate[method]:,.0f} | {med(method, 'peak_mib'):.0f} | {med(method, 'cpu'):.1f} |")
    print(f"\n- hygge / pyodbc row path: **{rate['hygge'] / rate['pyodbc']:.2f}x** (target >= 3x)")
    print(f"- hygge / raw arrow-odbc: **{rate['hygge'] / rate['arrow_odbc']:.2f}x** (target >= 0.9x)")
    pool, per = med("pool", "seconds"), med("per_entity", "seconds")
    print(f"- 20 small tables (200 rows): pooled {pool:.2f}s vs connection per entity {per:.2f}s")
    print(f"- 50 tables x 20k rows through one flow (concurrency 4): {med('fifty', 'seconds'):.1f}s, peak RSS {med('fifty', 'peak_mib'):.0f} MiB")


if __name__ == "__main__":
    main()

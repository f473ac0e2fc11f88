"""PostgreSQL -> Parquet: hygge against pyodbc fetchmany->polars and raw arrow-odbc, connection reuse, 50 tables.

    python bench/sql_postgres.py                                   # everything
    python bench/sql_postgres.py --only throughput --rows 2000000 --reps 3   # includes hygge partitions=2
    python bench/sql_postgres.py --only reuse --entities 40 --reps 5
    python bench/sql_postgres.py --only fifty --reps 1
    python bench/sql_postgres.py --only throughput --profile hygge.svg   # + one hygge run under py-spy (pip install py-spy)

Starts a throwaway server (tests/sql/pg_server.py: scram-sha-256 passwords over
loopback TCP) and prints Markdown. Every measurement runs in a fresh process
(so peak RSS is per method), and methods are interleaved within each rep with
the order rotated between reps, so the machine's load drifts over all methods
alike; medians and per-rep ratios are reported.

throughput: the 2M-row mixed table of the environment notes, through hygge, hygge with
    ``partitions: {column: id, count: 2}`` (two key ranges over two connections), raw
    arrow-odbc -> ParquetWriter, and pyodbc fetchmany -> polars -> ParquetWriter; the
    serving backends' CPU comes from /proc (the server runs on this machine).
reuse: N small tables through one flow (``run_project``, one entity at a time),
    once with a pooled connection (pool_size 2) and once with ``max_lifetime: 0s``
    so every entity opens and closes its own connection. The connection overhead
    is timed inside the process around ``ConnectionPool.acquire``/``release`` (plus
    closing the pool at the end), and the server counts the sessions it accepted
    (``pg_stat_database.sessions`` and ``log_connections`` lines).
fifty: 50 tables x 20k rows through one flow at concurrency 4 (peak RSS).
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "sql"))

# Declared column types, not CREATE TABLE AS: a CASE with a NULL branch drops the typmod, which made
# `amount` an unbounded numeric (hygge reads it as exact text; raw arrow-odbc as decimal(28,6), cutting
# digits) and `label` an unbounded varchar, so the methods were not doing the same work.
MAKE_TABLE = """
create table bench_mixed (id bigint primary key, qty int, score float8, amount numeric(18,4), label varchar(40),
                          created_at timestamp, day date, flag boolean);
insert into bench_mixed
select g::bigint,
       case when g % 20 = 0 then null else (g::bigint * 7919 % 100000)::int end,
       case when g % 25 = 0 then null else (g * 0.3183098861837907)::float8 end,
       case when g % 33 = 0 then null else (g::bigint * 104729 % 100000000) / 10000.0 end,
       case when g % 50 = 0 then null else left(md5(g::text) || md5((g + 1)::text), 9 + g % 29) end,
       case when g % 40 = 0 then null else timestamp '2020-01-01' + (g * interval '17 seconds') end,
       case when g % 45 = 0 then null else date '2020-01-01' + (g % 2000) end,
       case when g % 10 = 0 then null else g % 3 = 0 end
from generate_series(1, {rows}) g;
analyze bench_mixed;
"""

REUSE_DB, REUSE_USER, REUSE_PASSWORD = "reuse", "bench_login", "bench-login-pw"

CHILD = r'''
import json, os, resource, sys, time
method, out = sys.argv[1], sys.argv[2]

def server_cpu(pid):
    """CPU seconds the server backend serving this read has used (same machine; /proc is readable as root)."""
    fields = open(f"/proc/{int(pid)}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

cs = os.environ["BENCH_CS"]
started = time.perf_counter()
rows = 0
extra = {}
if method in ("hygge", "hygge_p2"):
    import hygge_core
    project = hygge_core.load_project(os.environ["BENCH_PROJECT"])
    result = hygge_core.run_entity(project.entity("bench/bench_mixed" if method == "hygge" else "bench_p2/bench_mixed"))
    rows = result.rows
    from hygge_core.sql.pool import pool_for
    pool = pool_for("pg", project.config.connections["pg"])
    readers = [pool.acquire(timeout=0) for _ in range(pool.open_count)]  # every pooled connection that read
    extra["server_cpu"] = sum(
        server_cpu(c.fetch_all("select pg_backend_pid() as pid", during="bench").column(0)[0].as_py()) for c in readers)
    extra["connections"] = len(readers)
    for c in readers:
        pool.release(c)
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
    extra["server_cpu"] = server_cpu(next(iter(con.read_arrow_batches("select pg_backend_pid()"))).column(0)[0].as_py())
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
    extra["server_cpu"] = server_cpu(cur.execute("select pg_backend_pid()").fetchone()[0])
elif method in ("pooled", "per_entity"):
    # Time the connection work itself: every acquire and release the homes make, and closing the pool.
    import hygge_core
    from hygge_core.sql import pool as sql_pool
    acquires, releases = [], []
    plain_acquire, plain_release = sql_pool.ConnectionPool.acquire, sql_pool.ConnectionPool.release
    def acquire(self, timeout=None):
        t = time.perf_counter()
        try:
            return plain_acquire(self, timeout)
        finally:
            acquires.append(time.perf_counter() - t)
    def release(self, connection):
        t = time.perf_counter()
        try:
            return plain_release(self, connection)
        finally:
            releases.append(time.perf_counter() - t)
    sql_pool.ConnectionPool.acquire, sql_pool.ConnectionPool.release = acquire, release
    project = hygge_core.load_project(os.environ["BENCH_PROJECT"])
    result = hygge_core.run_project(project, flows=[f"reuse_{method}"], concurrency=1)
    assert all(e.status == "success" for e in result.entities), [e.error for e in result.entities if e.error]
    rows = sum(e.rows for e in result.entities)
    pool = sql_pool.pool_for(method, project.config.connections[method])  # the same process-wide pool the homes used
    t = time.perf_counter()
    sql_pool.close_all()
    extra = {"entities": len(result.entities), "acquires": acquires, "releases": releases, "close": time.perf_counter() - t,
             "opened_total": pool.opened_total, "entity_seconds": [e.seconds for e in result.entities]}
elif method == "fifty":
    import hygge_core
    project = hygge_core.load_project(os.environ["BENCH_PROJECT"])
    result = hygge_core.run_project(project, flows=["fifty"], concurrency=4)
    assert all(e.status == "success" for e in result.entities), [e.error for e in result.entities if e.error]
    rows = sum(e.rows for e in result.entities)
seconds = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"method": method, "rows": rows, "seconds": seconds, "peak_mib": usage.ru_maxrss / 1024,
                  "cpu": usage.ru_utime + usage.ru_stime, **extra}))
'''


def rotated(methods: list[str], rep: int) -> list[str]:
    shift = rep % len(methods)
    return methods[shift:] + methods[:shift]


class Bench:
    def __init__(self, server, work: Path) -> None:  # type: ignore[no-untyped-def]
        self.server = server
        self.work = work
        self.child = work / "child.py"
        self.child.write_text(CHILD)
        self.env = {
            **os.environ,
            "BENCH_PW": server.password,
            "BENCH_REUSE_PW": REUSE_PASSWORD,
            "BENCH_CS": f"Driver={{PostgreSQL Unicode}};Server=127.0.0.1;Port={server.port};Database=postgres;UID={server.superuser};"
            f"PWD={{{server.password}}};UseDeclareFetch=1;Fetch=20000;BoolsAsChar=0;",
        }

    def run(self, method: str, project: str, *, prefix: list[str] | None = None) -> dict:
        """One method in a fresh process, against the project folder ``project`` (each part has its own, so
        loading one never runs another part's entity discovery)."""
        out = self.work / f"{method}.parquet"
        command = [*(prefix or []), sys.executable, str(self.child), method, str(out)]
        env = {**self.env, "BENCH_PROJECT": str(self.work / project)}
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{method} failed:\n{done.stderr[-3000:]}")
        shutil.rmtree(self.work / project / "lake", ignore_errors=True)
        out.unlink(missing_ok=True)
        return json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])  # py-spy prints too

    def write_project(self, name: str, connections: str, flows: str) -> None:
        folder = self.work / name
        folder.mkdir()
        (folder / "hygge.yml").write_text(
            f"name: bench\nconnections:\n{textwrap.indent(textwrap.dedent(connections).strip(), '  ')}\n"
            f"flows:\n{textwrap.indent(textwrap.dedent(flows).strip(), '  ')}\n"
        )

    def admin_connection(self) -> str:
        return (
            f"pg: {{type: postgres, server: 127.0.0.1, port: {self.server.port}, database: postgres, user: {self.server.superuser}, "
            f'password: "${{BENCH_PW}}", pool_size: 4}}'
        )

    # --- throughput -----------------------------------------------------------------------------

    def throughput(self, rows: int, reps: int) -> None:
        started = time.perf_counter()
        self.server.psql(MAKE_TABLE.format(rows=rows))
        self.write_project(
            "throughput",
            self.admin_connection(),
            """
            bench:
              home: {type: postgres, connection: pg, count_rows: false}
              store: {type: parquet, path: "lake/{entity}"}
              entities: [bench_mixed]
            bench_p2:
              home: {type: postgres, connection: pg, count_rows: false, partitions: {column: id, count: 2}}
              store: {type: parquet, path: "lake/p2/{entity}"}
              entities: [bench_mixed]
        """,
        )
        print(f"built bench_mixed in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        methods = ["hygge", "hygge_p2", "arrow_odbc", "pyodbc"]
        reps_seen: list[dict[str, dict]] = []
        for rep in range(reps):
            seen = {}
            for method in rotated(methods, rep):
                seen[method] = self.run(method, "throughput")
                print(f"rep {rep} {method}: {seen[method]}", file=sys.stderr)
            reps_seen.append(seen)
        rate = lambda record: record["rows"] / record["seconds"]  # noqa: E731
        print(f"\n### PostgreSQL {rows:,} mixed rows -> Parquet ({reps} interleaved reps, fresh process each)\n")
        print("| method | median rows/s | median s | median peak RSS MiB | median client CPU-s | median server backend CPU-s |")
        print("|---|---|---|---|---|---|")
        labels = {
            "hygge": "hygge (postgres home -> parquet store)",
            "hygge_p2": "hygge partitions=2 (id, 2 connections)",
            "arrow_odbc": "raw arrow-odbc -> ParquetWriter",
            "pyodbc": "pyodbc fetchmany -> polars -> ParquetWriter",
        }
        for method in methods:
            records = [seen[method] for seen in reps_seen]
            print(
                f"| {labels[method]} | {statistics.median(rate(r) for r in records):,.0f} | {statistics.median(r['seconds'] for r in records):.1f} "
                f"| {statistics.median(r['peak_mib'] for r in records):.0f} | {statistics.median(r['cpu'] for r in records):.1f} "
                f"| {statistics.median(r['server_cpu'] for r in records):.1f} |"
            )
        print(
            "\n| rep | order | hygge p=2 / pyodbc | hygge / pyodbc | hygge p=2 / hygge | hygge / arrow-odbc | arrow-odbc / pyodbc "
            "| pyodbc CPU / hygge CPU |"
        )
        print("|---|---|---|---|---|---|---|---|")
        ratios = []
        for rep, seen in enumerate(reps_seen):
            h, h2, a, p = (rate(seen[m]) for m in methods)
            ratios.append((h2 / p, h / p, h2 / h, h / a, a / p, seen["pyodbc"]["cpu"] / seen["hygge"]["cpu"]))
            print(f"| {rep} | {', '.join(rotated(methods, rep))} | " + " | ".join(f"{r:.2f}x" for r in ratios[-1]) + " |")
        medians = [statistics.median(column) for column in zip(*ratios, strict=True)]
        print(
            f"| median | | **{medians[0]:.2f}x** | **{medians[1]:.2f}x** | {medians[2]:.2f}x | {medians[3]:.2f}x | {medians[4]:.2f}x "
            f"| {medians[5]:.2f}x |"
        )
        loads = [os.getloadavg()[0]]
        print(
            f"\nhygge p=2 used {'/'.join(str(seen['hygge_p2'].get('connections')) for seen in reps_seen)} connections per rep; "
            f"1-minute load average at the end: {loads[0]:.1f}"
        )

    def profile(self, svg: Path) -> None:
        """One hygge run under py-spy (all threads, with native frames), for finding where the time goes."""
        record = self.run(
            "hygge",
            "throughput",
            prefix=[
                shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--subprocesses",
                "--rate",
                "200",
                "--native",
                "--format",
                "raw" if svg.suffix == ".txt" else "flamegraph",
                "-o",
                str(svg.resolve()),
                "--",
            ],
        )
        print(
            f"profiled hygge run: {record['rows'] / record['seconds']:,.0f} rows/s under py-spy; profile in {svg}",
            file=sys.stderr,
        )

    # --- connection reuse -----------------------------------------------------------------------

    def reuse(self, entities: int, reps: int) -> None:
        server = self.server
        server.psql(f"create role {REUSE_USER} login password '{REUSE_PASSWORD}'")
        server.psql(f"create database {REUSE_DB} owner {REUSE_USER}")
        tables = "\n".join(
            f"create table small_{i:03d} as select g as id, md5(g::text) as label from generate_series(1, 50) g;"
            for i in range(entities)
        )
        server.psql(tables, database=REUSE_DB, user=REUSE_USER, password=REUSE_PASSWORD)
        login = f'type: postgres, server: 127.0.0.1, port: {server.port}, database: {REUSE_DB}, user: {REUSE_USER}, password: "${{BENCH_REUSE_PW}}"'
        listed = ", ".join(f"small_{i:03d}" for i in range(entities))
        self.write_project(
            "reuse",
            f"""
            pooled: {{{login}, pool_size: 2}}
            per_entity: {{{login}, pool_size: 2, max_lifetime: 0s}}
        """,
            f"""
            reuse_pooled:
              home: {{type: postgres, connection: pooled}}
              store: {{type: parquet, path: "lake/pooled/{{entity}}"}}
              entities: [{listed}]
            reuse_per_entity:
              home: {{type: postgres, connection: per_entity}}
              store: {{type: parquet, path: "lake/per_entity/{{entity}}"}}
              entities: [{listed}]
        """,
        )
        method_encryption = server.psql("show password_encryption").strip()
        server.psql("alter system set log_connections = on")
        server.psql("select pg_reload_conf()")
        methods = ["pooled", "per_entity"]
        records: dict[str, list[dict]] = {m: [] for m in methods}
        for rep in range(reps):
            for method in rotated(methods, rep):
                before_sessions, before_log = self.sessions(), self.logins()
                record = self.run(method, "reuse")
                record["server_sessions"] = self.sessions(settle=True) - before_sessions
                record["logins_logged"] = self.logins() - before_log
                records[method].append(record)
                print(
                    f"rep {rep} {method}: opened {record['opened_total']}, server sessions {record['server_sessions']}, "
                    f"log lines {record['logins_logged']}, acquire+release {self.overhead(record) * 1000:.2f} ms/entity",
                    file=sys.stderr,
                )
        self.report_reuse(records, entities, method_encryption)

    def sessions(self, *, settle: bool = False) -> int:
        """Sessions the server has accepted into the reuse database (pg_stat_database, PostgreSQL 14+)."""
        query = f"select sessions from pg_stat_database where datname = '{REUSE_DB}'"
        if not settle:
            return int(self.server.psql(query).strip())
        # Backends report their session at exit; wait until the child's backends are gone and the count holds.
        deadline = time.monotonic() + 30
        while (
            int(self.server.psql(f"select count(*) from pg_stat_activity where datname = '{REUSE_DB}'").strip())
            and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        last = -1
        while time.monotonic() < deadline:
            now = int(self.server.psql(query).strip())
            if now == last:
                return now
            last = now
            time.sleep(0.3)
        return last

    def logins(self) -> int:
        log = self.server.data_dir.parent / "server.log"
        needle = f"connection authorized: user={REUSE_USER} database={REUSE_DB}"
        return sum(needle in line for line in log.read_text(errors="replace").splitlines())

    @staticmethod
    def overhead(record: dict) -> float:
        """Seconds of connection work per entity: every acquire and release, plus closing the pool at the end."""
        return (sum(record["acquires"]) + sum(record["releases"]) + record["close"]) / record["entities"]

    def report_reuse(self, records: dict[str, list[dict]], entities: int, encryption: str) -> None:
        reps = len(records["pooled"])
        med = statistics.median
        print(
            f"\n### Connection reuse: {entities} tables of 50 rows through one flow, one entity at a time ({reps} interleaved reps)\n"
        )
        print(f"Login: `{REUSE_USER}` with a {encryption} password over loopback TCP, psqlODBC through arrow-odbc.\n")
        print(
            "| connection | connection ms per entity (median) | acquire ms, median of all | release ms, median of all "
            "| opened by the pool | sessions counted by the server | `log_connections` lines | entity wall ms (median) |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for method, label in (("pooled", "pooled (pool_size 2)"), ("per_entity", "per entity (max_lifetime 0s)")):
            rs = records[method]
            acquires = [a for r in rs for a in r["acquires"]]
            releases = [a for r in rs for a in r["releases"]]
            print(
                f"| {label} | {med(self.overhead(r) for r in rs) * 1000:.2f} | {med(acquires) * 1000:.2f} | {med(releases) * 1000:.3f} "
                f"| {'/'.join(str(r['opened_total']) for r in rs)} | {'/'.join(str(r['server_sessions']) for r in rs)} "
                f"| {'/'.join(str(r['logins_logged']) for r in rs)} | {med(s for r in rs for s in r['entity_seconds']) * 1000:.1f} |"
            )
        cuts = [1 - self.overhead(p) / self.overhead(e) for p, e in zip(records["pooled"], records["per_entity"], strict=True)]
        print(
            f"\nPer-rep cut in connection time per entity (1 - pooled / per entity): {', '.join(f'{c:.1%}' for c in cuts)}; "
            f"median **{med(cuts):.1%}** (target >= 80%)."
        )
        opens = [a for r in records["per_entity"] for a in r["acquires"]]
        pings = [a for r in records["pooled"] for a in r["acquires"][1:]]
        closes = [r["close"] for r in records["pooled"]]
        print(
            f"Median acquire that opened a connection: {med(opens) * 1000:.2f} ms; median acquire of a pooled one (ping): {med(pings) * 1000:.2f} ms; "
            f"closing the pool at the end: {med(closes) * 1000:.1f} ms (median)."
        )

    # --- many tables ----------------------------------------------------------------------------

    def fifty(self, reps: int) -> None:
        fifty = "\n".join(
            f"create table wide_{i:02d} as select g as id, g * 1.5 as x, md5(g::text) as label, now() as at from generate_series(1, 20000) g;"
            for i in range(50)
        )
        self.server.psql(fifty)
        self.write_project(
            "fifty",
            self.admin_connection(),
            """
            fifty:
              home: {type: postgres, connection: pg}
              store: {type: parquet, path: "lake/fifty/{entity}"}
              entities: {include: ["public.wide_*"]}
        """,
        )
        records = [self.run("fifty", "fifty") for _ in range(reps)]
        print(
            f"\n- 50 tables x 20k rows through one flow (concurrency 4): {statistics.median(r['seconds'] for r in records):.1f}s, "
            f"peak RSS {statistics.median(r['peak_mib'] for r in records):.0f} MiB (median of {reps})"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", action="append", choices=["throughput", "reuse", "fifty"], help="repeatable; default: all")
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--entities", type=int, default=40, help="tables in the connection-reuse run")
    parser.add_argument(
        "--profile",
        type=Path,
        help="also record one hygge throughput run with py-spy into this file (.svg flame graph, .txt collapsed stacks)",
    )
    args = parser.parse_args()
    parts = args.only or ["throughput", "reuse", "fifty"]
    import pg_server

    server = pg_server.start(max_connections=200)
    work = Path(tempfile.mkdtemp(prefix="hygge-bench-"))
    try:
        bench = Bench(server, work)
        if "throughput" in parts:
            bench.throughput(args.rows, args.reps)
            if args.profile:
                bench.profile(args.profile)
        if "reuse" in parts:
            bench.reuse(args.entities, max(args.reps, 1))
        if "fifty" in parts:
            bench.fifty(args.reps)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

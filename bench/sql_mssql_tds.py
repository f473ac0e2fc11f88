"""SQL Server -> Parquet through the TDS test server: hygge against raw arrow-odbc and pyodbc, same server, same driver;
and what reusing pooled connections saves against a login per entity.

    python bench/sql_mssql_tds.py --rows 200000 --reps 3                  # everything
    python bench/sql_mssql_tds.py --only reuse --entities 40 --reps 5
    python bench/sql_mssql_tds.py --only fifty --fifty-rows 2000 --reps 3

The server (tests/tds_server, Python encoding every value, DuckDB behind it) runs in
this process on a loopback port; every method runs in a fresh process (Microsoft's
ODBC Driver 18 from the mssql-python-odbc wheel, Encrypt=no), methods interleaved
and rotated between reps. Peak memory is PSS summed over the method's process tree,
sampled from /proc. The server, not the client, bounds the absolute figures: compare
the ratios, not the rows per second, with a real SQL Server.

throughput: one mixed table through hygge (a SQL login, and an Azure AD token login read through
    mssql-python and through pyodbc), raw arrow-odbc and pyodbc (above), with each client's CPU time.
reuse: N small tables through one flow (``run_project``, one entity at a time), once with a
    pooled connection (pool_size 2) and once with ``max_lifetime: 0s`` so every entity opens
    and closes its own connection. The connection overhead is timed in the process around
    ``ConnectionPool.acquire``/``release`` (plus closing the pools at the end), and the
    server counts the logins it accepted, so the figure does not rest on hygge's word.
fifty: 50 tables through one flow by ``hygge start`` (pool_size 5, concurrency 8), as
    tests/tds/test_scale.py runs it: peak PSS over the process tree, logins, sessions at once.
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import json
import os
import shutil
import statistics
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import proctree  # noqa: E402  (bench/, the script's own folder)

USER, PASSWORD = "bench", "Bench-Pw-1"
TOKEN = "eyJ0eXAiOiJKV1QifQ.bench-token.signature"  # the Azure AD token the test server accepts (FEDAUTH)
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
elif method.startswith("hygge_token_"):
    # An Azure AD token login (auth: azure_ad) with a fixed token the test server accepts, no Azure involved.
    import hygge_core
    from hygge_core.sql import odbc
    from hygge_core.sql.auth import AccessToken, TokenSource
    odbc.token_source_for = lambda _c, label: TokenSource(label, lambda: AccessToken(os.environ["BENCH_TOKEN"], time.time() + 3600))
    from hygge_core.sql import pool as sql_pool
    if method == "hygge_token_pyodbc":
        odbc.drivers.has_mssql_python = lambda: False
    routes, plain_open = set(), sql_pool.open_connection
    sql_pool.open_connection = lambda target: routes.add(target.route) or plain_open(target)
    result = hygge_core.run_entity(hygge_core.load_project(os.environ["BENCH_TOKEN_PROJECT"]).entity("bench/mixed"))
    assert routes == {method[len("hygge_token_"):]}, routes
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
extra = {}
if method.startswith(("pooled_", "per_entity_")):
    # Time the connection work itself: every acquire and release the homes make, and closing the pools.
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
    from hygge_core.sql.connection import SqlConnection
    pings, plain_ping = [], SqlConnection.ping
    def ping(self):
        t = time.perf_counter()
        try:
            return plain_ping(self)
        finally:
            pings.append(time.perf_counter() - t)
    SqlConnection.ping = ping
    project = hygge_core.load_project(os.environ["BENCH_PROJECT"])
    result = hygge_core.run_project(project, flows=[f"reuse_{method}"], concurrency=1)
    assert all(e.status == "success" for e in result.entities), [e.error for e in result.entities if e.error]
    rows = sum(e.rows for e in result.entities)
    pool = sql_pool.pool_for(method, project.config.connections[method])  # the process-wide pool the homes used
    t = time.perf_counter()
    sql_pool.close_all()
    extra = {"entities": len(result.entities), "acquires": acquires, "releases": releases, "pings": pings, "close": time.perf_counter() - t,
             "opened_total": pool.opened_total, "entity_seconds": [e.seconds for e in result.entities]}
import resource
usage = resource.getrusage(resource.RUSAGE_SELF)
extra["cpu_seconds"] = usage.ru_utime + usage.ru_stime  # the client's own CPU (the server runs in the bench process)
print(json.dumps({"method": method, "rows": rows, "seconds": time.perf_counter() - started, **extra}))
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


def run(method: str, work: Path, env: dict[str, str]) -> dict:
    """One method in a fresh process; its peak PSS over the whole process tree from bench/proctree.py."""
    out = work / f"{method}.parquet"
    result = proctree.run([sys.executable, str(work / "child.py"), method, str(out)], env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{result.stderr[-3000:]}")
    record = json.loads(result.stdout.strip().splitlines()[-1])
    record["peak_pss_mib"] = result.peak_pss_mib
    out.unlink(missing_ok=True)
    for lake in work.glob("*/lake"):
        shutil.rmtree(lake)
    return record


def throughput(server, work: Path, rows: int, reps: int) -> None:  # type: ignore[no-untyped-def]
    import pyarrow.parquet as pq

    pq.write_table(make_table(rows), work / "data" / "mixed.parquet")
    (work / "data" / "mixed.types.json").write_text(json.dumps(DECLARED))
    server.engine.load_parquet(work / "data" / "mixed.parquet")
    project = work / "project"
    project.mkdir()
    (project / "hygge.yml").write_text(
        textwrap.dedent(f"""
    name: bench
    connections:
      ms: {{type: mssql, {login(server.port)}}}
    flows:
      bench:
        home: {{type: mssql, connection: ms}}
        store: {{type: parquet, path: "lake/{{entity}}"}}
        entities: [mixed]
    """)
    )
    token_project = work / "project_token"
    token_project.mkdir()
    (token_project / "hygge.yml").write_text(
        (project / "hygge.yml").read_text().replace(f'user: {USER}, password: "${{BENCH_PW}}"', "auth: azure_ad")
    )
    env = {**child_env(server.port), "BENCH_PROJECT": str(project), "BENCH_TOKEN_PROJECT": str(token_project)}
    methods = ["hygge", "hygge_token_mssql_python", "hygge_token_pyodbc", "arrow_odbc", "pyodbc"]
    records: dict[str, list[dict]] = {m: [] for m in methods}
    for rep in range(reps):
        for method in methods[rep % len(methods) :] + methods[: rep % len(methods)]:
            record = run(method, work, env)
            assert record["rows"] == rows, record
            records[method].append(record)
    base = statistics.median(r["seconds"] for r in records["arrow_odbc"])
    print(f"\n{rows:,} rows x 8 mixed columns, {reps} reps, TDS test server (Encrypt=no), median of fresh processes\n")
    base_cpu = statistics.median(r["cpu_seconds"] for r in records["arrow_odbc"])
    print(
        "| method | seconds (median) | vs raw arrow-odbc | client CPU s (median) | CPU vs raw arrow-odbc | peak PSS MiB (median) |"
    )
    print("|---|---|---|---|---|---|")
    for method in methods:
        seconds = statistics.median(r["seconds"] for r in records[method])
        cpu = statistics.median(r["cpu_seconds"] for r in records[method])
        pss = statistics.median(r["peak_pss_mib"] for r in records[method])
        print(f"| {method} | {seconds:.2f} | {seconds / base:.2f}x | {cpu:.2f} | {cpu / base_cpu:.2f}x | {pss:.0f} |")


ENCRYPTION = {"off": "encrypt: false", "tls": "encrypt: true, trust_server_certificate: true"}


def reuse(server, work: Path, entities: int, reps: int) -> None:  # type: ignore[no-untyped-def]
    """N small tables, one entity at a time: pooled connections against a login per entity (``max_lifetime: 0s``),
    without encryption and with TLS inside PRELOGIN (Driver 18's default, and Azure SQL's only choice)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for index in range(entities):
        small = pa.table({"id": pa.array(range(1, 51), pa.int32()), "label": [f"s{index}-{i}" for i in range(1, 51)]})
        path = work / "data" / f"small_{index:03d}.parquet"
        pq.write_table(small, path)
        path.with_name(f"small_{index:03d}.types.json").write_text(json.dumps({"id": "int", "label": "nvarchar(40)"}))
        server.engine.load_parquet(path)
    listed = ", ".join(f"small_{index:03d}" for index in range(entities))
    methods = [f"{kind}_{mode}" for mode in ENCRYPTION for kind in ("pooled", "per_entity")]
    connections = "".join(
        f"  {method}: {{type: mssql, {login(server.port, ENCRYPTION[method.rsplit('_', 1)[1]])}, pool_size: 2"
        + (", max_lifetime: 0s}\n" if method.startswith("per_entity") else "}\n")
        for method in methods
    )
    flows = "".join(
        f"  reuse_{method}:\n    home: {{type: mssql, connection: {method}}}\n"
        f'    store: {{type: parquet, path: "lake/{method}/{{entity}}"}}\n    entities: [{listed}]\n'
        for method in methods
    )
    project = work / "reuse"
    project.mkdir()
    (project / "hygge.yml").write_text(f"name: bench\nconnections:\n{connections}flows:\n{flows}")
    env = {**child_env(server.port), "BENCH_PROJECT": str(project)}
    records: dict[str, list[dict]] = {m: [] for m in methods}
    for rep in range(reps):
        shift = rep % len(methods)
        for method in methods[shift:] + methods[:shift]:
            before = server.stats.sessions
            record = run(method, work, env)
            server.settled()
            record["server_logins"] = server.stats.sessions - before
            assert record["rows"] == 50 * entities, record
            records[method].append(record)
            print(
                f"rep {rep} {method}: opened {record['opened_total']}, server logins {record['server_logins']}, "
                f"connection {overhead(record) * 1000:.2f} ms/entity",
                file=sys.stderr,
            )
    med = statistics.median
    print(f"\n{entities} tables of 50 rows through one flow, one entity at a time, {reps} interleaved reps (SQL login)\n")
    print(
        "| encryption | connection | connection ms per entity (median) | acquire ms, median of all | release ms, median of all "
        "| opened by the pool (per rep) | logins counted by the server (per rep) | entity wall ms (median) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for method in methods:
        kind, mode = method.rsplit("_", 1)
        label = "pooled (pool_size 2)" if kind == "pooled" else "per entity (max_lifetime 0s)"
        rs = records[method]
        acquires = [a for r in rs for a in r["acquires"]]
        releases = [a for r in rs for a in r["releases"]]
        print(
            f"| {mode} | {label} | {med(overhead(r) for r in rs) * 1000:.2f} | {med(acquires) * 1000:.2f} "
            f"| {med(releases) * 1000:.3f} | {'/'.join(str(r['opened_total']) for r in rs)} "
            f"| {'/'.join(str(r['server_logins']) for r in rs)} | {med(s for r in rs for s in r['entity_seconds']) * 1000:.1f} |"
        )
    print()
    for mode in ENCRYPTION:
        pooled, per_entity = records[f"pooled_{mode}"], records[f"per_entity_{mode}"]
        cuts = [1 - overhead(p) / overhead(e) for p, e in zip(pooled, per_entity, strict=True)]
        opens = [a for r in per_entity for a in r["acquires"][1:]]
        pooled_acquires = [a for r in pooled for a in r["acquires"][1:]]
        pings = [a for r in pooled for a in r["pings"]]
        firsts = [r["acquires"][0] for r in pooled + per_entity]
        print(
            f"- {mode}: cut in connection time per entity (1 - pooled / per entity) per rep "
            f"{', '.join(f'{c:.1%}' for c in cuts)}; median **{med(cuts):.1%}** (target >= 80%). Median acquire that "
            f"logged in (after the first): {med(opens) * 1000:.2f} ms; of a pooled one: {med(pooled_acquires) * 1000:.2f} ms, "
            + (
                f"of which its health-check ping (`SELECT 1`): {med(pings) * 1000:.2f} ms; "
                if pings
                else "no health-check ping (reused within PING_AFTER_IDLE_SECONDS); "
            )
            + f"the first acquire of a process (driver load + login, paid by both): {med(firsts) * 1000:.1f} ms."
        )
        steady = [1 - marginal(p) / marginal(e) for p, e in zip(pooled, per_entity, strict=True)]
        unpinged = [
            1 - (overhead(p) - sum(p["pings"]) / p["entities"]) / overhead(e) for p, e in zip(pooled, per_entity, strict=True)
        ]
        print(
            f"  - after the first entity (each entity's acquire + release, the process's first login left out): cut median "
            f"**{med(steady):.1%}** ({', '.join(f'{c:.1%}' for c in steady)}); the whole cut with the pooled side's "
            f"health-check pings taken out of its total (arithmetic, what a ping-free reuse would cost): median "
            f"**{med(unpinged):.1%}**."
        )


FIFTY_LABELS = {"narrow": "nvarchar(40)", "wide": "nvarchar(4000)"}  # the driver's buffers follow the declared width


def fifty(server, work: Path, rows: int, reps: int) -> None:  # type: ignore[no-untyped-def]
    """50 tables through one flow by ``hygge start`` (pool_size 5, concurrency 8, the default shared step), as the
    scale test runs it, with peak PSS over the whole process tree (bench/proctree.py) and the server's counts; once
    with a narrow text column and once with a wide one, since arrow-odbc sizes its buffers by the declared width."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = range(1, rows + 1)
    table = pa.table({"id": pa.array(ids, pa.int32()), "x": [i * 1.5 for i in ids], "label": [f"row {i} label" for i in ids]})
    for variant, label in FIFTY_LABELS.items():
        for index in range(50):
            path = work / "data" / f"{variant}.t{index:02d}.parquet"
            pq.write_table(table, path)
            path.with_name(f"{variant}.t{index:02d}.types.json").write_text(
                json.dumps({"id": "int", "x": "float", "label": label})
            )
            server.engine.load_parquet(path)
    flows = "".join(
        f"  {variant}:\n    home: {{type: mssql, connection: ms}}\n"
        f'    store: {{type: parquet, path: "lake/{{entity}}"}}\n    entities: {{include: ["{variant}.*"]}}\n'
        for variant in FIFTY_LABELS
    )
    project = work / "fifty"
    project.mkdir()
    (project / "hygge.yml").write_text(
        f"name: bench\nconcurrency: 8\nconnections:\n  ms: {{type: mssql, {login(server.port)}, pool_size: 5}}\nflows:\n{flows}"
    )
    env = child_env(server.port)
    env.pop("DAGSTER_HOME", None)
    print(f"\n50 tables x {rows:,} rows (int, float, label) by `hygge start`, pool_size 5, concurrency 8 (Encrypt=no)\n")
    print(
        "| rep | label declared | wall s | peak PSS MiB (process tree) | processes at the peak | logins | most sessions at once | load |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for rep in range(reps):
        for variant in list(FIFTY_LABELS)[rep % 2 :] + list(FIFTY_LABELS)[: rep % 2]:
            before = server.stats.sessions
            server.stats.max_active = 0
            command = [str(Path(sys.executable).with_name("hygge")), "start", "--flow", variant]
            result = proctree.run(command, env=env, cwd=project)
            if result.returncode != 0:
                raise RuntimeError(f"hygge start failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
            server.settled()
            shutil.rmtree(project / "lake", ignore_errors=True)
            print(
                f"| {rep} | {FIFTY_LABELS[variant]} | {result.wall_seconds:.1f} | {result.peak_pss_mib:.0f} | {result.peak_processes} "
                f"| {server.stats.sessions - before} | {server.stats.max_active} | {proctree.load_averages()} |"
            )


def overhead(record: dict) -> float:
    """Seconds of connection work per entity: every acquire and release, plus closing the pools at the end."""
    return (sum(record["acquires"]) + sum(record["releases"]) + record["close"]) / record["entities"]


def marginal(record: dict) -> float:
    """Seconds of connection work of an entity after the first: its acquire and its release (medians)."""
    return statistics.median(record["acquires"][1:]) + statistics.median(record["releases"][1:])


def login(port: int, encryption: str = ENCRYPTION["off"]) -> str:
    return f'server: localhost, port: {port}, database: hygge, user: {USER}, password: "${{BENCH_PW}}", {encryption}'


def child_env(port: int) -> dict[str, str]:
    from hygge_core.sql.drivers import shipped_msodbcsql

    return {
        **os.environ,
        "BENCH_PW": PASSWORD,
        "BENCH_TOKEN": TOKEN,
        "BENCH_CS": f"DRIVER={{{shipped_msodbcsql()}}};SERVER=tcp:localhost,{port};DATABASE=hygge;UID={USER};PWD={PASSWORD};Encrypt=no;",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=["throughput", "reuse", "fifty"], help="repeatable; default: all")
    parser.add_argument("--rows", type=int, default=200_000, help="throughput: rows of the mixed table")
    parser.add_argument("--entities", type=int, default=40, help="reuse: small tables through one flow")
    parser.add_argument("--fifty-rows", type=int, default=2000, help="fifty: rows of each of the 50 tables")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    parts = args.only or ["throughput", "reuse", "fifty"]
    from tests.tds_server import Engine, TdsServer, generate_certificate

    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="tds-bench-") as folder:
        work = Path(folder)
        data = work / "data"
        data.mkdir()
        (work / "child.py").write_text(CHILD)
        certificate = generate_certificate(work)  # TLS for the reuse part's encrypted logins
        with TdsServer(Engine(data), logins={USER: PASSWORD}, certificate=certificate, access_token=TOKEN) as server:
            if "throughput" in parts:
                throughput(server, work, args.rows, args.reps)
            if "reuse" in parts:
                reuse(server, work, args.entities, args.reps)
            if "fifty" in parts:
                fifty(server, work, args.fifty_rows, args.reps)
    print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

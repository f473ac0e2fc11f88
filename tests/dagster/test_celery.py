"""hygge's definitions, unchanged, on Dagster's Celery executor: the proof that steps scale out.

Everything is real and on this machine: a Redis broker (Debian's ``redis-server`` on a free loopback
port, nothing persisted), two Celery workers started the way the README says (``dagster-celery worker
start``, concurrency 1 each), and the run launched with ``dagster job execute`` on the code location in
``examples/celery/``, all sharing one SQLite/filesystem Dagster instance. A project with a flow of
per-entity steps and a flow with one shared step runs; the test reads back every entity's lake files,
each asset's materialisation and checks, and which worker ran each step (the worker name dagster-celery
records on the step, and the process the step's events came from).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from celery import Celery
from dagster import AssetKey, DagsterEventType, DagsterRunStatus

from hygge_cli.instance import open_instance

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "examples" / "celery"
BIN = Path(sys.executable).parent
READY_DEADLINE = 180.0  # seconds for redis and the workers to come up: a hang guard, not a measurement
WORKERS = ("w1", "w2")

# flow -> (step mode, entities): four steps of their own and one step shared by five entities
FLOWS = {
    "each": ("entity", ["alpha", "beta", "gamma", "delta"]),
    "shared": ("flow", ["north", "south", "east", "west", "centre"]),
}
SHARED_STEP = "hygge_flow__shared"


def source_table(flow: str, entity: str, index: int) -> pa.Table:
    """Rows that belong to one entity only, so a mixed-up or partial copy cannot pass."""
    rows = 40 + 17 * index
    return pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "label": [f"{flow}/{entity}/{i}" for i in range(rows)],
            "amount": [round(i * 1.25 + index, 2) for i in range(rows)],
        }
    )


def write_project(root: Path) -> dict[tuple[str, str], pa.Table]:
    """The project folder (hygge.yml and source Parquet, two files per entity); returns each entity's rows."""
    lines = ["name: celery_lake", "concurrency: 4", "flows:"]
    sources: dict[tuple[str, str], pa.Table] = {}
    for flow, (step, entities) in FLOWS.items():
        lines += [
            f"  {flow}:",
            f"    home: {{type: parquet, path: home/{flow}}}",
            f"    store: {{type: parquet, path: lake/{flow}}}",
            f"    dagster: {{step: {step}}}",
            f"    entities: [{', '.join(entities)}]",
        ]
        for index, entity in enumerate(entities):
            table = source_table(flow, entity, index)
            folder = root / "home" / flow / entity
            folder.mkdir(parents=True)
            half = table.num_rows // 2
            pq.write_table(table.slice(0, half), folder / "part-1.parquet")
            pq.write_table(table.slice(half), folder / "part-2.parquet")
            sources[(flow, entity)] = table
    (root / "hygge.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sources


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(encoding="utf-8", errors="replace")[-chars:] if path.exists() else "(no log)"


def stop(process: subprocess.Popen[bytes], *, group: bool) -> None:
    """SIGTERM (the whole session for a worker: its ``celery`` child too), then SIGKILL if it lingers."""
    if process.poll() is None:
        if group:
            os.killpg(process.pid, signal.SIGTERM)
        else:
            process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
        process.wait()


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A throwaway Redis on a free loopback port, persisting nothing; yields its URL (database 0)."""
    redis_bin = shutil.which("redis-server")
    if redis_bin is None:
        pytest.fail("redis-server is not installed: run scripts/install-system-packages.sh")
    folder.mkdir()
    port = free_port()
    log = folder / "redis.log"
    argv = [redis_bin, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    with open(log, "wb") as out:
        process = subprocess.Popen([*argv, "--dir", str(folder)], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + READY_DEADLINE
        while True:
            assert process.poll() is None, f"redis-server exited with {process.returncode}:\n{tail(log)}"
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(64).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"redis-server did not answer PING:\n{tail(log)}"
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}"
    finally:
        stop(process, group=False)


@dataclass
class Worker:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def pids(self) -> set[int]:
        """The worker's process tree: ``dagster-celery``, ``celery`` and its pool processes (where steps run)."""
        root = psutil.Process(self.process.pid)
        return {root.pid, *(child.pid for child in root.children(recursive=True))}


@contextmanager
def celery_workers(env: dict[str, str], folder: Path) -> Iterator[list[Worker]]:
    """The README's ``dagster-celery worker start``, twice, each in its own session; waits until both answer a ping."""
    workers: list[Worker] = []
    try:
        for name in WORKERS:
            log = folder / f"{name}.log"
            argv = [str(BIN / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app"]
            argv += ["-y", str(EXAMPLE / "celery.yaml"), "-n", name, "--", "--concurrency=1"]
            with open(log, "wb") as out:
                process = subprocess.Popen(
                    argv, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            workers.append(Worker(name, process, log))
        app = Celery("hygge_test_ping", broker=env["HYGGE_CELERY_BROKER"], backend=env["HYGGE_CELERY_BACKEND"])
        deadline = time.monotonic() + READY_DEADLINE
        while True:
            for worker in workers:
                assert worker.process.poll() is None, f"worker {worker.name} exited:\n{tail(worker.log)}"
            answered = {hostname.split("@")[0] for reply in app.control.ping(timeout=1.0) for hostname in reply}
            if answered >= set(WORKERS):
                break
            assert time.monotonic() < deadline, "workers did not answer a ping:\n" + "\n".join(tail(w.log) for w in workers)
        app.close()
        yield workers
    finally:
        for worker in workers:
            stop(worker.process, group=True)


def test_a_project_runs_on_two_celery_workers_with_every_entity_loaded(tmp_path: Path) -> None:
    project = tmp_path / "project"
    sources = write_project(project)
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    # Create the instance's SQLite schema once, before three processes open it at the same time.
    open_instance(dagster_home).dispose()

    with redis_server(tmp_path / "redis") as redis_url:
        env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # dagster-celery starts `celery` by name
            "DAGSTER_HOME": str(dagster_home),
            "HYGGE_PROJECT": str(project / "hygge.yml"),
            "HYGGE_CELERY_BROKER": f"{redis_url}/0",
            "HYGGE_CELERY_BACKEND": f"{redis_url}/1",
        }
        with celery_workers(env, tmp_path) as workers:
            run = subprocess.run(
                [str(BIN / "dagster"), "job", "execute", "-f", str(EXAMPLE / "celery_location.py"), "-j", "hygge_entities"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
            )
            logs = "\n".join(f"--- {w.name}\n{tail(w.log)}" for w in workers)
            assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}\n{logs}"
            worker_of_pid = {pid: worker.name for worker in workers for pid in worker.pids()}

    with open_instance(dagster_home) as instance:
        (record,) = instance.get_runs()
        assert record.status == DagsterRunStatus.SUCCESS
        events = instance.all_logs(record.run_id)

        # Every entity: its own materialisation in this run with the source's row count, and passing checks.
        for (flow, entity), table in sources.items():
            key = AssetKey([flow, entity])
            (materialization,) = instance.fetch_materializations(key, limit=5).records
            assert materialization.run_id == record.run_id
            assert materialization.asset_materialization.metadata["dagster/row_count"].value == table.num_rows
            checks = {
                e.dagster_event.event_specific_data.check_name: e.dagster_event.event_specific_data.passed
                for e in events
                if e.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION
                and e.dagster_event.event_specific_data.asset_key == key
            }
            assert checks and all(checks.values()), (key, checks)

        # Which worker ran each step: the name dagster-celery records as the step starts in a worker, and the
        # worker whose process tree the step's own events came from. They must agree.
        named = {
            e.step_key: e.dagster_event.event_specific_data.metadata["Celery worker"].value.split("@")[0]
            for e in events
            if e.dagster_event_type == DagsterEventType.ENGINE_EVENT
            and "Celery worker" in e.dagster_event.event_specific_data.metadata
        }
        started_in = {
            e.step_key: worker_of_pid.get(e.dagster_event.pid, f"pid {e.dagster_event.pid}, in no worker")
            for e in events
            if e.dagster_event_type == DagsterEventType.STEP_START
        }
        succeeded = {e.step_key for e in events if e.dagster_event_type == DagsterEventType.STEP_SUCCESS}

    steps = {f"each__{entity}" for entity in FLOWS["each"][1]} | {SHARED_STEP}
    assert succeeded == steps
    assert started_in == named, "each step ran in the worker that claimed it"
    assert set(named) == steps
    assert set(named.values()) == set(WORKERS), f"both workers should run steps: {named}"

    # Content, not counts: every entity's lake files hold exactly its source rows.
    for (flow, entity), table in sources.items():
        files = sorted((project / "lake" / flow / entity).glob("*.parquet"))
        assert files, f"{flow}/{entity} has no lake files"
        landed = pq.read_table(files).sort_by("id")
        assert landed.column_names == table.column_names
        assert landed.to_pylist() == table.to_pylist(), f"{flow}/{entity}"

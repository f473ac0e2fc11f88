"""A step process that cannot load the project (its catalog query fails) fails the run; it never waits on a pool.

Before, an entity step whose project load failed inside the step process could leave the
executor waiting on the connection's Dagster pool. Here the parent's discovery succeeds and
every later one fails, so each step process fails while loading the code location, with
``pool_size: 1`` set on the instance as ``hygge start`` sets it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import fake_homes  # noqa: F401  (registers the test_memory home here; sitecustomize does it in every child)
import pytest
from dagster import DagsterRunStatus

from hygge_cli.instance import open_instance
from hygge_core import load_project
from hygge_dagster import apply_pool_limits

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent

pytestmark = pytest.mark.slow


# A one-step run executes in the run's own process (which loaded the project already) unless the project
# names its executor: the shared step is forced into a step process here.
@pytest.mark.parametrize("dagster", ["{step: entity}", "{step: flow, executor: multiprocess}"])
def test_a_discovery_that_fails_inside_a_step_fails_the_run(write_project, tmp_path: Path, dagster: str) -> None:
    marker = tmp_path / "catalog.once"
    root = write_project(
        f"""
        name: dead_catalog
        dagster: {dagster}
        connections:
          db: {{type: postgres, server: localhost, database: nothing, pool_size: 1}}
        flows:
          f:
            home: {{type: test_memory, connection: db, rows: 10, catalog: [a, b, c], catalog_once_marker: {marker}}}
            store: {{type: parquet, path: lake}}
            entities: {{include: ["*"]}}
        """
    )
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with open_instance(home) as instance:
        assert apply_pool_limits(instance, load_project(root)) == {"hygge_db": 1}  # as a hygge start before it left it
    marker.unlink()  # that load was only to set the pool; the command's own load is the one that succeeds
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text("import fake_homes  # the test home type, in every process of the run\n")
    python_path = [str(hook), str(HERE), os.environ.get("PYTHONPATH", "")]
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "HYGGE_PROJECT": str(root / "hygge.yml"),
        "PYTHONPATH": os.pathsep.join(python_path).rstrip(os.pathsep),
    }
    done = subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "hygge_dagster.definitions", "--select", "*"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a guard against the hang this test is about, not a speed limit
    )
    assert done.returncode != 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "the catalog query failed (test: the server went away)" in done.stdout + done.stderr
    assert marker.exists()
    with open_instance(home) as instance:
        (run,) = instance.get_runs()
        assert run.status == DagsterRunStatus.FAILURE
        failures = [
            entry.dagster_event.event_specific_data.error.to_string()
            for entry in instance.all_logs(run.run_id)
            if entry.dagster_event is not None and entry.dagster_event.event_type_value == "PIPELINE_FAILURE"
        ]
        assert len(failures) == 1 and "the catalog query failed (test: the server went away)" in failures[0]
        assert instance.event_log_storage.get_concurrency_info("hygge_db").claimed_slots == []
    assert not (root / "lake").exists() or not any((root / "lake").glob("*/*.parquet"))

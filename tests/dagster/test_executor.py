"""Runs launched outside ``hygge start`` (the Dagster CLI here; the UI and schedules alike) pick their process model.

A run of one step executes in the run's own process (no forkserver, no step process); a run of several steps
uses the multiprocess executor; a project that names its executor always gets it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from hygge_cli.instance import open_instance

BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow  # Dagster CLI runs


def materialize(sample_project: Path, home: Path, selection: str) -> list[str]:
    """``dagster asset materialize`` of ``selection``; the engine messages of the run it recorded."""
    env = {**os.environ, "DAGSTER_HOME": str(home), "HYGGE_PROJECT": str(sample_project)}
    done = subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "hygge_dagster.definitions", "--select", selection],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    with open_instance(home) as instance:
        run = instance.get_runs(limit=1)[0]
        assert run.is_success
        return [entry.message for entry in instance.all_logs(run.run_id) if entry.message]


@pytest.mark.parametrize("named", [False, True])
def test_one_step_runs_in_the_run_process_unless_the_project_names_its_executor(
    sample_project: Path, tmp_path: Path, named: bool
) -> None:
    if named:
        text = sample_project.read_text(encoding="utf-8")
        sample_project.write_text(text + "\ndagster: {executor: multiprocess}\n", encoding="utf-8")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")

    one = materialize(sample_project, home, "files_to_lake/orders")
    in_process = [m for m in one if re.match(r"Executing steps in process \(pid: \d+\)", m)]
    multiprocess = [m for m in one if "multiprocess executor" in m]
    assert multiprocess if named else in_process, one
    assert not (in_process if named else multiprocess), one

    two = materialize(sample_project, home, "files_to_lake/orders,files_to_lake/products")
    assert any("multiprocess executor" in m for m in two), two  # two entity steps: a process each

    lake = tmp_path / "lake" / "sample"
    assert pq.read_table(sorted((lake / "orders").glob("*.parquet"))).num_rows > 0
    assert pq.read_table(sorted((lake / "products").glob("*.parquet"))).num_rows > 0

"""What a user sees of hygge's Dagster side from the command line: ``--version``, ``hygge dev`` and the README's
Dagster CLI example, each a real process on a project made by ``hygge init``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus

from hygge_cli.instance import open_instance

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HYGGE = str(BIN / "hygge")

LOCATION_QUERY = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
ASSETS_QUERY = "{ assetNodes { assetKey { path } } }"


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "COLUMNS": "200", **extra}
    env.pop("DAGSTER_HOME", None)  # the project's own instance, as a user without DAGSTER_HOME gets
    env.pop("HYGGE_PROJECT", None)
    return env


@pytest.fixture
def project(tmp_path: Path) -> Path:
    subprocess.run([HYGGE, "init", "my_lake"], cwd=tmp_path, env=_env(), check=True, capture_output=True)
    return tmp_path / "my_lake"


def test_version_is_the_installed_package_version(tmp_path: Path) -> None:
    declared = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    done = subprocess.run([HYGGE, "--version"], cwd=tmp_path, env=_env(), capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"hygge {declared}\n", "")


def _post(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


class DevServer:
    """``hygge dev`` in its own process group, its output (stdout and stderr together) collected as it comes."""

    def __init__(self, project: Path, port: int) -> None:
        self.port = port
        self.process = subprocess.Popen(
            [HYGGE, "dev", "--port", str(port)],
            cwd=project,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # so stopping it stops its webserver, daemon and code server too
        )
        self.lines: list[str] = []
        self.serving = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:  # drained to the end, so a full pipe never blocks the server
            self.lines.append(line)
            if "Serving dagster-webserver" in line:
                self.serving.set()
        self.serving.set()  # the process ended: wake the waiter, which then sees it is gone

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_until_loaded(self) -> list[dict]:
        """The code locations once none is loading. Bounded by the server itself: it ends up serving or exits."""
        self.serving.wait()
        assert self.process.poll() is None, f"hygge dev exited:\n{self.output[-3000:]}"
        while True:
            try:
                entries = _post(self.port, LOCATION_QUERY)["data"]["workspaceOrError"]["locationEntries"]
            except (urllib.error.URLError, ConnectionError):  # logged "Serving" a moment before it listens
                entries = []
            if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
                return entries
            assert self.process.poll() is None, f"hygge dev exited:\n{self.output[-3000:]}"
            time.sleep(0.5)

    def stop(self) -> str:
        os.killpg(self.process.pid, signal.SIGINT)  # what Ctrl-C sends
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._reader.join()
        return self.output


@contextmanager
def dev_server(project: Path) -> Iterator[DevServer]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = DevServer(project, port)
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_dev_serves_one_location_named_after_the_project_without_dagster_warnings(project: Path) -> None:
    with dev_server(project) as server:
        entries = server.wait_until_loaded()
        nodes = _post(server.port, ASSETS_QUERY)["data"]["assetNodes"]
    assert [entry["name"] for entry in entries] == ["my_lake"]  # name: in hygge.yml, not hygge_dagster.definitions
    assert {tuple(node["assetKey"]["path"]) for node in nodes} == {("sample_to_lake", "customers"), ("sample_to_lake", "orders")}
    output = server.output
    assert "Serving dagster-webserver" in output
    # `dagster dev` printed "SupersessionWarning: Function `dev_command` is superseded ... Use 'dg dev' instead."
    assert "superseded" not in output.lower() and "SupersessionWarning" not in output, output


@pytest.mark.slow
def test_dev_names_the_location_after_an_explicit_project_name(project: Path) -> None:
    config = project / "hygge.yml"
    config.write_text(config.read_text().replace("name: my_lake", "name: sales lake"))
    with dev_server(project) as server:
        entries = server.wait_until_loaded()
    assert [entry["name"] for entry in entries] == ["sales lake"]
    workspace = (project / ".dagster" / "hygge-workspace.yaml").read_text()
    assert 'location_name: "sales lake"' in workspace and "module_name: hygge_dagster.definitions" in workspace


def _readme_block(marker: str) -> str:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(rf"<!-- {marker} -->\s*```bash\n(.*?)```", readme, re.S)
    assert block, f"README lost its {marker} block"
    return block.group(1)


@pytest.mark.slow
def test_readme_dagster_cli_example_runs_on_the_project_instance(project: Path) -> None:
    """The README's command, run as written from the folder above the project (where `hygge init` was run)."""
    script = "set -euo pipefail\n" + _readme_block("dagster-cli")
    env = _env(PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", DAGSTER_DG_UPDATE_CHECK_ENABLED="0")
    done = subprocess.run(["bash", "-c", script], cwd=project.parent, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "superseded" not in (done.stdout + done.stderr).lower()

    orders = pq.read_table(sorted((project / "lake" / "orders").glob("*.parquet")))
    assert orders.num_rows == 1000
    assert not (project / "lake" / "customers").exists()  # only the selected asset ran
    with open_instance(project / ".dagster") as instance:
        (run,) = instance.get_runs()
        assert run.status == DagsterRunStatus.SUCCESS
        (record,) = instance.fetch_materializations(AssetKey(["sample_to_lake", "orders"]), limit=10).records
        assert record.run_id == run.run_id
        assert record.asset_materialization.metadata["hygge/destination"].value == str(project / "lake" / "orders")
    assert list(project.parent.glob("tmp*")) == []  # no throwaway instance beside the project

    with dev_server(project) as server:  # and the UI shows that run
        server.wait_until_loaded()
        runs = _post(server.port, "{ runsOrError { ... on Runs { results { runId status } } } }")["data"]["runsOrError"]
    assert runs["results"] == [{"runId": run.run_id, "status": "SUCCESS"}]


REEXECUTE = """mutation {{ launchPipelineReexecution(reexecutionParams: {{parentRunId: "{run_id}", strategy: {strategy}}}) {{
  __typename ... on LaunchRunSuccess {{ run {{ runId }} }} ... on PythonError {{ message }} ... on InvalidSubsetError {{ message }}
}} }}"""
RUN_QUERY = (
    '{{ runOrError(runId: "{run_id}") {{ ... on Run {{ status pipelineName repositoryOrigin {{ repositoryLocationName }} }} }} }}'
)


def _materialized(instance: DagsterInstance, run_id: str) -> set[str]:
    return {
        "/".join(entry.dagster_event.asset_key.path)
        for entry in instance.all_logs(run_id)
        if entry.dagster_event is not None and entry.dagster_event.event_type_value == "ASSET_MATERIALIZATION"
    }


@pytest.mark.slow
def test_a_hygge_start_run_is_re_executed_from_failure_in_the_ui(project: Path) -> None:
    """The run ``hygge start`` made belongs to the UI's code location, and "re-execute from failure" loads only what failed.

    Both entities share one step (``step: flow``); ``orders`` fails on a corrupt source file, is repaired,
    and the re-execution launched over GraphQL materialises ``orders`` alone.
    """
    config = project / "hygge.yml"
    config.write_text(config.read_text().replace("    run_type: full_drop", "    run_type: full_drop\n    dagster: {step: flow}"))
    source = project / "data" / "home" / "orders" / "orders.parquet"
    good = source.read_bytes()
    source.write_bytes(b"PAR1 not really parquet PAR1")
    failed = subprocess.run([HYGGE, "start"], cwd=project, env=_env(), capture_output=True, text=True)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "sample_to_lake/orders" in failed.stdout and "FAILED" in failed.stdout
    source.write_bytes(good)
    customers_before = sorted((project / "lake" / "customers").glob("*.parquet"))
    with open_instance(project / ".dagster") as instance:
        (parent,) = instance.get_runs()
        assert _materialized(instance, parent.run_id) == {"sample_to_lake/customers"}
    with dev_server(project) as server:
        server.wait_until_loaded()
        shown = _post(server.port, RUN_QUERY.format(run_id=parent.run_id))["data"]["runOrError"]
        assert shown == {
            "status": "FAILURE",
            "pipelineName": "hygge_entities",
            "repositoryOrigin": {"repositoryLocationName": "my_lake"},
        }
        answer = _post(server.port, REEXECUTE.format(run_id=parent.run_id, strategy="FROM_FAILURE"))
        launched = answer["data"]["launchPipelineReexecution"]
        assert launched["__typename"] == "LaunchRunSuccess", answer
        child_id = launched["run"]["runId"]
        status = None
        while status not in ("SUCCESS", "FAILURE", "CANCELED"):  # ends when the run does; the server bounds it
            time.sleep(0.5)
            status = _post(server.port, RUN_QUERY.format(run_id=child_id))["data"]["runOrError"]["status"]
        assert status == "SUCCESS", server.output[-3000:]
    with open_instance(project / ".dagster") as instance:
        assert _materialized(instance, child_id) == {"sample_to_lake/orders"}
    assert pq.read_table(sorted((project / "lake" / "orders").glob("*.parquet"))).equals(pq.read_table(source))
    assert sorted((project / "lake" / "customers").glob("*.parquet")) == customers_before  # not loaded again


def test_dev_never_overwrites_a_workspace_file_of_the_user_s_own(tmp_path: Path) -> None:
    """$DAGSTER_HOME may be shared: hygge writes only its own file there."""
    from hygge_cli.dev import write_workspace

    home = tmp_path / "dagster_home"
    home.mkdir()
    mine = home / "workspace.yaml"
    mine.write_text("load_from:\n  - python_file: my_pipelines.py\n", encoding="utf-8")
    written = write_workspace(home, config_file=tmp_path / "hygge.yml", location_name="lake")
    assert written == home / "hygge-workspace.yaml"
    assert mine.read_text(encoding="utf-8") == "load_from:\n  - python_file: my_pipelines.py\n"
    assert 'location_name: "lake"' in written.read_text(encoding="utf-8")

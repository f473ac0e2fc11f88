"""What the Dagster UI's asset page shows, read over GraphQL from a real `dagster-webserver`.

A project loads an entity twice (1,000 rows, then an incremental append of 1,000 more) on a
private instance; the webserver then serves the project from that instance. The asset must
show the table's total as its row count, its column lineage from the source folder, table
name, URI, kinds and a code reference to its line in hygge.yml; and a check launched on its
own (the UI's "Execute" on a check) must run against the published table and pass.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import AssetKey

from hygge_cli.instance import open_instance
from hygge_dagster import build_definitions

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ORDERS = ["files", "orders"]

pytestmark = pytest.mark.slow

ASSET_QUERY = """
query Asset($key: AssetKeyInput!) {
  assetNodes(assetKeys: [$key]) {
    kinds
    dependencyKeys { path }
    metadataEntries {
      label
      ... on TextMetadataEntry { text }
      ... on CodeReferencesMetadataEntry {
        codeReferences { ... on LocalFileCodeReference { filePath lineNumber } }
      }
      ... on TableColumnLineageMetadataEntry {
        lineage { columnName columnDeps { assetKey { path } columnName } }
      }
      ... on TableSchemaMetadataEntry { schema { columns { name type } } }
    }
  }
  assetOrError(assetKey: $key) {
    ... on Asset {
      assetMaterializations(limit: 1) {
        metadataEntries {
          label
          ... on IntMetadataEntry { intValue }
          ... on TableColumnLineageMetadataEntry { lineage { columnName } }
        }
      }
    }
  }
}
"""

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
  }
}
"""

RUN = "query Run($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"

CHECK_EXECUTIONS = """
query Checks($key: AssetKeyInput!, $name: String!) {
  assetCheckExecutions(assetKey: $key, checkName: $name, limit: 5) {
    runId
    status
    evaluation { success metadataEntries { label ... on IntMetadataEntry { intValue } } }
  }
}
"""


def _post(port: int, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.load(response)
    assert "errors" not in answer, answer["errors"]
    return answer["data"]


@contextmanager
def _webserver(project: Path, dagster_home: Path) -> Iterator[int]:
    """``dagster-webserver -w workspace.yaml`` on the project and instance; yields its port once the code location loaded."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "HYGGE_PROJECT": str(project)}
    server = subprocess.Popen(
        [str(BIN / "dagster-webserver"), "-w", str(REPO_ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, so stopping it stops its code server and runs too
    )
    try:
        while True:  # bounded by the server: it ends up serving the location, or exits
            assert server.poll() is None, server.stderr.read().decode()[-3000:] if server.stderr else "webserver exited"
            try:
                nodes = _post(port, "{ assetNodes { assetKey { path } } }")["assetNodes"]
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                nodes = []
            if nodes:
                break
            time.sleep(0.5)
        yield port
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _wait_for_run(port: int, run_id: str) -> str:
    while True:  # bounded by Dagster: a launched run ends as SUCCESS, FAILURE or CANCELED
        status = _post(port, RUN, {"id": run_id})["runOrError"]["status"]
        assert status != "QUEUED", "the run was queued: the instance must start runs at once (DefaultRunCoordinator)"
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(0.5)


def _write_source(project: Path, name: str, ids: range) -> None:
    folder = project / "home" / "orders"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"id": pa.array(ids, pa.int64()), "amount": [i * 1.5 for i in ids]}), folder / name)


def test_asset_page_shows_table_metadata_and_runs_a_check_alone(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "hygge.yml").write_text(
        textwrap.dedent(
            """
            name: page
            dagster: {source_assets: true}
            flows:
              files:
                home: {type: parquet, path: home}
                store: {type: parquet, path: lake}
                run_type: incremental
                watermark: {key: id}
                entities:
                  - orders
            """
        ).lstrip()
    )
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    # Runs launched over GraphQL start at once, as under `hygge dev`, without a daemon to dequeue them.
    (dagster_home / "dagster.yaml").write_text(
        "run_coordinator:\n  module: dagster.core.run_coordinator\n  class: DefaultRunCoordinator\n"
    )
    _write_source(project, "a.parquet", range(0, 1000))
    with open_instance(dagster_home) as instance:
        for file, ids in (("a.parquet", None), ("b.parquet", range(1000, 2000))):
            if ids is not None:
                _write_source(project, file, ids)
            job = build_definitions(project).resolve_implicit_global_asset_job_def()
            assert job.execute_in_process(instance=instance, asset_selection=[AssetKey(ORDERS)]).success

    with _webserver(project, dagster_home) as port:
        key = {"path": ORDERS}
        data = _post(port, ASSET_QUERY, {"key": key})
        (node,) = data["assetNodes"]
        entries = {entry["label"]: entry for entry in node["metadataEntries"]}
        assert set(node["kinds"]) == {"parquet", "hygge"}
        assert entries["dagster/table_name"]["text"] == "files.orders"
        assert entries["dagster/uri"]["text"] == (project / "lake" / "orders").as_uri()
        (reference,) = entries["dagster/code_references"]["codeReferences"]
        assert reference == {"filePath": str(project / "hygge.yml"), "lineNumber": 10}
        assert (project / "hygge.yml").read_text().splitlines()[9].strip() == "- orders"
        source = ["files", "home_orders"]
        assert node["dependencyKeys"] == [{"path": source}]
        lineage = {item["columnName"]: item["columnDeps"] for item in entries["dagster/column_lineage"]["lineage"]}
        assert lineage == {
            "id": [{"assetKey": {"path": source}, "columnName": "id"}],
            "amount": [{"assetKey": {"path": source}, "columnName": "amount"}],
        }
        assert entries["dagster/column_schema"]["schema"]["columns"] == [
            {"name": "id", "type": "int64"},
            {"name": "amount", "type": "double"},
        ]
        (materialization,) = data["assetOrError"]["assetMaterializations"]
        after = {entry["label"]: entry for entry in materialization["metadataEntries"]}
        assert after["dagster/row_count"]["intValue"] == 2000  # the table's total after the append
        assert after["hygge/rows_loaded"]["intValue"] == 1000  # what the append itself loaded
        assert {item["columnName"] for item in after["dagster/column_lineage"]["lineage"]} == {"id", "amount"}

        params = {
            "selector": {
                "repositoryLocationName": "hygge",
                "repositoryName": "__repository__",
                "jobName": "__ASSET_JOB",
                "assetSelection": [],
                "assetCheckSelection": [{"assetKey": key, "name": "row_count"}],
            },
            "mode": "default",
            "runConfigData": {},
        }
        launched = _post(port, LAUNCH, {"params": params})["launchPipelineExecution"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]
        assert _wait_for_run(port, run_id) == "SUCCESS"
        executions = _post(port, CHECK_EXECUTIONS, {"key": key, "name": "row_count"})["assetCheckExecutions"]
        (alone,) = [execution for execution in executions if execution["runId"] == run_id]
        assert alone["status"] == "SUCCEEDED"
        assert alone["evaluation"]["success"] is True
        figures = {entry["label"]: entry.get("intValue") for entry in alone["evaluation"]["metadataEntries"]}
        assert figures["rows_in_table"] == 2000 and figures["rows_last_run"] == 1000

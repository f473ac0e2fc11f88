"""The entry points a user types: `dagster asset materialize -m ...` and `dagster-webserver -w workspace.yaml`.

Both run as real subprocesses with a temporary DAGSTER_HOME and HYGGE_PROJECT pointing at a
private copy of the sample, so the repository is never written.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import AssetKey

from hygge_cli.instance import open_instance

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


def _env(sample_project: Path, dagster_home: Path) -> dict[str, str]:
    dagster_home.mkdir()
    return {**os.environ, "DAGSTER_HOME": str(dagster_home), "HYGGE_PROJECT": str(sample_project)}


def test_dagster_asset_materialize_cli(sample_project: Path, tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    done = subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "hygge_dagster.definitions", "--select", "files_to_lake/orders"],
        cwd=tmp_path,
        env=_env(sample_project, home),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lake = sample_project.parent.parent / "lake" / "sample"
    table = pq.read_table(sorted((lake / "orders").glob("*.parquet")))
    assert table.num_rows == 2000
    assert not (lake / "customers").exists()
    with open_instance(home) as instance:
        (record,) = instance.fetch_materializations(AssetKey(["files_to_lake", "orders"]), limit=10).records
        metadata = record.asset_materialization.metadata
        assert metadata["dagster/row_count"].value == 2000
        assert metadata["hygge/destination"].value == str(lake / "orders")
        assert instance.fetch_materializations(AssetKey(["files_to_lake", "customers"]), limit=10).records == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _post_graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_webserver_serves_the_sample_assets(sample_project: Path, tmp_path: Path) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [str(BIN / "dagster-webserver"), "-w", str(REPO_ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        cwd=tmp_path,
        env=_env(sample_project, tmp_path / "dagster_home"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, so stopping it stops its code server too
    )
    try:
        deadline = time.monotonic() + 300  # readiness bound only, so a broken server cannot hang CI
        while True:
            assert server.poll() is None, server.stderr.read().decode()[-3000:] if server.stderr else "webserver exited"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5):
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert time.monotonic() < deadline, "webserver did not start"
                time.sleep(0.5)
        keys: set[tuple[str, ...]] = set()
        while time.monotonic() < deadline:  # the code location loads after the server answers
            answer = _post_graphql(port, "{ assetNodes { assetKey { path } } }")
            keys = {tuple(node["assetKey"]["path"]) for node in (answer.get("data") or {}).get("assetNodes") or []}
            if keys:
                break
            time.sleep(0.5)
        assert keys == {("files_to_lake", "customers"), ("files_to_lake", "orders"), ("files_to_lake", "products")}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()

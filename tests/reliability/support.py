"""Helpers for the reliability suite: real Parquet data, real OS failures, real child processes.

Every scenario here compares the destination's *content* before and after a
failure: the files, their bytes and ``_hygge/state.json``. Child processes run
hygge when a test needs something the test process cannot do to itself: run as
an unprivileged user (so permission checks are real even though CI runs as
root), die by SIGKILL at an exact point, or write under a file-size rlimit.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tests.paused_child import PausedChild

REPO_ROOT = Path(__file__).resolve().parents[2]
STAGING = ".hygge-staging"
UNPRIVILEGED = ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups"]

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("tag", pa.string()),
        ("amount", pa.decimal128(12, 2)),
        ("at", pa.timestamp("us", tz="UTC")),
        ("payload", pa.binary()),
    ]
)


def make_table(ids: range, tag: str, *, payload_bytes: int = 8, random_payload: bool = False) -> pa.Table:
    """Rows whose every column depends on ``id`` and ``tag``, so a mix-up of versions shows in the content.

    ``random_payload`` makes the data incompressible, for tests that must fill a disk.
    """
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return pa.table(
        {
            "id": pa.array(list(ids), pa.int64()),
            "tag": [f"{tag}-{i}" for i in ids],
            "amount": pa.array([Decimal(i) / 100 for i in ids], pa.decimal128(12, 2)),
            "at": pa.array([start + timedelta(seconds=i) for i in ids], pa.timestamp("us", tz="UTC")),
            "payload": [
                os.urandom(payload_bytes) if random_payload else f"{tag}{i}".encode().ljust(payload_bytes, b".") for i in ids
            ],
        },
        schema=SCHEMA,
    )


def write_source(path: Path, table: pa.Table, *, row_group_rows: int = 250) -> Path:
    """Write a source file with small row groups, so the home yields many batches."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=row_group_rows, compression="zstd")
    return path


def read_entity(entity_dir: Path) -> pa.Table:
    """The entity as any Parquet reader sees it (``_hygge/`` is skipped), sorted by id for comparison."""
    files = sorted(p for p in entity_dir.rglob("*.parquet") if "_hygge" not in p.relative_to(entity_dir).parts)
    tables = [pq.read_table(p) for p in files]
    table = pa.concat_tables(tables) if tables else SCHEMA.empty_table()
    return table.sort_by("id")


def snapshot(entity_dir: Path) -> dict[str, str]:
    """Every file of the entity folder (state included) with a hash of its bytes."""
    if not entity_dir.exists():
        return {}
    return {
        str(p.relative_to(entity_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(entity_dir.rglob("*"))
        if p.is_file()
    }


def read_state(entity_dir: Path) -> dict:
    return json.loads((entity_dir / "_hygge" / "state.json").read_text(encoding="utf-8"))


def staging_leftovers(entity_dir: Path) -> list[str]:
    """What a finished run left in ``.hygge-staging`` besides lock files (must be nothing)."""
    root = entity_dir.parent / STAGING
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if not p.name.endswith(".lock"))


def project_yaml(
    *,
    run_type: str = "full_drop",
    entities: list[str | dict] | None = None,
    home: dict | None = None,
    store: dict | None = None,
    flow: dict | None = None,
) -> str:
    """A one-flow project: ``home/<entity>`` -> ``lake/<entity>``, with tiny row groups and files."""
    config = {
        "name": "reliability",
        "flows": {
            "files": {
                "home": {"type": "parquet", "path": "home", **(home or {})},
                "store": {"type": "parquet", "path": "lake", "row_group_rows": 200, "file_rows": 1000, **(store or {})},
                "entities": entities or ["items"],
                "run_type": run_type,
                "retries": {"max": 0, "delay": "0s"},
                **(flow or {}),
            }
        },
    }
    return yaml.safe_dump(config, sort_keys=False)


def write_project_at(root: Path, yaml_text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "hygge.yml").write_text(yaml_text, encoding="utf-8")
    return root


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder under the system temp dir that the unprivileged user can traverse (pytest's tmp dirs are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="hygge-reliability-"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        _make_removable(path)
        shutil.rmtree(path, ignore_errors=True)


def _make_removable(path: Path) -> None:
    for folder, _dirs, _files in os.walk(path):
        os.chmod(folder, 0o777)


def child_env() -> dict[str, str]:
    """Environment for a child ``python``: imports this checkout of hygge whoever the user is."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "COV_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["HOME"] = tempfile.gettempdir()
    return env


# The child's prelude: load the project, expose ``pause(marker)`` for kill points, and
# ``report()`` which runs the entity and prints one JSON line with the outcome.
CHILD_PRELUDE = """
import json, os, sys, time
import hygge_core
from hygge_core import publish
from hygge_core.stores import parquet as parquet_store

PROJECT = sys.argv[1]
ENTITY = sys.argv[2]

def pause(marker):
    print(marker, flush=True)
    time.sleep(3600)

def report():
    project = hygge_core.load_project(PROJECT)
    try:
        result = hygge_core.run_entity(project.entity(ENTITY))
        print("RESULT " + json.dumps({"status": result.status, "rows": result.rows}), flush=True)
    except hygge_core.HyggeError as error:
        print("RESULT " + json.dumps({"error_type": type(error).__name__, "error": str(error)}), flush=True)
"""


def child_script(body: str) -> str:
    return CHILD_PRELUDE + "\n" + textwrap.dedent(body) + "\nreport()\n"


@dataclass
class ChildOutcome:
    returncode: int
    result: dict
    stdout: str
    stderr: str


def run_child(body: str, project: Path, entity: str, *, unprivileged: bool = False) -> ChildOutcome:
    """Run ``report()`` after ``body`` in a fresh interpreter and return its JSON outcome."""
    command = [sys.executable, "-c", child_script(body), str(project), entity]
    if unprivileged:
        command = UNPRIVILEGED + command
    done = subprocess.run(command, capture_output=True, text=True, env=child_env(), cwd=tempfile.gettempdir())
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"child printed no result (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    return ChildOutcome(done.returncode, json.loads(lines[-1].removeprefix("RESULT ")), done.stdout, done.stderr)


def finish(child: PausedChild) -> ChildOutcome:
    """Let a paused child run to its end and return its JSON outcome."""
    stdout, stderr = child.process.communicate()
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"child printed no result (exit {child.process.returncode}):\n{stdout}\n{stderr}"
    return ChildOutcome(child.process.returncode, json.loads(lines[-1].removeprefix("RESULT ")), stdout, stderr)


@pytest.fixture
def paused_children() -> Iterator[Callable[[str, Path, str], PausedChild]]:
    """Start paused children; any still alive when the test ends are killed (by their own group id)."""
    started: list[PausedChild] = []

    def start(body: str, project: Path, entity: str) -> PausedChild:
        child = PausedChild(child_script(body), [str(project), entity], child_env())
        started.append(child)
        return child

    yield start
    for child in started:
        child.kill()

"""Data, projects and read-back helpers for the Delta store tests.

Tables are read back the way users read them, with delta-rs
(``DeltaTable(...).to_pyarrow_table()``) and with Polars (``scan_delta``), and
compared exactly, after sorting, with the rows the test wrote to its source.
"""

from __future__ import annotations

import os
import textwrap
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from tests.paused_child import PausedChild

from .lakes import Lake

REPO_ROOT = Path(__file__).resolve().parents[2]

SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("tag", pa.string()),
        ("amount", pa.decimal128(12, 2)),
        ("at", pa.timestamp("us", tz="UTC")),
        ("payload", pa.binary()),
    ]
)


def make_table(ids: range | list[int], tag: str, *, extra: str | None = None) -> pa.Table:
    """Rows whose every column depends on ``id`` and ``tag``, so a mix-up of runs shows in the content."""
    ids = list(ids)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    columns: dict[str, Any] = {
        "id": pa.array(ids, pa.int64()),
        "tag": pa.array([f"{tag}-{i}" for i in ids], pa.string()),
        "amount": pa.array([Decimal(i) / 100 for i in ids], pa.decimal128(12, 2)),
        "at": pa.array([start + timedelta(seconds=i) for i in ids], pa.timestamp("us", tz="UTC")),
        "payload": pa.array([f"{tag}{i}".encode() for i in ids], pa.binary()),
    }
    schema = SCHEMA
    if extra is not None:
        columns[extra] = pa.array([f"{extra}-{i}" for i in ids], pa.string())
        schema = schema.append(pa.field(extra, pa.string()))
    return pa.table(columns, schema=schema)


def write_source(path: Path, table: pa.Table, *, row_group_rows: int = 100) -> Path:
    """A source file with small row groups, so the home yields many batches."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=row_group_rows)
    return path


def project_yaml(
    lake: Lake,
    *,
    run_type: str = "full_drop",
    store: dict | None = None,
    options: dict[str, str] | None = None,
    flow: dict | None = None,
) -> str:
    """One flow, ``home/<entity>`` -> the lake's ``<root>/<entity>``; option values come from ``${ENV}`` variables."""
    chosen = lake.options if options is None else options
    store_block: dict[str, Any] = {"type": "delta", "path": lake.root if not lake.is_local else str(Path(lake.root))}
    if chosen:
        store_block["storage_options"] = {key: f"${{HYGGE_TEST_{key}}}" for key in chosen}
    store_block.update(store or {})
    config = {
        "name": "delta_tests",
        "flows": {
            "files": {
                "home": {"type": "parquet", "path": "home", "batch_size": 100},
                "store": store_block,
                "entities": ["items"],
                "run_type": run_type,
                "retries": {"max": 0, "delay": "0s"},
                **(flow or {}),
            }
        },
    }
    return yaml.safe_dump(config, sort_keys=False)


def option_env(options: dict[str, str]) -> dict[str, str]:
    """The environment variables ``project_yaml`` refers to."""
    return {f"HYGGE_TEST_{key}": value for key, value in options.items()}


def write_project(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "hygge.yml").write_text(text, encoding="utf-8")
    return root


def delta_table(lake: Lake, uri: str, version: int | None = None):
    from deltalake import DeltaTable

    return DeltaTable(uri, storage_options=lake.options or None, version=version)


def read_delta(lake: Lake, uri: str, *, version: int | None = None, schema: pa.Schema = SCHEMA) -> pa.Table:
    """The table through delta-rs, in ``schema``'s column order and types, sorted by id."""
    table = pa.table(delta_table(lake, uri, version).to_pyarrow_table())
    return table.select(schema.names).cast(schema).sort_by("id")


def read_polars(lake: Lake, uri: str, *, schema: pa.Schema = SCHEMA) -> pa.Table:
    import polars as pl

    frame = pl.scan_delta(uri, storage_options=lake.options or None).collect()
    return frame.to_arrow().select(schema.names).cast(schema).sort_by("id")


def hygge_commits(lake: Lake, uri: str) -> list[dict]:
    """The commits that carry hygge's state, newest first."""
    return [commit for commit in delta_table(lake, uri).history() if "hygge" in commit]


# A child run for SIGKILL tests: ``pause(marker)`` prints the marker and sleeps until killed.
CHILD_PRELUDE = """
import json, sys, time
import hygge_core
from hygge_core.stores import delta as delta_store

def pause(marker):
    print(marker, flush=True)
    time.sleep(3600)
"""

CHILD_RUN = """
project = hygge_core.load_project(sys.argv[1])
try:
    result = hygge_core.run_entity(project.entity(sys.argv[2]))
    print("RESULT " + json.dumps({"status": result.status, "rows": result.rows}), flush=True)
except hygge_core.HyggeError as error:
    print("RESULT " + json.dumps({"error_type": type(error).__name__, "error": str(error)}), flush=True)
"""


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return {**env, **extra}


def paused_child(patch: str, project: Path, entity: str, env: dict[str, str]) -> PausedChild:
    """A hygge run of ``entity`` in a child process, ``patch`` applied first; it stops at the marker the patch prints."""
    script = CHILD_PRELUDE + "\n" + textwrap.dedent(patch) + "\n" + CHILD_RUN
    return PausedChild(script, [str(project), entity], child_env(env))

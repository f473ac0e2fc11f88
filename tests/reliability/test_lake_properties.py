"""Property-style: whatever happens, every entity folder is one readable version (issue 9, acceptance).

Random sequences (fixed seeds, so a failure replays) of source changes (files
added with the same, a widened, an extended or an incompatible schema; files
rewritten; files removed), incremental runs and full drops, some killed with
SIGKILL at a random moment, on a project with one entity per ``schema_change``
policy. A small model predicts each run's outcome. After every step, every entity
folder is read by both ``pyarrow.dataset`` and ``polars.scan_parquet``: its files
share one schema, and its rows are exactly the previous expected version or the
new one (the new one only when the run was not refused).

Runs happen in child interpreters (``hygge_core.run_entity``), so a SIGKILL is real.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import yaml

from .support import child_env

POLICIES = {"strict": "fail", "evolving": "evolve", "reloading": "full_drop"}
VARIANTS = {  # name -> (type of `score`, has `extra`)
    "base": ("int32", False),
    "wide": ("int64", False),
    "extra": ("int32", True),
    "text": ("string", False),
}
RUN = """
import json, sys
import hygge_core
project = hygge_core.load_project(sys.argv[1])
try:
    result = hygge_core.run_entity(project.entity(sys.argv[2]), run_type=sys.argv[3])
    print("RESULT " + json.dumps({"status": result.status}), flush=True)
except hygge_core.HyggeError as error:
    print("RESULT " + json.dumps({"error": str(error)}), flush=True)
"""

Row = tuple  # sorted (column, value) pairs


@dataclass
class Version:
    """What an entity folder should hold: column types and rows (``None`` types: never published)."""

    types: dict[str, str] | None = None
    rows: list[Row] = field(default_factory=list)


@dataclass
class Entity:
    name: str
    policy: str
    files: dict[str, tuple[str, list[dict]]] = field(default_factory=dict)  # source file -> (variant, rows)
    pending: set[str] = field(default_factory=set)  # files the next incremental run reads
    version: Version = field(default_factory=Version)


def rows_of(records: list[dict], columns: set[str]) -> list[Row]:
    return by_id([tuple(sorted((column, record.get(column)) for column in columns)) for record in records])


def by_id(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda row: dict(row)["id"])


def merge_types(variants: list[str]) -> dict[str, str] | None:
    """The schema hygge's Parquet home gives a set of files, or ``None`` when they conflict."""
    scores = {VARIANTS[v][0] for v in variants}
    if "string" in scores and len(scores) > 1:
        return None
    types = {
        "id": "int",
        "name": "string",
        "score": "string" if "string" in scores else ("int64" if "int64" in scores else "int32"),
    }
    if any(VARIANTS[v][1] for v in variants):
        types["extra"] = "float"
    return types


def holds(version_type: str, source_type: str) -> bool:
    return version_type == source_type or (version_type == "int64" and source_type == "int32")


def predict(entity: Entity, mode: str) -> Version | None:
    """The next version if the run succeeds, or ``None`` if hygge must refuse it (destination unchanged)."""
    if not entity.files:
        return None  # an empty home folder is a mistake, not an empty table
    everything = list(entity.files)
    if mode == "full_drop":
        return full(entity, everything)
    todo = sorted(entity.pending)
    if not todo:
        return entity.version
    new_types = merge_types([entity.files[name][0] for name in todo])
    if new_types is None:
        return None
    old = entity.version
    records = [record for name in todo for record in entity.files[name][1]]
    if old.types is None:
        return Version(new_types, rows_of(records, set(new_types)))
    added, dropped = set(new_types) - set(old.types), set(old.types) - set(new_types)
    retyped = {c for c in set(new_types) & set(old.types) if not holds(old.types[c], new_types[c])}
    if not (added or dropped or retyped):
        return Version(old.types, by_id(old.rows + rows_of(records, set(old.types))))
    if entity.policy == "fail":
        return None
    if entity.policy == "full_drop":
        return full(entity, everything)
    if any(not holds(new_types[c], old.types[c]) for c in retyped):
        return None  # evolve refuses what is not a widening
    types = {**old.types, **{c: new_types[c] for c in added | retyped}}  # a narrower source type keeps the version's
    previous = [dict(row) for row in old.rows]
    return Version(types, by_id(rows_of(previous, set(types)) + rows_of(records, set(types))))


def full(entity: Entity, names: list[str]) -> Version | None:
    types = merge_types([entity.files[name][0] for name in names])
    if types is None:
        return None
    return Version(types, rows_of([record for name in names for record in entity.files[name][1]], set(types)))


def published(entity_dir: Path) -> Version:
    """Read the folder as lake readers do, asserting one schema, and return what it holds."""
    state_file = entity_dir / "_hygge" / "state.json"
    if not state_file.exists():
        return Version()
    state = json.loads(state_file.read_text(encoding="utf-8"))
    schemas = [pq.read_schema(entity_dir / name) for name in state["files"]]
    assert all(schema.equals(schemas[0], check_metadata=False) for schema in schemas), schemas
    via_pyarrow = ds.dataset(entity_dir, format="parquet").to_table()
    via_polars = pl.scan_parquet(str(entity_dir / "*.parquet")).collect()
    assert via_pyarrow.schema.equals(schemas[0], check_metadata=False)
    assert sorted(via_polars.columns) == sorted(via_pyarrow.column_names)
    columns = set(via_pyarrow.column_names)
    rows = rows_of(via_pyarrow.to_pylist(), columns)
    assert rows_of(via_polars.to_dicts(), columns) == rows
    kinds = {"int64": "int", "int32": "int32", "string": "string", "large_string": "string", "double": "float"}
    types = {f.name: kinds[str(f.type)] for f in schemas[0]}
    if "score" in types and types["score"] == "int":
        types["score"] = "int64"
    types["id"] = "int"
    return Version(types, rows)


def same(actual: Version, expected: Version) -> bool:
    return actual.types == expected.types and actual.rows == expected.rows


class Lake:
    def __init__(self, root: Path, rng: random.Random) -> None:
        self.root = root
        self.rng = rng
        self.next_id = 0
        self.entities = {name: Entity(name, policy) for name, policy in POLICIES.items()}
        config = {
            "name": "properties",
            "flows": {
                "files": {
                    "home": {"type": "parquet", "path": "home"},
                    "store": {"type": "parquet", "path": "lake", "row_group_rows": 50, "file_rows": 120},
                    "run_type": "incremental",
                    "retries": {"max": 0, "delay": "0s"},
                    "entities": [{"name": name, "schema_change": policy} for name, policy in POLICIES.items()],
                }
            },
        }
        root.mkdir(parents=True, exist_ok=True)
        (root / "hygge.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    def write(self, entity: Entity, name: str, variant: str) -> None:
        score_type, extra = VARIANTS[variant]
        count = self.rng.randint(1, 150)
        ids = list(range(self.next_id, self.next_id + count))
        self.next_id += count
        records = [
            {
                "id": i,
                "score": str(i) if score_type == "string" else i * 3,
                "name": f"{name}-{i}",
                **({"extra": i / 4} if extra else {}),
            }
            for i in ids
        ]
        arrow_type = {"int32": pa.int32(), "int64": pa.int64(), "string": pa.string()}[score_type]
        columns = {"id": pa.array(ids, pa.int64()), "score": pa.array([r["score"] for r in records], arrow_type)}
        columns["name"] = pa.array([r["name"] for r in records], pa.string())
        if extra:
            columns["extra"] = pa.array([r["extra"] for r in records], pa.float64())
        folder = self.root / "home" / entity.name
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{name}.tmp"
        pq.write_table(pa.table(columns), temporary)
        os.replace(temporary, folder / name)  # a finished file appears at once, as a careful producer does
        entity.files[name] = (variant, records)
        entity.pending.add(name)

    def step(self) -> str:
        entity = self.rng.choice(list(self.entities.values()))
        action = self.rng.choices(["add", "rewrite", "remove", "incremental", "full_drop"], [30, 7, 5, 45, 13])[0]
        if action == "add" or not entity.files and action in ("rewrite", "remove"):
            variant = self.rng.choices(list(VARIANTS), [40, 20, 25, 15])[0]
            self.write(entity, f"f{self.next_id:06d}.parquet", variant)
            return f"{entity.name}: add {variant}"
        if action == "rewrite":
            name = self.rng.choice(sorted(entity.files))
            self.write(entity, name, entity.files[name][0])
            return f"{entity.name}: rewrite {name}"
        if action == "remove":
            name = self.rng.choice(sorted(entity.files))
            (self.root / "home" / entity.name / name).unlink()
            del entity.files[name]
            entity.pending.discard(name)
            return f"{entity.name}: remove {name}"
        return self.run(entity, action, kill=self.rng.random() < 0.3)

    def run(self, entity: Entity, mode: str, *, kill: bool) -> str:
        expected = predict(entity, mode)
        command = [sys.executable, "-c", RUN, str(self.root), f"files/{entity.name}", mode]
        child = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
            cwd=tempfile.gettempdir(),
            start_new_session=True,
        )
        if kill:
            time.sleep(self.rng.uniform(0.2, 3.0))
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
        stdout, stderr = child.communicate()
        actual = published(self.root / "lake" / entity.name)
        old = entity.version
        lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
        outcome = json.loads(lines[-1].removeprefix("RESULT ")) if lines else {"killed": child.returncode}
        if not lines:
            assert child.returncode == -signal.SIGKILL, f"child failed without a result:\n{stdout}\n{stderr}"
        if expected is not None and same(actual, expected) and not same(actual, old):
            entity.version = expected
            entity.pending = set()
        elif same(actual, old):
            if "status" in outcome:  # hygge said it succeeded: then the model must agree nothing changed
                assert expected is not None and same(expected, old), (
                    f"{entity.name} {mode}: reported {outcome} but nothing changed"
                )
                entity.pending = set()
            else:
                assert expected is None or "killed" in outcome, (
                    f"{entity.name} {mode}: refused ({outcome}) but the model expected success"
                )
        else:
            pytest.fail(f"{entity.name} {mode}: the folder holds neither the old nor the expected version ({outcome})")
        return f"{entity.name}: {mode}{' (killed)' if kill else ''} -> {outcome}"


@pytest.mark.parametrize("seed", [2024, 11, 31337])
def test_every_step_leaves_one_readable_version(tmp_path: Path, seed: int) -> None:
    lake = Lake(tmp_path / "project", random.Random(seed))
    history: list[str] = []
    for _ in range(50):
        history.append(lake.step())
        for entity in lake.entities.values():
            actual = published(lake.root / "lake" / entity.name)
            assert same(actual, entity.version), f"{entity.name} differs from the model after:\n" + "\n".join(history)

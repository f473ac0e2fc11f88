"""Runs that meet: two runs of one entity at once, and one bad entity among good ones."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pyarrow as pa
import pytest

import hygge_core
from hygge_core import TransientError

from .support import (
    finish,
    make_table,
    project_yaml,
    read_entity,
    read_state,
    snapshot,
    staging_leftovers,
    write_project_at,
    write_source,
)

HOLD_IN_WRITE = """
import time
GO = {go!r}
original_write = parquet_store.ParquetWriter.write
def write(self, data):
    if not os.path.exists(GO):
        print("HOLDING", flush=True)
        while not os.path.exists(GO):
            time.sleep(0.02)
    original_write(self, data)
parquet_store.ParquetWriter.write = write
"""


class RetryWatcher(logging.Handler):
    """Sets ``seen`` when the runner logs that an attempt failed because the entity was locked."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "attempt 1 failed" in message and "another hygge run" in message:
            self.seen.set()


def test_second_run_of_a_locked_entity_is_refused_then_serialised(tmp_path: Path, paused_children) -> None:
    old = make_table(range(0, 1000), "old")
    write_source(tmp_path / "home" / "items" / "a.parquet", old)
    write_project_at(
        tmp_path,
        project_yaml(flow={"retries": {"max": 100, "delay": "50ms", "backoff": "constant", "jitter": False}}),
    )
    plan = hygge_core.load_project(tmp_path).entity("files/items")
    assert hygge_core.run_entity(plan).published
    entity = tmp_path / "lake" / "items"
    before = snapshot(entity)
    new = make_table(range(0, 1500), "new")
    (tmp_path / "home" / "items" / "a.parquet").unlink()
    write_source(tmp_path / "home" / "items" / "b.parquet", new)

    go = tmp_path / "go"
    holder = paused_children(HOLD_IN_WRITE.format(go=str(go)), tmp_path, "files/items")
    holder.wait_for("HOLDING")  # the other process holds the entity lock and has staged a version

    with pytest.raises(TransientError) as caught:
        hygge_core.run_entity(plan)
    assert "another hygge run is writing this entity" in str(caught.value)
    assert "files/items" in str(caught.value)
    assert snapshot(entity) == before  # the refused run touched nothing (nor the other run's staging)

    # With retries, the second run waits its turn and publishes after the first.
    watcher = RetryWatcher()
    logger = logging.getLogger("hygge.flow")
    logger.addHandler(watcher)
    outcome: list[hygge_core.EntityResult] = []
    try:
        waiting = threading.Thread(target=lambda: outcome.append(hygge_core.run_with_retries(plan)))
        waiting.start()
        assert watcher.seen.wait(timeout=600), "the retrying run never met the lock"
        go.touch()
        first = finish(holder)
        waiting.join()
    finally:
        logger.removeHandler(watcher)
    assert first.result == {"status": "success", "rows": 1500}
    (second,) = outcome
    assert second.status == "success" and second.attempts > 1 and second.rows == 1500
    assert read_entity(entity).equals(new)
    assert read_state(entity)["rows_last_run"] == 1500
    assert staging_leftovers(entity) == []


def test_a_bad_entity_fails_alone(tmp_path: Path) -> None:
    names = ["alpha", "broken", "gamma"]
    home = tmp_path / "home"
    for index, name in enumerate(names):
        write_source(home / name / "a.parquet", make_table(range(index * 1000, index * 1000 + 500), f"{name}-old"))
    write_project_at(tmp_path, project_yaml(entities=names, flow={"retries": {"max": 2, "delay": "0s"}}))
    project = hygge_core.load_project(tmp_path)
    first = hygge_core.run_project(project, concurrency=3)
    assert [r.status for r in first.entities] == ["success"] * 3
    broken_before = snapshot(tmp_path / "lake" / "broken")

    garbage = home / "broken" / "b.parquet"
    garbage.write_bytes(b"this is not parquet" * 100)
    fresh = {name: make_table(range(5000, 5300), f"{name}-new") for name in ("alpha", "gamma")}
    for name, table in fresh.items():
        write_source(home / name / "a.parquet", table)

    result = hygge_core.run_project(project, concurrency=3)
    by_name = {r.entity: r for r in result.entities}
    broken = by_name["broken"]
    assert broken.status == "failed" and broken.error_type == "HomeError"
    assert str(garbage) in (broken.error or "")
    assert broken.attempts == 1  # a data error is not retried
    assert snapshot(tmp_path / "lake" / "broken") == broken_before
    for name, table in fresh.items():
        assert by_name[name].status == "success" and by_name[name].rows == 300
        assert read_entity(tmp_path / "lake" / name).equals(table)
    for name in names:
        assert staging_leftovers(tmp_path / "lake" / name) == []
    assert not all(r.ok for r in result.entities)


def test_entities_sharing_a_lake_do_not_disturb_each_other(tmp_path: Path) -> None:
    """Many entities published at once into one lake folder share one staging folder: each stays whole."""
    names = [f"e{i}" for i in range(6)]
    tables = {name: make_table(range(i * 10_000, i * 10_000 + 1200), name) for i, name in enumerate(names)}
    for name, table in tables.items():
        write_source(tmp_path / "home" / name / "a.parquet", table)
    write_project_at(tmp_path, project_yaml(entities=names))
    project = hygge_core.load_project(tmp_path)
    for _ in range(2):  # the second round replaces every entity while the others are being replaced
        result = hygge_core.run_project(project, concurrency=6)
        assert [r.status for r in result.entities] == ["success"] * len(names)
    for name, table in tables.items():
        assert read_entity(tmp_path / "lake" / name).equals(table)
        assert staging_leftovers(tmp_path / "lake" / name) == []
    assert sorted(p.name for p in (tmp_path / "lake").iterdir()) == sorted([*names, ".hygge-staging"])
    concat = pa.concat_tables([read_entity(tmp_path / "lake" / n) for n in names])
    assert concat.num_rows == 1200 * len(names)


PAUSE_BEFORE_COMMIT_RECORD = """
import time
GO = {go!r}
original_record = publish.write_commit_record
def write_commit_record(version, payload):
    print("WRITTEN", flush=True)
    while not os.path.exists(GO):
        time.sleep(0.02)
    original_record(version, payload)
publish.write_commit_record = write_commit_record
"""


def test_entities_whose_names_share_a_dot_prefix_keep_their_own_staging(tmp_path: Path, paused_children) -> None:
    """``events`` and ``events.v2`` stage side by side in ``lake/.hygge-staging``: a run of one must not
    take the other's staged version for a leftover of its own and delete it mid-run."""
    tables = {"events": make_table(range(0, 800), "events"), "events.v2": make_table(range(0, 1200), "v2")}
    for name, table in tables.items():
        write_source(tmp_path / "home" / name / "a.parquet", table)
    write_project_at(tmp_path, project_yaml(entities=list(tables)))

    go = tmp_path / "go"
    other = paused_children(PAUSE_BEFORE_COMMIT_RECORD.format(go=str(go)), tmp_path, "files/events.v2")
    other.wait_for("WRITTEN")  # events.v2 has written all its files into staging, and holds its own lock

    result = hygge_core.run_entity(hygge_core.load_project(tmp_path).entity("files/events"))
    assert result.published
    go.touch()
    finished = finish(other)
    assert finished.result == {"status": "success", "rows": 1200}, finished.result
    for name, table in tables.items():
        assert read_entity(tmp_path / "lake" / name).equals(table)
        assert staging_leftovers(tmp_path / "lake" / name) == []


def test_readers_see_one_whole_version_while_runs_publish(tmp_path: Path) -> None:
    """A reader polling the entity during repeated full drops gets the old or the new version, never a mix;
    a read racing the swap may fail (its files moved away) and is simply retried."""
    versions = [make_table(range(0, 900), "v1"), make_table(range(0, 1300), "v2")]
    source = write_source(tmp_path / "home" / "items" / "a.parquet", versions[0])
    write_project_at(tmp_path, project_yaml())
    plan = hygge_core.load_project(tmp_path).entity("files/items")
    assert hygge_core.run_entity(plan).published
    entity = tmp_path / "lake" / "items"

    stop = threading.Event()
    reads: list[bool] = []
    misses: list[str] = []

    def poll() -> None:
        while not stop.is_set():
            try:
                table = read_entity(entity)
            except (OSError, pa.ArrowInvalid) as error:
                misses.append(str(error))
                continue
            reads.append(any(table.equals(version) for version in versions))

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        for round_ in range(1, 9):
            write_source(source, versions[round_ % 2])
            assert hygge_core.run_entity(plan).published
    finally:
        stop.set()
        reader.join()
    assert reads and all(reads), f"{reads.count(False)} of {len(reads)} reads saw a mix of versions"
    assert read_entity(entity).equals(versions[0])

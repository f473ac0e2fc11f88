"""The Parquet store's ``parallel_files``: several files encoded at once, with the guarantees of one.

Row groups are dealt to the open files in turn, each file encoded on its own thread. What must
hold: every row and value lands (schema included), a file keeps its rows in input order, a file
never exceeds ``file_rows``, a one-row-group entity is still one file, and an error raised on an
encoding thread (a real ENOSPC, a real EFBIG) fails the run with the store's clear message and
leaves the previous version byte for byte.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

import hygge_core
from hygge_core import StoreError
from hygge_core.stores.parquet import ParquetStoreConfig
from tests.reliability.support import (
    make_table,
    project_yaml,
    read_entity,
    run_child,
    snapshot,
    staging_leftovers,
    write_project_at,
    write_source,
)
from tests.reliability.test_disk_full import EFBIG_CHILD, incompressible, small_tmpfs

LANES = {"parallel_files": 3, "row_group_rows": 300, "file_rows": 1000}


def data_files(entity: Path) -> list[Path]:
    return sorted(p for p in entity.glob("*.parquet"))


@pytest.fixture(scope="module")
def lanes_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[pa.Table, Path]:
    """5,000 rows through 3 lanes, row groups of 300, files of at most 1,000 rows."""
    root = tmp_path_factory.mktemp("lanes")
    source = make_table(range(5000), "lane")
    write_source(root / "home" / "items" / "a.parquet", source, row_group_rows=250)
    write_project_at(root, project_yaml(store=LANES))
    result = hygge_core.run_entity(hygge_core.load_project(root).entity("files/items"))
    assert result.status == "success" and result.rows == 5000, result
    return source, root / "lake" / "items"


def test_every_row_value_and_the_schema_land(lanes_run: tuple[pa.Table, Path]) -> None:
    source, entity = lanes_run
    assert read_entity(entity).equals(source)  # sorted by id; equals compares the schema and every value
    for path in data_files(entity):
        assert pq.read_schema(path).equals(source.schema)


def test_row_groups_are_dealt_in_turn_and_files_keep_input_order(lanes_run: tuple[pa.Table, Path]) -> None:
    _, entity = lanes_run
    files = data_files(entity)
    ids = {path.name: pq.read_table(path, columns=["id"]).column("id").to_pylist() for path in files}
    # The first three files are the three lanes: their first row groups are the input's first three.
    assert [ids[path.name][0] for path in files[:3]] == [0, 300, 600]
    assert ids[files[0].name][300:600] == list(range(900, 1200))  # lane 0's second row group is the input's fourth
    for path in files:
        metadata = pq.read_metadata(path)
        assert metadata.num_rows <= 1000  # file_rows holds per lane
        assert all(metadata.row_group(i).num_rows <= 300 for i in range(metadata.num_row_groups))
        assert ids[path.name] == sorted(ids[path.name])  # within a file, rows keep their input order
    assert sorted(i for values in ids.values() for i in values) == list(range(5000))


def test_a_small_entity_is_one_file(tmp_path: Path) -> None:
    source = make_table(range(120), "small")
    write_source(tmp_path / "home" / "items" / "a.parquet", source, row_group_rows=50)
    write_project_at(tmp_path, project_yaml(store={"parallel_files": 4, "row_group_rows": 1000}))
    result = hygge_core.run_entity(hygge_core.load_project(tmp_path).entity("files/items"))
    files = data_files(tmp_path / "lake" / "items")
    assert result.files == 1 and len(files) == 1
    assert pq.read_table(files[0]).equals(source)


def test_auto_is_one_lane_per_usable_core() -> None:
    assert ParquetStoreConfig(path="lake", parallel_files="auto").lanes() == len(os.sched_getaffinity(0))
    assert ParquetStoreConfig(path="lake").lanes() == 1
    with pytest.raises(ValidationError, match="parallel_files"):
        ParquetStoreConfig(path="lake", parallel_files=0)


@pytest.fixture
def lake_on_tmpfs() -> Iterator[Path]:
    """``<project>/lake`` on a 2 MB tmpfs, outside pytest's tmp folders (see tests/reliability/test_disk_full.py)."""
    project = Path(tempfile.mkdtemp(prefix="hygge-lanes-"))
    try:
        with small_tmpfs(project / "lake") as lake:
            yield lake
    finally:
        shutil.rmtree(project, ignore_errors=True)


def test_disk_full_on_an_encoding_thread_keeps_the_previous_version(lake_on_tmpfs: Path) -> None:
    project = lake_on_tmpfs.parent
    old = incompressible(range(0, 2000), "old")
    write_source(project / "home" / "items" / "a.parquet", old)
    write_project_at(project, project_yaml(store={"parallel_files": 2, "row_group_rows": 1000, "file_rows": 5000}))
    plan = hygge_core.load_project(project).entity("files/items")
    assert hygge_core.run_entity(plan).files == 2  # two row groups, two lanes
    entity = lake_on_tmpfs / "items"
    before, used_before = snapshot(entity), shutil.disk_usage(lake_on_tmpfs).used

    write_source(project / "home" / "items" / "a.parquet", incompressible(range(0, 25000), "big"))  # about 2.5 MB
    with pytest.raises(StoreError) as caught:
        hygge_core.run_entity(plan)
    message = str(caught.value)
    assert "disk full" in message and str(lake_on_tmpfs) in message and "free space" in message
    assert snapshot(entity) == before
    assert read_entity(entity).equals(old)
    assert staging_leftovers(entity) == []
    assert shutil.disk_usage(lake_on_tmpfs).used == used_before


def test_file_too_large_on_an_encoding_thread_keeps_the_previous_version(tmp_path: Path) -> None:
    old = make_table(range(0, 600), "old")
    write_source(tmp_path / "home" / "items" / "a.parquet", old)
    write_project_at(tmp_path, project_yaml(store={"parallel_files": 2, "file_rows": 5000}))
    plan = hygge_core.load_project(tmp_path).entity("files/items")
    assert hygge_core.run_entity(plan).published
    entity = tmp_path / "lake" / "items"
    before = snapshot(entity)

    # Each lane's file of 1,500 incompressible rows is about 150 KB, over the child's 64 KB limit.
    write_source(tmp_path / "home" / "items" / "b.parquet", incompressible(range(600, 3600), "big"))
    outcome = run_child(EFBIG_CHILD, tmp_path, "files/items")
    assert outcome.returncode == 0, outcome.stderr
    assert outcome.result["error_type"] == "StoreError", outcome.result
    assert "file too large" in outcome.result["error"] and str(entity) in outcome.result["error"]
    assert snapshot(entity) == before
    assert read_entity(entity).equals(old)
    assert staging_leftovers(entity) == []


def test_an_interrupt_while_one_lane_stops_still_stops_the_others_and_removes_the_staging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second Ctrl-C during the clean-up of a cancelled run must not leave encoding threads or staged files behind.

    (An interrupted step process once hung at exit on a lane thread nothing had stopped, so ``hygge start`` never
    returned; lanes now stop each other's threads whatever one of them raises, and their threads are daemons.)
    """
    from hygge_core.errors import Cancelled
    from hygge_core.stores import parquet_files

    write_source(tmp_path / "home" / "items" / "a.parquet", make_table(range(1000), "old"), row_group_rows=250)
    write_project_at(tmp_path, project_yaml(store=LANES))
    plan = hygge_core.load_project(tmp_path).entity("files/items")
    assert hygge_core.run_entity(plan).published
    before = snapshot(tmp_path / "lake" / "items")
    write_source(tmp_path / "home" / "items" / "a.parquet", make_table(range(20_000), "new"), row_group_rows=250)

    discarded: list[int] = []
    plain_discard = parquet_files._Lane.discard

    def discard(lane: parquet_files._Lane) -> None:
        plain_discard(lane)
        discarded.append(len(discarded))
        if len(discarded) == 1:
            raise KeyboardInterrupt  # the user pressed Ctrl-C again while the first lane stopped

    monkeypatch.setattr(parquet_files._Lane, "discard", discard)
    cancel = threading.Event()
    with pytest.raises((KeyboardInterrupt, Cancelled)):
        hygge_core.run_entity(plan, cancel=cancel, progress=lambda p: cancel.set() if p.rows >= 3000 else None)
    assert discarded == [0, 1, 2]  # every lane was stopped, not only the one whose stop was interrupted
    assert not [t.name for t in threading.enumerate() if t.name.startswith("hygge-encode")]
    assert staging_leftovers(tmp_path / "lake" / "items") == []
    assert snapshot(tmp_path / "lake" / "items") == before


def test_a_file_whose_close_fails_is_still_closed_so_its_space_comes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pyarrow leaves the file it opened open when its writer's close fails (ENOSPC on the footer); the lanes open
    their files themselves and close them whatever the writer's close does, so a removed file frees its space."""
    import gc

    from hygge_core.stores import parquet_files

    def failing_close(self: pq.ParquetWriter) -> None:
        self.is_open = False  # so that its __del__ does not close it again
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "close", failing_close)
    # Something still refers to each writer after the failure, as the failed run's traceback does in real life.
    held: list[pq.ParquetWriter] = []
    open_writer = parquet_files.FileLayout.open_writer

    def holding_open_writer(self: parquet_files.FileLayout, *args: object, **kwargs: object) -> pq.ParquetWriter:
        held.append(open_writer(self, *args, **kwargs))
        return held[-1]

    monkeypatch.setattr(parquet_files.FileLayout, "open_writer", holding_open_writer)
    table = make_table(range(3000), "open")
    files = parquet_files.ParquetFiles(
        table.schema,
        parquet_files.FileLayout(row_group_rows=1000, lanes=2),
        lambda n: tmp_path / f"part-{n}.parquet",
    )
    gc.disable()  # a file left open must show, not be closed behind the test's back by the collector
    try:
        files.write(table.to_batches())
        files.discard()
        opened = []
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(FileNotFoundError):  # the listing's own descriptor is gone already
                opened.append(os.readlink(f"/proc/self/fd/{fd}"))
    finally:
        gc.enable()
    assert len(files.files) == 2 and len(held) == 2
    assert not [target for target in opened if target.startswith(str(tmp_path))]
    assert not [t.name for t in threading.enumerate() if t.name.startswith("hygge-encode")]

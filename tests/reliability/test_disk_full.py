"""Disk full and file too large, raised by the kernel, not by a mock.

ENOSPC comes from a 2 MB tmpfs mounted as the lake; EFBIG from a child
process whose ``RLIMIT_FSIZE`` is smaller than one output file (with SIGXFSZ
ignored, so the write fails instead of killing the process). In both cases the
run must say what happened, leave no staging behind and keep the previous
version readable byte for byte; and the next run, once there is room, succeeds.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pytest

import hygge_core
from hygge_core import StoreError

from .support import (
    make_table,
    project_yaml,
    read_entity,
    read_state,
    run_child,
    snapshot,
    staging_leftovers,
    write_project_at,
    write_source,
)

TMPFS_BYTES = 2 * 1024 * 1024


def incompressible(ids: range, tag: str) -> pa.Table:
    return make_table(ids, tag, payload_bytes=100, random_payload=True)


@contextmanager
def small_tmpfs(folder: Path) -> Iterator[Path]:
    """Mount a 2 MB tmpfs on ``folder`` (created), or skip loudly where mounting is not allowed."""
    folder.mkdir(parents=True)
    mount = ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES},mode=0755", "tmpfs", str(folder)]
    mounted = subprocess.run(mount, capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"REAL ENOSPC test NOT RUN: cannot mount a small tmpfs (needs root/CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)]).returncode != 0:
            subprocess.run(["umount", "--lazy", str(folder)], check=True)


@pytest.fixture
def small_lake(shared_dir: Path) -> Iterator[Path]:
    """``<project>/lake`` on its own 2 MB tmpfs; the project is ``small_lake.parent``.

    Not under pytest's ``tmp_path``: pytest may rename old session folders away while a
    concurrent session still runs, and a mount inside would then never be unmounted.
    """
    with small_tmpfs(shared_dir / "project" / "lake") as lake:
        yield lake


@pytest.mark.parametrize("run_type", ["full_drop", "incremental"])
def test_disk_full_keeps_the_previous_version(small_lake: Path, run_type: str) -> None:
    project = small_lake.parent
    old = incompressible(range(0, 2000), "old")
    write_source(project / "home" / "items" / "a.parquet", old)
    write_project_at(project, project_yaml(run_type=run_type, store={"compression": "zstd", "file_rows": 5000}))
    plan = hygge_core.load_project(project).entity("files/items")
    assert hygge_core.run_entity(plan).published
    entity = small_lake / "items"
    before, used_before = snapshot(entity), shutil.disk_usage(small_lake).used
    state_before = read_state(entity)

    # About 2.5 MB of random bytes cannot fit in what is left of 2 MB.
    big = write_source(project / "home" / "items" / "b.parquet", incompressible(range(2000, 27000), "big"))
    with pytest.raises(StoreError) as caught:
        hygge_core.run_entity(plan)
    message = str(caught.value)
    assert "disk full" in message and str(small_lake) in message
    assert "free space" in message

    assert snapshot(entity) == before
    assert read_entity(entity).equals(old)
    assert read_state(entity) == state_before  # incremental: b.parquet is not recorded as loaded
    assert staging_leftovers(entity) == []
    assert shutil.disk_usage(small_lake).used == used_before  # the partial files are gone, not just hidden

    # With a file that fits, the next run publishes; incremental picks b up exactly once.
    small = incompressible(range(2000, 2500), "small")
    write_source(big, small)
    result = hygge_core.run_entity(plan)
    assert result.published and result.rows == (500 if run_type == "incremental" else 2500)
    assert read_entity(entity).equals(pa.concat_tables([old, small]))
    assert staging_leftovers(entity) == []


EFBIG_CHILD = """
import resource, signal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
"""


@pytest.mark.parametrize("run_type", ["full_drop", "incremental"])
def test_file_too_large_keeps_the_previous_version(tmp_path: Path, run_type: str) -> None:
    old = make_table(range(0, 600), "old")
    write_source(tmp_path / "home" / "items" / "a.parquet", old)
    write_project_at(tmp_path, project_yaml(run_type=run_type, store={"file_rows": 5000}))
    plan = hygge_core.load_project(tmp_path).entity("files/items")
    assert hygge_core.run_entity(plan).published
    entity = tmp_path / "lake" / "items"
    before = snapshot(entity)

    # One output file of 3000 incompressible rows is about 300 KB, over the child's 64 KB limit.
    write_source(tmp_path / "home" / "items" / "b.parquet", incompressible(range(600, 3600), "big"))
    outcome = run_child(EFBIG_CHILD, tmp_path, "files/items")
    assert outcome.returncode == 0, outcome.stderr
    assert outcome.result["error_type"] == "StoreError", outcome.result
    assert "file too large" in outcome.result["error"]
    assert str(entity) in outcome.result["error"]

    assert snapshot(entity) == before
    assert read_entity(entity).equals(old)
    assert staging_leftovers(entity) == []

    result = hygge_core.run_entity(plan)  # without the limit, the same data publishes
    assert result.published
    assert read_entity(entity).num_rows == 3600


def test_disk_full_while_staging_an_incremental_copy(shared_dir: Path) -> None:
    """Another user cannot hard-link root's files (fs.protected_hardlinks), so the incremental run copies the
    current version into staging, and the disk fills during that copy: the partial copy must not stay."""
    protected = Path("/proc/sys/fs/protected_hardlinks")
    if not protected.is_file() or protected.read_text().strip() != "1":
        pytest.skip("copy-path ENOSPC test NOT RUN: needs fs.protected_hardlinks=1 to force the copy for real")
    root = write_project_at(shared_dir / "project", project_yaml(run_type="incremental", store={"file_rows": 20000}))
    old = incompressible(range(0, 10000), "old")  # about 1.1 MB: a second copy does not fit in 2 MB
    write_source(root / "home" / "items" / "a.parquet", old)
    with small_tmpfs(root / "lake") as lake:
        assert hygge_core.run_entity(hygge_core.load_project(root).entity("files/items")).published
        entity = lake / "items"
        for folder in (lake, lake / ".hygge-staging"):
            folder.chmod(0o777)
        (lake / ".hygge-staging" / "items.lock").chmod(0o666)
        before, used_before = snapshot(entity), shutil.disk_usage(lake).used
        write_source(root / "home" / "items" / "b.parquet", make_table(range(10000, 10010), "new"))

        outcome = run_child("", root, "files/items", unprivileged=True)
        assert outcome.result.get("error_type") == "StoreError", outcome.result
        assert "disk full" in outcome.result["error"]
        assert snapshot(entity) == before
        assert read_entity(entity).equals(old)
        assert staging_leftovers(entity) == []
        assert shutil.disk_usage(lake).used == used_before


def test_read_only_filesystem_is_named_as_such(small_lake: Path) -> None:
    """A lake remounted read-only is not a permission problem: the message must not send the user to chmod."""
    project = small_lake.parent
    old = make_table(range(0, 500), "old")
    write_source(project / "home" / "items" / "a.parquet", old)
    write_project_at(project, project_yaml())
    plan = hygge_core.load_project(project).entity("files/items")
    assert hygge_core.run_entity(plan).published
    before = snapshot(small_lake / "items")
    write_source(project / "home" / "items" / "b.parquet", make_table(range(500, 600), "new"))
    subprocess.run(["mount", "-o", "remount,ro", str(small_lake)], check=True)
    try:
        with pytest.raises(StoreError) as caught:
            hygge_core.run_entity(plan)
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_lake)], check=True)
    assert "read-only filesystem" in str(caught.value) and str(small_lake) in str(caught.value)
    assert "permission" not in str(caught.value)
    assert snapshot(small_lake / "items") == before
    assert read_entity(small_lake / "items").equals(old)

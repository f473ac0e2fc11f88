"""The Delta store on local disk only: a real ENOSPC, the `hygge` CLI, and the bundled sample.

ENOSPC comes from a 2 MB tmpfs mounted as the lake (as in tests/reliability):
the run must say "disk full", leave the table at its previous version, give the
space back, and the next run (with data that fits) must succeed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import hygge_core
from hygge_core import StoreError

from .lakes import Lake
from .support import REPO_ROOT, hygge_commits, make_table, project_yaml, read_delta, read_polars, write_project, write_source

pytest.importorskip("deltalake", reason="Delta tests NOT RUN: install the test extra (deltalake)")

TMPFS_BYTES = 2 * 1024 * 1024
HYGGE = str(Path(sys.executable).with_name("hygge"))


def incompressible(ids: range, tag: str) -> pa.Table:
    table = make_table(ids, tag)
    return table.set_column(4, "payload", pa.array([os.urandom(100) for _ in ids], pa.binary()))


@pytest.fixture
def small_lake() -> Iterator[Path]:
    """A project folder whose ``lake`` is a 2 MB tmpfs (outside pytest's tmp dirs, which may be renamed away)."""
    root = Path(tempfile.mkdtemp(prefix="hygge-delta-enospc-"))
    lake = root / "lake"
    lake.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES},mode=0755", "tmpfs", str(lake)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"REAL ENOSPC test NOT RUN: cannot mount a small tmpfs (needs root/CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield lake
    finally:
        if subprocess.run(["umount", str(lake)]).returncode != 0:
            subprocess.run(["umount", "--lazy", str(lake)], check=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("run_type", ["full_drop", "incremental"])
def test_disk_full_leaves_the_previous_version(small_lake: Path, run_type: str) -> None:
    lake = Lake(name="local", root=str(small_lake))
    project = write_project(small_lake.parent / "project", project_yaml(lake, run_type=run_type))
    home = project / "home" / "items"
    old = incompressible(range(0, 2000), "old")
    write_source(home / "a.parquet", old)
    plan = hygge_core.load_project(project).entity("files/items")
    assert hygge_core.run_entity(plan).published
    uri = lake.uri("items")
    used_before = shutil.disk_usage(small_lake).used

    # About 2.5 MB of random bytes cannot fit in what is left of 2 MB.
    big = write_source(home / "b.parquet", incompressible(range(2000, 27000), "big"))
    with pytest.raises(StoreError) as caught:
        hygge_core.run_entity(plan)
    message = str(caught.value)
    assert "disk full" in message and uri in message and "files/items" in message

    assert read_delta(lake, uri).equals(old)
    assert read_polars(lake, uri).equals(old)
    assert [c["version"] for c in hygge_commits(lake, uri)] == [0]
    assert shutil.disk_usage(small_lake).used == used_before  # the partial staging is gone, not just hidden

    small = incompressible(range(2000, 2500), "small")
    write_source(big, small)
    result = hygge_core.run_entity(plan)
    assert result.published and result.rows == (500 if run_type == "incremental" else 2500)
    assert read_delta(lake, uri).equals(pa.concat_tables([old, small]))


def hygge(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("DAGSTER_HOME", None)
    return subprocess.run([HYGGE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_hygge_start_and_debug_on_a_delta_project(tmp_path: Path) -> None:
    lake = Lake(name="local", root="lake")
    project = write_project(tmp_path / "project", project_yaml(lake, run_type="incremental", store={"merge_keys": ["id"]}))
    home = project / "home" / "items"
    write_source(home / "a.parquet", make_table(range(0, 100), "old"))

    debug = hygge("debug", cwd=project)
    assert debug.returncode == 0, debug.stdout + debug.stderr
    shown = " ".join(debug.stdout.split())
    assert "can write to " + str(project / "lake" / "items") in shown
    assert "full drops written by hygge's Parquet writer" in shown and "merges by delta-rs" in shown

    first = hygge("start", cwd=project)
    assert first.returncode == 0, first.stdout + first.stderr
    write_source(home / "b.parquet", make_table(range(50, 150), "new"))
    second = hygge("start", cwd=project)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "1 of 1 entities succeeded" in second.stdout

    table = Lake(name="local", root=str(project / "lake"))
    expected = pa.concat_tables([make_table(range(0, 50), "old"), make_table(range(50, 150), "new")])
    assert read_delta(table, table.uri("items")).equals(expected)
    assert [c["version"] for c in hygge_commits(table, table.uri("items"))] == [1, 0]


def test_the_parquet_to_delta_sample_runs_as_is(tmp_path: Path) -> None:
    """The sample writes under the repository's lake/ folder; run a copy next to a copy of the data instead."""
    from deltalake import DeltaTable

    shutil.copytree(REPO_ROOT / "data" / "home", tmp_path / "data" / "home")
    (tmp_path / "samples").mkdir()
    shutil.copy(REPO_ROOT / "samples" / "parquet_to_delta.yaml", tmp_path / "samples")
    project = hygge_core.load_project(tmp_path / "samples" / "parquet_to_delta.yaml")
    for _ in range(2):
        result = hygge_core.run_project(project)
        assert result.ok, [(e.key, e.error) for e in result.entities]
    for entity, version in (("customers", 1), ("products", 1), ("orders", 0)):  # orders: nothing new the second time
        table = DeltaTable(str(tmp_path / "lake" / "delta" / entity))
        assert table.version() == version
        source = pa.concat_tables([pq.read_table(p) for p in sorted((tmp_path / "data" / "home" / entity).glob("*.parquet"))])
        assert table.to_pyarrow_table().num_rows == source.num_rows


def test_vacuum_removes_a_killed_runs_staging_and_keeps_the_table(tmp_path: Path) -> None:
    from .support import paused_child

    lake = Lake(name="local", root=str(tmp_path / "lake"))
    project = write_project(tmp_path / "project", project_yaml(lake, run_type="incremental"))
    home = project / "home" / "items"
    old = make_table(range(0, 300), "old")
    write_source(home / "a.parquet", old)
    plan = hygge_core.load_project(project).entity("files/items")
    hygge_core.run_entity(plan)
    write_source(home / "b.parquet", make_table(range(300, 600), "new"))
    patch = "delta_store.DeltaWriter._commit_staged = lambda self, *args: pause('KILL-POINT')\n"
    child = paused_child(patch, project, "files/items", {})
    try:
        child.wait_for("KILL-POINT")
    finally:
        child.kill()
    table_dir = Path(lake.uri("items"))
    staged = [p for p in table_dir.rglob("*.parquet") if p.stat().st_size]
    assert len(staged) == 2  # the committed file and the killed run's staged one

    removed = plan.create_store().vacuum(retention_hours=0)
    assert len(removed) >= 1
    assert read_delta(lake, lake.uri("items")).equals(old)
    assert len(list(table_dir.rglob("*.parquet"))) == 1
    assert hygge_core.run_entity(plan).rows == 300  # the next run loads b once


def test_the_onelake_sample_has_the_documented_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "ERP_HOST": "erp.example",
        "AZURE_TENANT_ID": "tenant",
        "AZURE_CLIENT_ID": "client",
        "AZURE_CLIENT_SECRET": "do-not-print-this-secret",
        "FABRIC_WORKSPACE": "Sales",
        "FABRIC_LAKEHOUSE": "erp",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    project = hygge_core.load_project(REPO_ROOT / "samples" / "mssql_to_onelake.yaml")
    plan = project.entity("erp_to_onelake/Orders")
    assert plan.store.path == "abfss://Sales@onelake.dfs.fabric.microsoft.com/erp.Lakehouse/Tables/Orders"
    store = plan.create_store()
    assert store.merge_keys == ["Id"]
    assert store.storage_options()["AZURE_CLIENT_SECRET"] == "do-not-print-this-secret"
    assert "do-not-print-this-secret" not in repr(plan.store) + str(plan.store.model_dump()) + plan.store.model_dump_json()


def listing(root: Path) -> dict[str, str]:
    """Every entry under ``root`` without following links: ``dir``, ``link -> target`` or the file's bytes.

    ``.dagster`` (the project-local Dagster home ``hygge start`` creates) is left out.
    """
    found = {}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        if relative.split(os.sep)[0] == ".dagster":
            continue
        if path.is_symlink():
            found[relative] = f"link -> {os.readlink(path)}"
        elif path.is_dir():
            found[relative] = "dir"
        else:
            found[relative] = path.read_bytes().hex()
    return found


@pytest.mark.parametrize("hostile", ["foreign folder", "symlink"])
def test_a_local_table_path_that_is_not_hygges_is_refused_and_untouched(tmp_path: Path, hostile: str) -> None:
    """A Delta table path that holds someone else's files, or links to them, is never written (nor vacuumed)."""
    lake = Lake(name="local", root="lake")
    project = write_project(tmp_path / "project", project_yaml(lake))
    write_source(project / "home" / "items" / "a.parquet", make_table(range(0, 10), "new"))
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "report.csv").write_text("id\n1\n", encoding="utf-8")
    (project / "lake").mkdir()
    if hostile == "symlink":
        (project / "lake" / "items").symlink_to(theirs)
    else:
        shutil.copytree(theirs, project / "lake" / "items")
    before = (listing(project), listing(theirs))
    for command in ("debug", "start"):
        done = hygge(command, cwd=project)
        text = " ".join((done.stdout + done.stderr).split())
        assert done.returncode != 0, text
        assert f"refusing to write to {project / 'lake' / 'items'}" in text or "is a symbolic link" in text, text
        assert (listing(project), listing(theirs)) == before


def uncomment(text: str, *blocks: str) -> str:
    """``text`` with each commented block that starts at a ``# <block>:`` line uncommented, up to its last ``#`` line.

    Uncommenting removes the first ``# `` of each line, which is how the scaffold indents its examples.
    """
    lines = text.splitlines()
    out, inside = [], False
    for line in lines:
        stripped = line.strip()
        if any(stripped.startswith(f"# {block}:") for block in blocks):
            inside = True
        elif inside and (stripped == "#" or not stripped.startswith("#")):
            inside = False
        out.append(line.replace("# ", "", 1) if inside else line)
    return "\n".join(out) + "\n"


def test_hygge_init_delta_examples_run_and_load_once_uncommented(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scaffold's local Delta example runs as is; its OneLake example is a valid plan with ${ENV} options."""
    from deltalake import DeltaTable

    from hygge_cli.scaffold import sample_tables

    assert hygge("init", "demo", cwd=tmp_path).returncode == 0
    project = tmp_path / "demo"
    scaffolded = (project / "hygge.yml").read_text(encoding="utf-8")
    (project / "hygge.yml").write_text(uncomment(scaffolded, "sample_to_delta"), encoding="utf-8")
    started = hygge("start", "--flow", "sample_to_delta", cwd=project)
    assert started.returncode == 0, started.stdout + started.stderr
    for entity, table in sample_tables().items():
        delta = DeltaTable(str(project / "lake" / "delta" / entity))
        assert delta.to_pyarrow_table().sort_by(table.column_names[0]).equals(table)

    secret = "init-example-secret-Zx81"
    for key, value in {
        "ERP_HOST": "erp.example",
        "FABRIC_WORKSPACE": "Sales",
        "FABRIC_LAKEHOUSE": "erp",
        "AZURE_TENANT_ID": "tenant",
        "AZURE_CLIENT_ID": "client",
        "AZURE_CLIENT_SECRET": secret,
        "ERP_USER": "u",  # the other commented connections come along with `connections:`
        "ERP_PASSWORD": "p",
        "PGPASSWORD": "p",
    }.items():
        monkeypatch.setenv(key, value)
    (project / "hygge.yml").write_text(uncomment(scaffolded, "connections", "erp_to_onelake"), encoding="utf-8")
    plan = hygge_core.load_project(project).entity("erp_to_onelake/Orders")
    assert plan.store.path == "abfss://Sales@onelake.dfs.fabric.microsoft.com/erp.Lakehouse/Tables/Orders"
    store = plan.create_store()
    assert store.storage_options() == {
        "AZURE_USE_FABRIC_ENDPOINT": "true",
        "AZURE_TENANT_ID": "tenant",
        "AZURE_CLIENT_ID": "client",
        "AZURE_CLIENT_SECRET": secret,
    }
    assert store.merge_keys == ["Id"]
    assert secret not in plan.store.describe() + repr(plan.store)


def test_delta_rs_is_fed_bounded_slices_and_the_table_is_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """delta-rs buffers batches by count, so its memory follows their size: hygge hands it slices of HANDOFF_ROWS.

    ``target_file_size`` keeps this local run on delta-rs' writer (as object storage, partitions and merges are).
    """
    from hygge_core.stores import delta as delta_store

    handed: list[int] = []
    put = delta_store._Pipe.put

    def recording_put(self: delta_store._Pipe, item: object) -> bool:
        if isinstance(item, pa.RecordBatch):
            handed.append(item.num_rows)
        return put(self, item)

    monkeypatch.setattr(delta_store._Pipe, "put", recording_put)
    lake = Lake(name="local", root=str(tmp_path / "lake"))
    text = project_yaml(lake, store={"target_file_size": 64 * 1024 * 1024}).replace("batch_size: 100", "batch_size: 100000")
    project = write_project(tmp_path / "project", text)
    rows = make_table(range(3 * delta_store.HANDOFF_ROWS + 5), "sliced")
    write_source(project / "home" / "items" / "a.parquet", rows, row_group_rows=len(rows))  # the home reads one batch
    assert hygge_core.run_entity(hygge_core.load_project(project).entity("files/items")).rows == len(rows)

    assert handed == [delta_store.HANDOFF_ROWS] * 3 + [5]
    assert read_delta(lake, lake.uri("items")).equals(rows)

"""SIGKILL at every stage of a run: the entity is always exactly the old version or exactly the new one.

The run happens in a child process (its own session, so the whole process
group dies, reader thread included). The child wraps one function of
``hygge_core.publish`` or of the Parquet writer to print a marker and sleep at
an exact point; the test waits for the marker and kills the group. Then:

* a reader looking at the entity folder right away sees one complete version
  (except in the fallback path's gap between its two renames, where the folder
  is briefly absent, which is why that path exists only as a fallback);
* the next session's recovery leaves exactly the old or the new version, state
  included (for incremental runs the loaded-files list and watermark match the
  data published), and nothing in staging but the lock file;
* the next run succeeds and the entity ends as the new data, with no row lost
  or duplicated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest

import hygge_core
from tests.paused_child import PausedChild

from .support import (
    STAGING,
    make_table,
    project_yaml,
    read_entity,
    read_state,
    snapshot,
    staging_leftovers,
    write_project_at,
    write_source,
)

MARKER = "KILL-POINT"


@dataclass(frozen=True)
class KillPoint:
    patch: str  # child code run before the entity; calls pause(MARKER) at the point
    survivor: str  # "old" or "new": the version recovery must leave
    absent_until_recovered: bool = False


KILL_POINTS = {
    "before_writing": KillPoint(
        """
        def write(self, data):
            pause("KILL-POINT")
        parquet_store.ParquetWriter.write = write
        """,
        "old",
    ),
    "during_writing": KillPoint(
        # After six row groups (about 1250 rows): the first 1000-row file is closed, the second open, footerless.
        """
        import pyarrow.parquet as pq
        original_write_table = pq.ParquetWriter.write_table
        row_groups = []
        def write_table(self, *args, **kwargs):
            original_write_table(self, *args, **kwargs)
            row_groups.append(1)
            if len(row_groups) == 6:
                pause("KILL-POINT")
        pq.ParquetWriter.write_table = write_table
        """,
        "old",
    ),
    "after_writing": KillPoint(
        """
        def write_commit_record(version, payload):
            pause("KILL-POINT")
        publish.write_commit_record = write_commit_record
        """,
        "old",
    ),
    "commit_record_written": KillPoint(
        """
        def publish_version(version, entity_dir):
            pause("KILL-POINT")
        publish.publish_version = publish_version
        """,
        "old",
    ),
    "after_exchange_before_removing_old": KillPoint(
        """
        def retire(previous, entity_dir):
            pause("KILL-POINT")
        publish._retire = retire
        """,
        "new",
    ),
    "fallback_between_the_two_renames": KillPoint(
        """
        publish.exchange = lambda first, second: False
        original_rename = os.rename
        def rename(source, target):
            original_rename(source, target)
            if str(target).endswith(".old"):
                pause("KILL-POINT")
        os.rename = rename
        """,
        "new",
        absent_until_recovered=True,
    ),
    "fallback_after_both_renames": KillPoint(
        """
        publish.exchange = lambda first, second: False
        original_rename = os.rename
        def rename(source, target):
            original_rename(source, target)
            if str(source).endswith(".new"):
                pause("KILL-POINT")
        os.rename = rename
        """,
        "new",
    ),
}


@dataclass
class Scenario:
    root: Path
    entity: Path
    old: pa.Table
    new: pa.Table
    old_snapshot: dict[str, str]
    old_state: dict


def prepare(tmp_path: Path, run_type: str) -> Scenario:
    """Publish the old version, then change the source so that the next run publishes a different new one."""
    root = tmp_path
    home = root / "home" / "items"
    old = make_table(range(0, 3000), "v1")
    write_source(home / "a.parquet", old)
    flow = {"watermark": {"column": "id"}} if run_type == "incremental" else {}
    write_project_at(root, project_yaml(run_type=run_type, flow=flow))
    result = hygge_core.run_entity(hygge_core.load_project(root).entity("files/items"))
    assert result.published and result.rows == 3000
    if run_type == "incremental":
        added = make_table(range(3000, 6000), "v2")
        write_source(home / "b.parquet", added)
        new = pa.concat_tables([old, added])
    else:
        (home / "a.parquet").unlink()
        new = make_table(range(0, 4000), "v2")
        write_source(home / "b.parquet", new)
    entity = root / "lake" / "items"
    assert read_entity(entity).equals(old)
    return Scenario(root, entity, old, new, snapshot(entity), read_state(entity))


def staged_part_files(entity: Path) -> list[Path]:
    return sorted((entity.parent / STAGING).glob(f"{entity.name}.*.new/part-*.parquet"))


def assert_state_matches(entity: Path, table: pa.Table, run_type: str) -> None:
    """The committed state describes exactly the data beside it."""
    state = read_state(entity)
    data_files = sorted(str(p.relative_to(entity)) for p in entity.rglob("*.parquet") if "_hygge" not in p.parts)
    assert sorted(state["files"]) == data_files
    if run_type == "incremental":
        loaded = set(state["home"]["loaded_files"])
        assert loaded == ({"a.parquet"} if table.num_rows == 3000 else {"a.parquet", "b.parquet"})
        assert state["watermark"] == {"column": "id", "kind": "int", "value": str(table.num_rows - 1)}


@pytest.mark.parametrize("run_type", ["full_drop", "incremental"])
@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_leaves_old_or_new_version(tmp_path: Path, paused_children, run_type: str, point: str) -> None:
    kill_point = KILL_POINTS[point]
    scenario = prepare(tmp_path, run_type)
    entity = scenario.entity

    child: PausedChild = paused_children(kill_point.patch, scenario.root, "files/items")
    child.wait_for(MARKER)
    if point == "during_writing":
        assert len(staged_part_files(entity)) >= 2  # a closed file and one still being written
    child.kill()

    # A reader arriving right after the crash, before any hygge process runs again.
    if kill_point.absent_until_recovered:
        assert not entity.exists()
    elif kill_point.survivor == "old":
        assert snapshot(entity) == scenario.old_snapshot
    else:
        assert read_entity(entity).equals(scenario.new)

    # The next session recovers (under the entity lock) before it reads the committed state.
    plan = hygge_core.load_project(scenario.root).entity("files/items")
    with plan.create_store().session() as session:
        recovered_state = session.state
    assert staging_leftovers(entity) == []
    if kill_point.survivor == "old":
        assert snapshot(entity) == scenario.old_snapshot
        assert read_entity(entity).equals(scenario.old)
        assert recovered_state.run_id == scenario.old_state["run_id"]
    else:
        assert read_entity(entity).equals(scenario.new)
        assert recovered_state.run_id != scenario.old_state["run_id"]
        assert_state_matches(entity, scenario.new, run_type)

    # The next run succeeds and the entity ends as the new data: nothing lost, nothing twice.
    result = hygge_core.run_entity(plan)
    assert result.status in ("success", "skipped")
    if run_type == "incremental":
        assert result.rows == (3000 if kill_point.survivor == "old" else 0)
    assert read_entity(entity).equals(scenario.new)
    assert_state_matches(entity, scenario.new, run_type)
    assert staging_leftovers(entity) == []


def test_killed_first_run_leaves_no_entity(tmp_path: Path, paused_children) -> None:
    """A run killed before its first publish leaves no entity folder at all, and the next run publishes."""
    table = make_table(range(0, 2000), "only")
    write_source(tmp_path / "home" / "items" / "a.parquet", table)
    write_project_at(tmp_path, project_yaml())
    child = paused_children(KILL_POINTS["commit_record_written"].patch, tmp_path, "files/items")
    child.wait_for(MARKER)
    child.kill()
    entity = tmp_path / "lake" / "items"
    assert not entity.exists()
    result = hygge_core.run_entity(hygge_core.load_project(tmp_path).entity("files/items"))
    assert result.published
    assert read_entity(entity).equals(table)
    assert staging_leftovers(entity) == []


def test_recovery_never_adopts_another_entitys_staging(tmp_path: Path, paused_children) -> None:
    """``events.v2`` is killed in the fallback gap (its folder absent, both versions in staging); a first run of
    ``events`` must not take ``events.v2.<run>.new`` for its own interrupted publish and roll it forward."""
    tables = {"events": make_table(range(0, 500), "events"), "events.v2": make_table(range(0, 900), "v2")}
    for name, table in tables.items():
        write_source(tmp_path / "home" / name / "a.parquet", table)
    write_project_at(tmp_path, project_yaml(entities=list(tables)))
    project = hygge_core.load_project(tmp_path)
    assert hygge_core.run_entity(project.entity("files/events.v2")).published
    v2 = tmp_path / "lake" / "events.v2"
    v2_before = snapshot(v2)

    child = paused_children(KILL_POINTS["fallback_between_the_two_renames"].patch, tmp_path, "files/events.v2")
    child.wait_for(MARKER)
    child.kill()
    assert not v2.exists()

    assert hygge_core.run_entity(project.entity("files/events")).published
    assert read_entity(tmp_path / "lake" / "events").equals(tables["events"])
    assert not v2.exists()  # still waiting for its own recovery

    # events.v2's own recovery finds its two versions untouched and rolls its killed run forward.
    with project.entity("files/events.v2").create_store().session():
        pass
    assert v2.is_dir(), "events.v2 lost both its versions"
    assert read_entity(v2).equals(tables["events.v2"])
    assert snapshot(v2) != v2_before  # the killed run's version (new run id), not the previous one
    for name in tables:
        assert staging_leftovers(tmp_path / "lake" / name) == []


def test_sigkill_during_recovery_is_recovered_too(tmp_path: Path, paused_children) -> None:
    """Recovery itself can be killed: after rolling the new version forward, before removing the old one."""
    scenario = prepare(tmp_path, "full_drop")
    child = paused_children(KILL_POINTS["fallback_between_the_two_renames"].patch, scenario.root, "files/items")
    child.wait_for(MARKER)
    child.kill()
    recovering = paused_children(
        """
        import shutil
        original_rmtree = shutil.rmtree
        def rmtree(path, *args, **kwargs):
            pause("KILL-POINT")
        shutil.rmtree = rmtree
        """,
        scenario.root,
        "files/items",
    )
    recovering.wait_for(MARKER)
    recovering.kill()
    entity = scenario.entity
    assert read_entity(entity).equals(scenario.new)  # rolled forward before the kill
    assert staging_leftovers(entity) != []  # and the old version was still waiting to be removed
    result = hygge_core.run_entity(hygge_core.load_project(scenario.root).entity("files/items"))
    assert result.published
    assert read_entity(entity).equals(scenario.new)
    assert staging_leftovers(entity) == []

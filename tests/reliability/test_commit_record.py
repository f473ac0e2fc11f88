"""State is checked before it is trusted (issue 9, item 6), through real ``hygge start`` processes.

An incremental run builds on the files the commit record lists: a listed file
deleted or changed by hand fails the entity (naming the file, saying to run a
full drop) and nothing changes; files the record does not list are never adopted,
and are left exactly where they are. Incremental Parquet homes key loaded files
by their path under the home root, so a glob's ``*/data.parquet`` files stay apart.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .cli_support import hygge, output, tree
from .support import make_table, project_yaml, read_state, write_project_at, write_source

FIRST = make_table(range(0, 300), "first")
SECOND = make_table(range(300, 500), "second")
THIRD = make_table(range(500, 650), "third")


def published_entity(entity_dir: Path) -> pa.Table:
    """The rows of the published version: exactly the files its commit record lists."""
    state = read_state(entity_dir)
    return pa.concat_tables([pq.read_table(entity_dir / name) for name in state["files"]]).sort_by("id")


def start(project: Path, *args: str) -> str:
    done = hygge("start", *args, project=project)
    text = output(done)
    assert done.returncode == 0, text
    return text


def incremental_project(root: Path, **project: object) -> tuple[Path, Path]:
    write_project_at(root, project_yaml(run_type="incremental", **project))  # type: ignore[arg-type]
    write_source(root / "home" / "items" / "a.parquet", FIRST)
    start(root)
    write_source(root / "home" / "items" / "b.parquet", SECOND)
    start(root)
    lake = root / "lake" / "items"
    assert published_entity(lake).equals(pa.concat_tables([FIRST, SECOND]))
    return root, lake


def test_listed_file_deleted_by_hand_fails_the_incremental_run_until_a_full_drop(tmp_path: Path) -> None:
    project, lake = incremental_project(tmp_path / "project")
    lost = lake / read_state(lake)["files"][0]
    lost.unlink()
    write_source(project / "home" / "items" / "c.parquet", THIRD)
    before = tree(project)
    done = hygge("start", project=project)
    text = output(done)
    assert done.returncode == 1, text
    assert f"{lost} is listed in the commit record {lake / '_hygge'} but is missing" in text
    assert "rebuild the entity with a full drop (hygge start --full-drop --entity files/items)" in text
    assert tree(project) == before

    start(project, "--full-drop")
    assert published_entity(lake).equals(pa.concat_tables([FIRST, SECOND, THIRD]))


def test_listed_file_changed_by_hand_fails_the_incremental_run(tmp_path: Path) -> None:
    project, lake = incremental_project(tmp_path / "project")
    changed = lake / read_state(lake)["files"][-1]
    recorded = read_state(lake)["sizes"][changed.name]
    with open(changed, "ab") as handle:
        handle.write(b"appended by hand")
    write_source(project / "home" / "items" / "c.parquet", THIRD)
    before = tree(project)
    done = hygge("start", project=project)
    text = output(done)
    assert done.returncode == 1, text
    assert f"{changed} has {recorded + 16} bytes but the commit record {lake / '_hygge'} says {recorded}" in text
    assert "--full-drop" in text
    assert tree(project) == before


def test_files_the_record_does_not_list_are_never_adopted_and_left_alone(tmp_path: Path) -> None:
    project, lake = incremental_project(tmp_path / "project")
    (lake / "notes.txt").write_text("my notes\n", encoding="utf-8")
    (lake / ".hidden").write_text("secret-ish\n", encoding="utf-8")
    (lake / "extra").mkdir()
    pq.write_table(make_table(range(9000, 9010), "stray"), lake / "extra" / "stray.parquet")
    pq.write_table(make_table(range(9100, 9110), "stray"), lake / "stray.parquet")
    strays = ("notes.txt", ".hidden", "extra", "stray.parquet")

    def stray_tree() -> dict[str, str]:
        return {name: digest for name, digest in tree(lake).items() if name.split("/")[0] in strays}

    strays_before, outside_before = stray_tree(), tree(project, skip=("lake", "home"))
    write_source(project / "home" / "items" / "c.parquet", THIRD)
    start(project)
    state = read_state(lake)
    assert not set(state["files"]) & {".hidden", "notes.txt", "stray.parquet", "extra/stray.parquet"}
    assert published_entity(lake).equals(pa.concat_tables([FIRST, SECOND, THIRD]))
    assert stray_tree() == strays_before
    assert tree(project, skip=("lake", "home")) == outside_before

    start(project, "--full-drop")  # a full drop replaces hygge's files and leaves the others too
    assert published_entity(lake).equals(pa.concat_tables([FIRST, SECOND, THIRD]))
    assert stray_tree() == strays_before
    assert len(read_state(lake)["files"]) == 1


def test_glob_home_keys_loaded_files_by_path_under_the_home_root(tmp_path: Path) -> None:
    root = write_project_at(
        tmp_path / "project", project_yaml(run_type="incremental", home={"path": "home/{entity}/*/data.parquet"})
    )
    write_source(root / "home" / "items" / "north" / "data.parquet", FIRST)
    write_source(root / "home" / "items" / "south" / "data.parquet", SECOND)
    start(root)
    lake = root / "lake" / "items"
    assert published_entity(lake).equals(pa.concat_tables([FIRST, SECOND]))
    assert sorted(read_state(lake)["home"]["loaded_files"]) == ["north/data.parquet", "south/data.parquet"]
    before = tree(root)
    start(root)  # nothing new: both files are known by their own path
    assert tree(root) == before
    assert published_entity(lake).equals(pa.concat_tables([FIRST, SECOND]))

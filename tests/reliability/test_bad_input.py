"""Bad source data fails with a message naming the path, and the published entity is untouched.

Each test first publishes a good version, then breaks the source and runs
again: the run must raise ``HomeError`` naming what is wrong, and the entity
folder (every file, byte for byte, state included) must be exactly the previous
version, with nothing left in staging.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import hygge_core
from hygge_core import HomeError

from .support import (
    make_table,
    project_yaml,
    read_entity,
    snapshot,
    staging_leftovers,
    write_project_at,
    write_source,
)

GOOD = make_table(range(0, 600), "good")


def publish_good_version(root: Path, **project: object) -> tuple[hygge_core.EntityPlan, Path, dict[str, str]]:
    write_project_at(root, project_yaml(**project))  # type: ignore[arg-type]
    plan = hygge_core.load_project(root).entity("files/items")
    result = hygge_core.run_entity(plan)
    assert result.published and result.rows == GOOD.num_rows
    lake = root / "lake" / "items"
    assert read_entity(lake).equals(GOOD)
    return plan, lake, snapshot(lake)


def assert_untouched(lake: Path, before: dict[str, str]) -> None:
    assert snapshot(lake) == before
    assert read_entity(lake).equals(GOOD)
    assert staging_leftovers(lake) == []


def fails_with(plan: hygge_core.EntityPlan, *fragments: str) -> str:
    with pytest.raises(HomeError) as caught:
        hygge_core.run_entity(plan)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def test_missing_folder(tmp_path: Path) -> None:
    source = write_source(tmp_path / "home" / "items" / "a.parquet", GOOD).parent
    plan, lake, before = publish_good_version(tmp_path)
    shutil.rmtree(source)
    fails_with(plan, str(source), "does not exist")
    assert_untouched(lake, before)


def test_missing_file(tmp_path: Path) -> None:
    source = write_source(tmp_path / "home" / "items.parquet", GOOD)
    plan, lake, before = publish_good_version(tmp_path, home={"path": "home/{entity}.parquet"})
    source.unlink()
    fails_with(plan, str(source), "does not exist")
    assert_untouched(lake, before)


def test_glob_matching_nothing(tmp_path: Path) -> None:
    source = write_source(tmp_path / "home" / "items" / "a.parquet", GOOD)
    plan, lake, before = publish_good_version(tmp_path, home={"path": "home/{entity}/*.parquet"})
    source.unlink()
    fails_with(plan, str(tmp_path / "home" / "items" / "*.parquet"), "no files match")
    assert_untouched(lake, before)


def test_empty_folder(tmp_path: Path) -> None:
    source = write_source(tmp_path / "home" / "items" / "a.parquet", GOOD)
    plan, lake, before = publish_good_version(tmp_path)
    source.unlink()
    # Files that are not data must not count: hidden files, _-prefixed files, other extensions.
    (source.parent / "_SUCCESS").write_text("")
    (source.parent / ".a.parquet.crc").write_text("")
    (source.parent / "notes.txt").write_text("not parquet")
    fails_with(plan, str(source.parent), "no .parquet files")
    assert_untouched(lake, before)


def test_first_run_failure_leaves_no_trace(tmp_path: Path) -> None:
    (tmp_path / "home" / "items").mkdir(parents=True)
    write_project_at(tmp_path, project_yaml())
    plan = hygge_core.load_project(tmp_path).entity("files/items")
    fails_with(plan, "no .parquet files")
    lake = tmp_path / "lake" / "items"
    assert not lake.exists()
    assert staging_leftovers(lake) == []


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_file_is_named(tmp_path: Path, damage: str) -> None:
    folder = tmp_path / "home" / "items"
    write_source(folder / "a.parquet", GOOD.slice(0, 300))
    bad = write_source(folder / "b.parquet", GOOD.slice(300))
    plan, lake, before = publish_good_version(tmp_path)
    data = bad.read_bytes()
    if damage == "truncated":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        bad.write_bytes(bytes(range(256)) * 40)
    else:
        bad.write_bytes(b"")
    message = fails_with(plan, str(bad))
    assert "corrupt" in message or "not a valid Parquet" in message
    assert str(folder / "a.parquet") not in message  # the good file is not blamed
    assert_untouched(lake, before)


def test_corrupt_data_page_behind_a_valid_footer_is_named(tmp_path: Path) -> None:
    """The footer parses, so the file opens; the damage shows only while reading a row group."""
    folder = tmp_path / "home" / "items"
    write_source(folder / "a.parquet", GOOD.slice(0, 300))
    bad = write_source(folder / "b.parquet", GOOD.slice(300))
    plan, lake, before = publish_good_version(tmp_path)
    column = pq.ParquetFile(bad).metadata.row_group(0).column(1)  # the "tag" strings, zstd-compressed
    start = column.data_page_offset + 40
    data = bytearray(bad.read_bytes())
    data[start : start + 64] = b"\xff" * 64
    bad.write_bytes(bytes(data))
    pq.ParquetFile(bad)  # the footer still parses: this is damage only reading the data can find
    message = fails_with(plan, str(bad))
    assert "corrupt" in message
    assert_untouched(lake, before)


def test_incompatible_files_name_both_files_and_the_column(tmp_path: Path) -> None:
    folder = tmp_path / "home" / "items"
    write_source(folder / "a.parquet", GOOD)
    plan, lake, before = publish_good_version(tmp_path)
    other = GOOD.slice(0, 10).set_column(0, "id", pa.array([f"x{i}" for i in range(10)]))
    clash = write_source(folder / "b.parquet", other)
    message = fails_with(plan, str(folder / "a.parquet"), str(clash), "id")
    assert "string" in message
    assert_untouched(lake, before)


def test_fixing_the_source_publishes_again(tmp_path: Path) -> None:
    """The failure leaves nothing behind that blocks the next good run."""
    folder = tmp_path / "home" / "items"
    write_source(folder / "a.parquet", GOOD)
    plan, lake, before = publish_good_version(tmp_path)
    (folder / "b.parquet").write_bytes(b"PAR1 garbage")
    fails_with(plan, str(folder / "b.parquet"))
    newer = make_table(range(600, 700), "newer")
    write_source(folder / "b.parquet", newer)
    result = hygge_core.run_entity(plan)
    assert result.published and result.rows == 700
    assert read_entity(lake).equals(pa.concat_tables([GOOD, newer]))
    assert staging_leftovers(lake) == []


def test_changed_watermark_column_fails_that_entity_alone(tmp_path: Path) -> None:
    """A mark stored on ``id`` (int) says nothing about ``at`` (timestamp); comparing them must be a clear
    error for that entity, not a TypeError that takes the whole project run down."""
    for name in ("items", "other"):
        write_source(tmp_path / "home" / name / "a.parquet", make_table(range(0, 300), name))
    flow = {"watermark": {"column": "id"}}
    write_project_at(tmp_path, project_yaml(run_type="incremental", entities=["items", "other"], flow=flow))
    first = hygge_core.run_project(hygge_core.load_project(tmp_path))
    assert [r.status for r in first.entities] == ["success", "success"]
    lake = tmp_path / "lake"
    before = snapshot(lake / "items")

    changed = [{"name": "items", "watermark": {"column": "at"}}, "other"]
    write_project_at(tmp_path, project_yaml(run_type="incremental", entities=changed, flow=flow))
    for name in ("items", "other"):
        write_source(tmp_path / "home" / name / "b.parquet", make_table(range(300, 400), name))
    project = hygge_core.load_project(tmp_path)
    items, other = hygge_core.run_project(project, concurrency=1).entities
    assert items.status == "failed" and items.error_type == "HomeError"
    assert "stored watermark is on 'id' (int)" in (items.error or "")
    assert "'at' (datetime)" in (items.error or "") and "full_drop" in (items.error or "")
    assert snapshot(lake / "items") == before
    assert staging_leftovers(lake / "items") == []
    assert other.status == "success" and other.rows == 100
    assert read_entity(lake / "other").equals(make_table(range(0, 400), "other"))

    # As the message says: one full drop starts the new watermark, then incremental runs go on.
    reset = hygge_core.run_entity(project.entity("files/items"), run_type="full_drop")
    assert reset.watermark_after is not None and reset.watermark_after.column == "at"
    assert read_entity(lake / "items").equals(make_table(range(0, 400), "items"))
    assert hygge_core.run_entity(project.entity("files/items")).status == "skipped"

"""One schema per published version (issue 9, item 3), through real ``hygge start`` processes.

An incremental run whose new source file adds, drops or retypes a column
follows ``schema_change:``: ``fail`` (default) names every change and publishes
nothing; ``evolve`` rewrites the existing files to the unified schema in the same
publish; ``full_drop`` reloads the entity. After each run both polars and pyarrow
read the entity folder with one schema and exactly the expected rows.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .cli_support import hygge, output, tree
from .lake_readers import assert_one_schema_and_rows
from .support import project_yaml, read_state, write_project_at

VERSION_SCHEMA = pa.schema([("id", pa.int64()), ("score", pa.int32()), ("name", pa.string())])


def first_rows() -> pa.Table:
    return pa.table(
        {"id": range(0, 100), "score": pa.array(range(0, 100), pa.int32()), "name": [f"a{i}" for i in range(100)]},
        schema=VERSION_SCHEMA,
    )


def start(project: Path, *args: str) -> str:
    done = hygge("start", *args, project=project)
    text = output(done)
    assert done.returncode == 0, text
    return text


def published(root: Path, **flow: object) -> Path:
    write_project_at(root, project_yaml(run_type="incremental", flow=flow))
    (root / "home" / "items").mkdir(parents=True)
    pq.write_table(first_rows(), root / "home" / "items" / "a.parquet")
    start(root)
    lake = root / "lake" / "items"
    assert_one_schema_and_rows(lake, first_rows())
    return lake


def test_fail_is_the_default_and_names_every_changed_column(tmp_path: Path) -> None:
    project = tmp_path / "project"
    lake = published(project)
    changed = pa.table({"id": [100, 101], "score": ["high", "low"], "extra": [1.5, 2.5]})  # name dropped, score retyped
    pq.write_table(changed, project / "home" / "items" / "b.parquet")
    before = tree(project)
    done = hygge("start", project=project)
    text = output(done)
    assert done.returncode == 1, text
    for fragment in (
        "files/items: the source schema differs from the published version's",
        "added column 'extra' (double)",
        "dropped column 'name' (string)",
        "column 'score' retyped from int32 to string",
        "schema_change is 'fail', so nothing was published and the destination is unchanged",
    ):
        assert fragment in text, f"{fragment!r} not in {text!r}"
    assert tree(project) == before
    assert_one_schema_and_rows(lake, first_rows())


def test_evolve_rewrites_the_version_to_one_unified_schema(tmp_path: Path) -> None:
    project = tmp_path / "project"
    lake = published(project, schema_change="evolve")
    newer = pa.table(
        {"id": [100, 101], "score": pa.array([7_000_000_000, 8], pa.int64()), "name": ["b0", "b1"], "extra": [1.5, None]}
    )
    pq.write_table(newer, project / "home" / "items" / "b.parquet")
    outside = tree(project, skip=("lake",))
    start(project)
    old = first_rows()
    expected = pa.table(
        {
            "id": old["id"].to_pylist() + [100, 101],
            "score": pa.array(old["score"].to_pylist() + [7_000_000_000, 8], pa.int64()),
            "name": old["name"].to_pylist() + ["b0", "b1"],
            "extra": pa.array([None] * 100 + [1.5, None], pa.float64()),
        }
    )
    assert_one_schema_and_rows(lake, expected)
    assert read_state(lake)["columns"] == [["id", "int64"], ["score", "int64"], ["name", "string"], ["extra", "double"]]
    assert len(read_state(lake)["files"]) == 2
    assert tree(project, skip=("lake",)) == outside


def test_evolve_refuses_an_incompatible_change(tmp_path: Path) -> None:
    project = tmp_path / "project"
    lake = published(project, schema_change="evolve")
    pq.write_table(pa.table({"id": [100], "score": ["high"], "name": ["b0"]}), project / "home" / "items" / "b.parquet")
    before = tree(project)
    done = hygge("start", project=project)
    text = output(done)
    assert done.returncode == 1, text
    assert "schema_change is 'evolve' but this change is not compatible: column 'score' from int32 to string" in text
    assert "the destination is unchanged" in text
    assert tree(project) == before
    assert_one_schema_and_rows(lake, first_rows())


def test_full_drop_policy_reloads_the_entity_with_the_new_schema(tmp_path: Path) -> None:
    project = tmp_path / "project"
    lake = published(project, schema_change="full_drop")
    newer = pa.table({"id": [100, 101], "score": pa.array([1, 2], pa.int32()), "name": ["b0", "b1"], "extra": ["x", "y"]})
    pq.write_table(newer, project / "home" / "items" / "b.parquet")
    outside = tree(project, skip=("lake",))
    start(project)
    old = first_rows()
    expected = pa.table(
        {
            "id": old["id"].to_pylist() + [100, 101],
            "score": pa.array(old["score"].to_pylist() + [1, 2], pa.int32()),
            "name": old["name"].to_pylist() + ["b0", "b1"],
            "extra": [None] * 100 + ["x", "y"],
        }
    )
    assert_one_schema_and_rows(lake, expected)
    assert read_state(lake)["run_type"] == "full_drop"
    assert tree(project, skip=("lake",)) == outside

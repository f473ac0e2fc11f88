"""Runs over time: full drops are idempotent, incremental runs neither duplicate nor lose rows.

Every test adds source files between runs and compares the published rows with
exactly the rows the sources hold, plus the committed ``_hygge/state.json``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from hygge_core import EntityResult, load_project, run_entity

START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def make_project(write_project, run_type: str, *, watermark: str = "") -> Path:
    root = write_project(
        f"""
        name: runs
        flows:
          sales:
            home: {{type: parquet, path: incoming}}
            store: {{type: parquet, path: lake/sales}}
            run_type: {run_type}
            {watermark}
        """
    )
    (root / "incoming").mkdir()
    return root


def add_file(root: Path, name: str, ids: range) -> pa.Table:
    """A source file whose rows are ``ids``; every column is derived from the id."""
    table = pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "label": [f"{name}:{i}" for i in ids],
            "updated_at": pa.array([START + dt.timedelta(minutes=i) for i in ids], pa.timestamp("us", tz="UTC")),
        }
    )
    pq.write_table(table, root / "incoming" / name, row_group_size=400)
    return table


def run(root: Path, run_type: str | None = None) -> EntityResult:
    return run_entity(load_project(root).entity("sales/sales"), run_type=run_type)


def entity_dir(root: Path) -> Path:
    return root / "lake" / "sales"


def data_files(root: Path) -> list[Path]:
    folder = entity_dir(root)
    return sorted(p for p in folder.rglob("*.parquet") if "_hygge" not in p.relative_to(folder).parts)


def published(root: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in data_files(root)]).sort_by("id")


def expected(*tables: pa.Table) -> pa.Table:
    return pa.concat_tables(tables).sort_by("id")


def state(root: Path) -> dict:
    return json.loads((entity_dir(root) / "_hygge" / "state.json").read_text())


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of the entity folder and its bytes: equal snapshots mean nothing was touched."""
    folder = entity_dir(root)
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_full_drop_twice_gives_the_same_data_once(write_project):
    root = make_project(write_project, "full_drop")
    a = add_file(root, "a.parquet", range(1_000))
    b = add_file(root, "b.parquet", range(1_000, 1_500))

    first = run(root)
    first_state = state(root)
    second = run(root)

    assert published(root).equals(expected(a, b))
    assert len(data_files(root)) == 1  # the first run's file was replaced, not kept beside
    assert first.rows == second.rows == 1_500
    assert state(root)["run_id"] != first_state["run_id"]
    assert state(root)["files"] == [p.name for p in data_files(root)]


def test_full_drop_replaces_rows_that_left_the_source(write_project):
    root = make_project(write_project, "full_drop")
    add_file(root, "a.parquet", range(100))
    b = add_file(root, "b.parquet", range(100, 200))
    run(root)

    (root / "incoming" / "a.parquet").unlink()
    run(root)

    assert published(root).equals(b)


def test_incremental_with_nothing_new_adds_nothing_and_keeps_state(write_project):
    root = make_project(write_project, "incremental")
    a = add_file(root, "a.parquet", range(500))
    run(root)
    before = snapshot(root)

    again = run(root)

    assert again.status == "skipped" and not again.published
    assert again.rows == 0 and again.files == 0
    assert snapshot(root) == before  # same files, same bytes, same state.json
    assert published(root).equals(a)


def test_incremental_runs_never_duplicate_or_lose_rows(write_project):
    root = make_project(write_project, "incremental")
    a = add_file(root, "a.parquet", range(700))
    b = add_file(root, "b.parquet", range(700, 900))
    first = run(root)
    assert first.rows == 900
    assert published(root).equals(expected(a, b))

    c = add_file(root, "c.parquet", range(900, 1_000))
    second = run(root)
    assert second.rows == 100
    assert published(root).equals(expected(a, b, c))

    nested = root / "incoming" / "2025" / "02"
    nested.mkdir(parents=True)
    d = add_file(root, "2025/02/d.parquet", range(1_000, 1_250))
    e = add_file(root, "e.parquet", range(1_250, 1_300))
    third = run(root)
    assert third.rows == 300

    rows = published(root)
    assert rows.equals(expected(a, b, c, d, e))
    assert len(set(rows.column("id").to_pylist())) == rows.num_rows == 1_300
    assert sorted(state(root)["home"]["loaded_files"]) == [
        "2025/02/d.parquet",
        "a.parquet",
        "b.parquet",
        "c.parquet",
        "e.parquet",
    ]
    assert len(data_files(root)) == 3  # one file per run, earlier files kept as they were


def test_incremental_after_a_full_drop_picks_up_only_new_files(write_project):
    root = make_project(write_project, "incremental")
    a = add_file(root, "a.parquet", range(400))
    full = run(root, run_type="full_drop")
    assert full.rows == 400
    first_files = {p.name: p.read_bytes() for p in data_files(root)}

    b = add_file(root, "b.parquet", range(400, 450))
    incremental = run(root)

    assert incremental.rows == 50
    assert published(root).equals(expected(a, b))
    kept = {p.name: p.read_bytes() for p in data_files(root) if p.name in first_files}
    assert kept == first_files  # the full drop's file is untouched; only a new one was added


def test_full_drop_after_incrementals_starts_over_with_everything_once(write_project):
    root = make_project(write_project, "incremental")
    a = add_file(root, "a.parquet", range(100))
    run(root)
    b = add_file(root, "b.parquet", range(100, 200))
    run(root)

    again = run(root, run_type="full_drop")

    assert again.rows == 200
    assert published(root).equals(expected(a, b))
    assert len(data_files(root)) == 1


def test_watermark_column_is_tracked_across_runs_in_state(write_project):
    root = make_project(write_project, "incremental", watermark="watermark: {column: updated_at}")
    add_file(root, "a.parquet", range(300))
    first = run(root)

    assert first.watermark_before is None
    assert first.watermark_after is not None
    assert first.watermark_after.as_python() == START + dt.timedelta(minutes=299)
    assert state(root)["watermark"] == {
        "column": "updated_at",
        "kind": "datetime",
        "value": (START + dt.timedelta(minutes=299)).isoformat(),
    }

    add_file(root, "b.parquet", range(300, 420))
    second = run(root)

    assert second.watermark_before == first.watermark_after
    assert second.watermark_after is not None
    assert second.watermark_after.as_python() == START + dt.timedelta(minutes=419)
    assert state(root)["watermark"]["value"] == (START + dt.timedelta(minutes=419)).isoformat()

    nothing = run(root)
    assert nothing.status == "skipped"
    assert state(root)["watermark"]["value"] == (START + dt.timedelta(minutes=419)).isoformat()
    assert published(root).num_rows == 420


def test_integer_watermark_never_moves_backwards(write_project):
    root = make_project(write_project, "incremental", watermark="watermark: {column: id}")
    add_file(root, "a.parquet", range(1_000, 1_100))
    run(root)
    assert state(root)["watermark"] == {"column": "id", "kind": "int", "value": "1099"}

    add_file(root, "b.parquet", range(10))  # a late file with lower ids
    late = run(root)

    assert late.rows == 10
    assert state(root)["watermark"]["value"] == "1099"
    assert published(root).num_rows == 110

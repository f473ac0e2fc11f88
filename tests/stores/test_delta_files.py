"""Local full drops and appends: hygge writes the Delta data files itself and commits them with statistics.

What must hold: the table reads back exactly (delta-rs and Polars), the files are
snappy Parquet written on several lanes, and every statistic in the log is a safe
bound, so a reader that skips files by them never loses a row. The statistics are
compared with the ones delta-rs writes for the same data.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import hygge_core
from hygge_core.stores.delta_stats import MAX_TEXT_CHARS, file_stats

from .lakes import Lake
from .support import make_table, project_yaml, read_delta, read_polars, write_project, write_source

pytest.importorskip("deltalake", reason="Delta tests NOT RUN: install the test extra (deltalake)")


def log_adds(table_dir: Path) -> list[dict]:
    adds = []
    for log in sorted((table_dir / "_delta_log").glob("*.json")):
        for line in log.read_text(encoding="utf-8").splitlines():
            if line.strip() and "add" in (action := json.loads(line)):
                adds.append(action["add"])
    return adds


def test_a_local_full_drop_lands_hyggess_own_files_on_every_lane_and_reads_back_exactly(tmp_path: Path) -> None:
    from hygge_core.stores import delta as delta_store

    lake = Lake(name="local", root=str(tmp_path / "lake"))
    project = write_project(tmp_path / "project", project_yaml(lake).replace("batch_size: 100", "batch_size: 50000"))
    rows = make_table(range(300_000), "lanes")
    write_source(project / "home" / "items" / "a.parquet", rows, row_group_rows=50_000)
    plan = hygge_core.load_project(project).entity("files/items")
    result = hygge_core.run_entity(plan)
    assert result.rows == 300_000

    table_dir = tmp_path / "lake" / "items"
    adds = log_adds(table_dir)
    lanes = delta_store.data_file_lanes()
    assert len(adds) == min(lanes, 3)  # 300,000 rows are three row groups of 122,880, dealt to the lanes in turn
    for add in adds:
        staged = table_dir / add["path"]
        assert staged.name.startswith("part-") and staged.name.endswith(".snappy.parquet")
        assert staged.parent.name.startswith(delta_store.STAGING_PREFIX)
        metadata = pq.read_metadata(staged)
        assert metadata.row_group(0).column(0).compression == "SNAPPY"
        assert add["size"] == staged.stat().st_size
        assert json.loads(add["stats"])["numRecords"] == metadata.num_rows
    assert sum(json.loads(add["stats"])["numRecords"] for add in adds) == 300_000
    assert not list(table_dir.glob(f"{delta_store.STAGING_PREFIX}*/_delta_log"))  # no staging table: only files
    assert read_delta(lake, lake.uri("items")).equals(rows)
    assert read_polars(lake, lake.uri("items")).equals(rows)

    # An append after it: the same route, one more commit, nothing doubled.
    more = make_table(range(300_000, 300_010), "more")
    write_source(project / "home" / "items" / "a.parquet", more)
    write_project(project, project_yaml(lake, run_type="incremental", store={"merge_keys": []}))
    assert hygge_core.run_entity(hygge_core.load_project(project).entity("files/items")).rows == 10
    assert read_delta(lake, lake.uri("items")).equals(pa.concat_tables([rows, more]))


def mixed_rows() -> pa.Table:
    """Bounds at the edges: µs past the last millisecond, nulls, text at and past the 32-character limit."""
    return pa.table(
        {
            "id": pa.array([3, -7, None, 12], pa.int64()),
            "small": pa.array([1, 2, 3, None], pa.int16()),
            "flag": pa.array([True, None, False, True]),
            "day": pa.array([date(2024, 3, 1), date(1999, 12, 31), None, date(2024, 2, 29)]),
            "name": pa.array(["b", "a", None, "c" * MAX_TEXT_CHARS]),
            "long_text": pa.array(["x", "z" * (MAX_TEXT_CHARS + 1), None, "y"]),  # its maximum is too long to keep
            "at": pa.array(
                [
                    datetime(2024, 1, 1, 0, 0, 0, 123_456, tzinfo=UTC),
                    datetime(2024, 1, 2, 23, 59, 59, 999_999, tzinfo=UTC),
                    None,
                    datetime(2023, 6, 1, tzinfo=UTC),
                ],
                pa.timestamp("us", tz="UTC"),
            ),
            "naive": pa.array([datetime(2024, 1, 1), None, None, datetime(2024, 1, 3)], pa.timestamp("us")),
            "ratio": pa.array([1.5, float("nan"), None, -2.0]),
            "amount": pa.array([Decimal("1.25"), None, Decimal("-3.50"), Decimal("0.00")], pa.decimal128(10, 2)),
            "blob": pa.array([b"a", None, b"b", b"c"]),
        }
    )


def test_statistics_are_safe_bounds_and_agree_with_delta_rs(tmp_path: Path) -> None:
    from deltalake import write_deltalake

    rows = mixed_rows()
    path = tmp_path / "file.parquet"
    pq.write_table(rows, path, row_group_size=2)  # two row groups: the bounds are combined across them
    stats = json.loads(file_stats(pq.read_metadata(path), rows.schema))

    assert stats["numRecords"] == 4
    assert stats["nullCount"] == {name: rows.column(name).null_count for name in rows.column_names}
    assert stats["minValues"] == {
        "id": -7,
        "small": 1,
        "flag": False,
        "day": "1999-12-31",
        "name": "a",
        "at": "2023-06-01T00:00:00.000Z",
    }
    assert stats["maxValues"] == {
        "id": 12,
        "small": 3,
        "flag": True,
        "day": "2024-03-01",
        "name": "c" * MAX_TEXT_CHARS,
        "at": "2024-01-03T00:00:00.000Z",  # 23:59:59.999999 rounded up, never down
    }

    write_deltalake(str(tmp_path / "theirs"), rows)
    theirs = json.loads(log_adds(tmp_path / "theirs")[0]["stats"])
    assert theirs["numRecords"] == stats["numRecords"]
    for column in ("id", "small", "flag", "day", "name"):
        assert stats["minValues"][column] == theirs["minValues"][column], column
        assert stats["maxValues"][column] == theirs["maxValues"][column], column
    assert stats["minValues"]["at"] == theirs["minValues"]["at"].replace(":00Z", ":00.000Z")
    assert stats["nullCount"]["id"] == theirs["nullCount"]["id"]


def test_readers_filtering_by_the_statistics_get_exactly_the_matching_rows(tmp_path: Path) -> None:
    """Two commits, so two files with disjoint bounds; the filter's edge is the last microsecond of the newer one.

    (delta-rs, Polars and pyarrow all read these statistics; none of them lost this row even when the maximum was
    rounded down in an experiment, so the rounding itself is pinned by the test above.)
    """
    import polars as pl
    from deltalake import DeltaTable, QueryBuilder

    lake = Lake(name="local", root=str(tmp_path / "lake"))
    project = write_project(tmp_path / "project", project_yaml(lake, run_type="incremental", store={"merge_keys": []}))
    last = datetime(2024, 5, 5, 12, 0, 0, 999_999, tzinfo=UTC)
    for ids, moment in ((range(0, 5), datetime(2023, 1, 1, tzinfo=UTC)), (range(5, 10), last)):
        rows = make_table(ids, "edge")
        rows = rows.set_column(3, "at", pa.array([moment] * len(ids), pa.timestamp("us", tz="UTC")))
        write_source(project / "home" / "items" / "a.parquet", rows)
        hygge_core.run_entity(hygge_core.load_project(project).entity("files/items"))
    assert len(log_adds(tmp_path / "lake" / "items")) == 2

    table = DeltaTable(lake.uri("items"))
    edge = pa.scalar(last, pa.timestamp("us", tz="UTC"))
    sql = "SELECT id FROM t WHERE at >= TIMESTAMP '2024-05-05T12:00:00.999999Z' ORDER BY id"
    assert pa.table(QueryBuilder().register("t", table).execute(sql).read_all())["id"].to_pylist() == list(range(5, 10))
    assert sorted(pl.scan_delta(lake.uri("items")).filter(pl.col("at") >= last).collect()["id"]) == list(range(5, 10))
    assert sorted(table.to_pyarrow_dataset().to_table(filter=pa.compute.field("at") >= edge)["id"].to_pylist()) == list(
        range(5, 10)
    )
    assert table.to_pyarrow_dataset().to_table(filter=pa.compute.field("at") > edge).num_rows == 0
    assert sorted(table.to_pyarrow_dataset().to_table(filter=pa.compute.field("at") < edge)["id"].to_pylist()) == list(range(5))


def test_a_cancelled_run_stops_the_encoding_threads_and_leaves_the_table_and_no_staging(tmp_path: Path) -> None:
    import threading

    from hygge_core.errors import Cancelled
    from hygge_core.stores import delta as delta_store

    lake = Lake(name="local", root=str(tmp_path / "lake"))
    project = write_project(tmp_path / "project", project_yaml(lake).replace("batch_size: 100", "batch_size: 10000"))
    old = make_table(range(1000), "old")
    write_source(project / "home" / "items" / "a.parquet", old)
    plan = hygge_core.load_project(project).entity("files/items")
    hygge_core.run_entity(plan)
    table_dir = tmp_path / "lake" / "items"
    files_before = sorted(p.relative_to(table_dir) for p in table_dir.rglob("*"))

    write_source(project / "home" / "items" / "a.parquet", make_table(range(400_000), "new"), row_group_rows=10_000)
    cancel = threading.Event()
    with pytest.raises(Cancelled):
        hygge_core.run_entity(plan, cancel=cancel, progress=lambda p: cancel.set() if p.rows >= 300_000 else None)

    assert not [t.name for t in threading.enumerate() if t.name.startswith("hygge-encode")]
    # The committed run's files live in its own staging folder (a commit adds them where they are); no other is left.
    assert len(list(table_dir.glob(f"{delta_store.STAGING_PREFIX}*"))) == 1
    assert sorted(p.relative_to(table_dir) for p in table_dir.rglob("*")) == files_before
    assert read_delta(lake, lake.uri("items")).equals(old)


@pytest.mark.parametrize("run_type", ["full_drop", "incremental"])
@pytest.mark.parametrize("feature", ["column mapping", "constraint", "generated column"])
def test_a_table_whose_features_hygge_cannot_honour_is_refused_and_unchanged(tmp_path: Path, run_type: str, feature: str) -> None:
    """Column mapping would read every value of hygge's files as null; a constraint would not be checked."""
    from deltalake import DeltaTable, Field, Schema, write_deltalake

    rows = make_table(range(10), "refused")
    table_dir = tmp_path / "lake" / "items"
    if feature == "column mapping":
        DeltaTable.create(str(table_dir), Schema.from_arrow(rows.schema), configuration={"delta.columnMapping.mode": "name"})
        expected = ["column mapping", "delta.columnMapping.mode = name"]
    elif feature == "constraint":
        write_deltalake(str(table_dir), rows.slice(0, 1))
        DeltaTable(str(table_dir)).alter.add_constraint({"id_below_five": "id < 5"})
        expected = ["CHECK constraints", "id_below_five: id < 5"]
    else:
        fields = [Field.from_arrow(field) for field in rows.schema]
        fields[0] = Field("id", "long", nullable=True, metadata={"delta.generationExpression": "1"})
        DeltaTable.create(str(table_dir), Schema(fields))
        expected = ["a generated column (id = 1)"]
    version = DeltaTable(str(table_dir)).version()
    before = {p.relative_to(table_dir): p.read_bytes() for p in table_dir.rglob("*") if p.is_file()}
    lake = Lake(name="local", root=str(tmp_path / "lake"))
    project = write_project(tmp_path / "project", project_yaml(lake, run_type=run_type, store={"merge_keys": []}))
    write_source(project / "home" / "items" / "a.parquet", rows)

    with pytest.raises(hygge_core.StoreError) as caught:
        hygge_core.run_entity(hygge_core.load_project(project).entity("files/items"))
    message = str(caught.value)
    assert all(part in message for part in expected) and "files/items" in message and str(table_dir) in message
    assert {p.relative_to(table_dir): p.read_bytes() for p in table_dir.rglob("*") if p.is_file()} == before
    assert DeltaTable(str(table_dir)).version() == version


@pytest.mark.parametrize("mode", ["full_drop", "merge"])
def test_an_append_only_table_refuses_full_drops_and_merges_clearly_and_stays_unchanged(tmp_path: Path, mode: str) -> None:
    """Refused before anything is written (delta-rs would refuse the commit, which hygge used to call a concurrent
    writer and retry, after a merge had already left a data file behind)."""
    from deltalake import DeltaTable, write_deltalake

    rows = make_table(range(10), "append-only")
    table_dir = tmp_path / "lake" / "items"
    write_deltalake(str(table_dir), rows, configuration={"delta.appendOnly": "true"})
    before = {p.relative_to(table_dir): p.read_bytes() for p in table_dir.rglob("*") if p.is_file()}
    lake = Lake(name="local", root=str(tmp_path / "lake"))
    store = {"merge_keys": ["id"]} if mode == "merge" else None
    text = project_yaml(lake, run_type="incremental" if mode == "merge" else "full_drop", store=store)
    project = write_project(tmp_path / "project", text.replace("max: 0", "max: 2"))
    write_source(project / "home" / "items" / "a.parquet", make_table(range(5, 15), "new"))

    result = None
    with pytest.raises(hygge_core.StoreError) as caught:
        result = hygge_core.run_entity(hygge_core.load_project(project).entity("files/items"))
    assert result is None
    message = str(caught.value)
    assert "append-only" in message and "another writer" not in message and "files/items" in message
    assert str(table_dir) in message
    assert {
        p.relative_to(table_dir): p.read_bytes() for p in table_dir.rglob("*") if p.is_file() and "hygge-run-" not in str(p)
    } == before
    assert DeltaTable(str(table_dir)).version() == 0
    assert read_delta(lake, lake.uri("items")).equals(rows)


def test_an_append_only_refusal_at_commit_is_not_called_a_concurrent_writer() -> None:
    """The backstop when the table turned append-only after the run's start: a clear error, not a transient retry."""
    from pydantic import SecretStr

    from hygge_core.stores.delta_errors import delta_errors

    class CommitFailedError(Exception):
        pass

    errors = delta_errors(key="f/e", table_uri="/lake/e", secrets=lambda: {"k": SecretStr("s")}, action="commit to")
    with pytest.raises(hygge_core.StoreError) as caught, errors:
        raise CommitFailedError("The transaction includes Remove action with data change but Delta table is append-only")
    assert "append-only" in str(caught.value) and "another writer" not in str(caught.value)
    assert type(caught.value) is hygge_core.StoreError  # a StoreError, not the retried TransientError

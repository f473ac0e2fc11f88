"""Time partitions against the throwaway PostgreSQL server: a partition run reads [start, end) and replaces only its period.

Content is compared row for row; a partition a run did not touch keeps its files byte for byte.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import hygge_core
from hygge_core.errors import ConfigError
from hygge_core.project import EntityPlan

# Two rows a day for three days, one of them exactly at midnight (it belongs to the day it opens).
EVENTS = """
create table events (id int primary key, at timestamp not null, label text);
insert into events values
  (1, '2024-01-01 00:00:00', 'a'), (2, '2024-01-01 23:59:59.999', 'b'),
  (3, '2024-01-02 00:00:00', 'c'), (4, '2024-01-02 12:00:00', 'd'),
  (5, '2024-01-03 08:00:00', 'e'), (6, '2024-01-03 20:00:00', 'f');
"""

FLOW = """
flows:
  db:
    home: {type: postgres, connection: pg, batch_size: 2}
    store: {type: parquet, path: "lake/{entity}"}
    entities: [events]
    run_type: incremental
    watermark: {column: at}
    time_partitions: {period: daily, start: 2024-01-01}
"""


def lake_rows(root) -> list[tuple[int, str]]:
    table = pq.read_table(root / "lake" / "events")
    return sorted((row["id"], row["label"]) for row in table.to_pylist())


def record(root) -> dict:
    return json.loads((root / "lake" / "events" / "_hygge" / "state.json").read_text())


def files_of(root, key: str) -> dict[str, bytes]:
    tags = record(root)["file_partitions"]
    return {name: (root / "lake" / "events" / name).read_bytes() for name, tag in tags.items() if tag == key}


@pytest.fixture
def events(pgdb, pg_project):
    pgdb.sql(EVENTS)
    root = pg_project(FLOW, pool_size=3)
    return root, hygge_core.load_project(root).entity("db/events")


def run(plan: EntityPlan, key: str) -> hygge_core.EntityResult:
    result = hygge_core.run_entity(plan.for_partition(key))
    assert result.status == "success", result.error
    return result


def test_a_partition_run_replaces_only_its_period(events, pgdb):
    root, plan = events
    first = run(plan, "2024-01-01")
    assert (first.rows, first.source_rows, first.rows_published) == (2, 2, 2)
    assert {c.name: c.passed for c in first.checks}["row_count"]
    run(plan, "2024-01-02")
    assert lake_rows(root) == [(1, "a"), (2, "b"), (3, "c"), (4, "d")]  # the midnight row once, in the day it opens
    kept = files_of(root, "2024-01-01")
    assert kept

    # The source changes inside 2024-01-02: one row edited, one deleted, one added; reloading it twice adds nothing twice.
    pgdb.sql("update events set label = 'c2' where id = 3; delete from events where id = 4;")
    pgdb.sql("insert into events values (7, '2024-01-02 18:00:00', 'g')")
    run(plan, "2024-01-02")
    again = run(plan, "2024-01-02")
    assert (again.rows, again.source_rows) == (2, 2)
    assert lake_rows(root) == [(1, "a"), (2, "b"), (3, "c2"), (7, "g")]
    assert files_of(root, "2024-01-01") == kept  # the untouched partition: same files, same bytes
    state = record(root)
    assert state["watermark"] is None  # partition runs never move the watermark
    assert sorted(set(state["file_partitions"].values())) == ["2024-01-01", "2024-01-02"]
    assert sorted(state["file_partitions"]) == sorted(state["files"])


def test_an_emptied_period_publishes_an_empty_partition(events, pgdb):
    root, plan = events
    run(plan, "2024-01-03")
    pgdb.sql("delete from events where at >= '2024-01-03'")
    result = run(plan, "2024-01-03")
    assert (result.status, result.rows, result.published) == ("success", 0, True)
    assert lake_rows(root) == []


def test_two_partitions_at_once_keep_each_others_files(events):
    """Both runs start together; the second waits for the entity's lock and carries the first's files over."""
    root, plan = events
    run(plan, "2024-01-02")
    results: dict[str, hygge_core.EntityResult] = {}
    start = threading.Barrier(2)

    def load(key: str) -> None:
        start.wait()
        results[key] = hygge_core.run_entity(plan.for_partition(key))

    threads = [threading.Thread(target=load, args=(key,)) for key in ("2024-01-01", "2024-01-03")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {key: r.status for key, r in results.items()} == {"2024-01-01": "success", "2024-01-03": "success"}
    assert lake_rows(root) == [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e"), (6, "f")]
    assert sorted(set(record(root)["file_partitions"].values())) == ["2024-01-01", "2024-01-02", "2024-01-03"]


def test_files_loaded_before_partitioning_stop_a_partition_run(events, pg_project):
    root, plan = events
    unpartitioned = pg_project(FLOW.replace("    time_partitions: {period: daily, start: 2024-01-01}\n", ""), pool_size=3)
    assert unpartitioned == root
    hygge_core.run_entity(hygge_core.load_project(root).entity("db/events"))
    before = (root / "lake" / "events" / "_hygge" / "state.json").read_bytes()
    result = hygge_core.run_with_retries(plan.for_partition("2024-01-01"))
    assert result.status == "failed"
    assert "db/events: the commit record lists 1 file(s) loaded before time_partitions was set" in result.error
    assert "The destination is unchanged" in result.error
    assert (root / "lake" / "events" / "_hygge" / "state.json").read_bytes() == before


def test_a_failed_partition_run_keeps_the_published_version(events, pg_project):
    root, plan = events
    run(plan, "2024-01-01")
    before = {p.name: p.read_bytes() for p in (root / "lake" / "events").rglob("*") if p.is_file()}
    wrong = pg_project(FLOW.replace("start: 2024-01-01}", "start: 2024-01-01, column: nope}"), pool_size=3)
    result = hygge_core.run_with_retries(hygge_core.load_project(wrong).entity("db/events").for_partition("2024-01-02"))
    assert result.status == "failed"
    assert result.error.startswith(
        'db/events: time_partitions column \'nope\' is not a column of "public"."events"; columns: id, at, label'
    )
    assert {p.name: p.read_bytes() for p in (root / "lake" / "events").rglob("*") if p.is_file()} == before


def test_timestamptz_and_date_columns_in_another_timezone(pgdb, pg_project):
    """Copenhagen days: 2024-01-01 is [2023-12-31 23:00Z, 2024-01-01 23:00Z); a date column compares dates."""
    pgdb.sql(
        "create table stamped (id int primary key, at timestamptz, day date);"
        "insert into stamped values (1, '2023-12-31 22:59:59Z', '2023-12-31'), (2, '2023-12-31 23:00:00Z', '2024-01-01'),"
        " (3, '2024-01-01 22:59:59Z', '2024-01-01'), (4, '2024-01-01 23:00:00Z', '2024-01-02');"
    )
    root = pg_project(
        """
    flows:
      db:
        home: {type: postgres, connection: pg, table: stamped}
        store: {type: parquet, path: "lake/{entity}"}
        entities: [by_instant, {name: by_day, time_partitions: {period: daily, start: 2024-01-01, column: day}}]
        run_type: incremental
        time_partitions: {period: daily, start: 2024-01-01, column: at, timezone: Europe/Copenhagen}
    """
    )
    project = hygge_core.load_project(root)
    for entity in ("by_instant", "by_day"):
        run(project.entity(f"db/{entity}"), "2024-01-01")
        ids = sorted(row["id"] for row in pq.read_table(root / "lake" / entity).to_pylist())
        assert ids == [2, 3], entity


def test_windows_as_sql_text():
    from hygge_core.sql.dialect import DIALECTS, Window

    start, end = dt.datetime(2024, 1, 1, tzinfo=dt.UTC), dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    window = Window(
        column="ModifiedAt",
        lower=start.replace(tzinfo=None),
        upper=end.replace(tzinfo=None),
        declared="datetime2(3)",
        half_open=True,
    )
    assert DIALECTS["mssql"].where(window) == (
        " WHERE [ModifiedAt] >= CAST('2024-01-01T00:00:00' AS datetime2(3)) AND [ModifiedAt] < CAST('2024-01-02T00:00:00' AS datetime2(3))"
    )
    offsets = Window(column="At", lower=start, upper=end, declared="datetimeoffset(7)", half_open=True)
    assert DIALECTS["mssql"].count_query("[dbo].[T]", offsets) == (
        "SELECT COUNT(*) AS hygge_count FROM [dbo].[T] WHERE [At] >= CAST('2024-01-01T00:00:00+00:00' AS datetimeoffset(7)) "
        "AND [At] < CAST('2024-01-02T00:00:00+00:00' AS datetimeoffset(7))"
    )


def test_partition_keys_are_checked(events):
    _, plan = events
    with pytest.raises(ConfigError, match=r"db/events: '2024-1-40' is not a daily partition key; write it as '2024-01-01'"):
        plan.for_partition("2024-1-40")
    with pytest.raises(ConfigError, match=r"db/events: partition '2023-12-31' is before time_partitions.start"):
        plan.for_partition("2023-12-31")
    with pytest.raises(ConfigError, match=r"a full_drop run would drop every other partition"):
        hygge_core.run_entity(plan.for_partition("2024-01-01"), run_type="full_drop")
    assert plan.latest_partition(dt.datetime(2024, 3, 5, 7, tzinfo=dt.UTC)) == "2024-03-04"


def test_a_delta_partition_run_is_one_predicate_overwrite(pgdb, pg_project):
    from deltalake import DeltaTable

    pgdb.sql(EVENTS.replace("at timestamp not null", "at timestamptz not null"))
    root = pg_project(FLOW.replace('type: parquet, path: "lake/{entity}"', 'type: delta, path: "lake/{entity}"'), pool_size=3)
    plan = hygge_core.load_project(root).entity("db/events")
    table_path = str(root / "lake" / "events")

    def content() -> list[tuple[int, str]]:
        return sorted((row["id"], row["label"]) for row in DeltaTable(table_path).to_pyarrow_table().to_pylist())

    run(plan, "2024-01-01")
    run(plan, "2024-01-02")

    def files() -> list[Path]:
        return [Path(uri.removeprefix("file://")) for uri in DeltaTable(table_path).file_uris()]

    kept = {path: path.read_bytes() for path in files()}
    pgdb.sql("update events set label = 'c2' where id = 3; delete from events where id = 4;")
    pgdb.sql("insert into events values (7, '2024-01-02 18:00:00', 'g')")
    version = DeltaTable(table_path).version()
    run(plan, "2024-01-02")
    result = run(plan, "2024-01-02")
    assert DeltaTable(table_path).version() == version + 2  # one commit per partition run
    assert (result.rows, result.publish.table_rows) == (2, 4)
    assert content() == [(1, "a"), (2, "b"), (3, "c2"), (7, "g")]
    untouched = [path for path in kept if path in files()]
    assert len(untouched) == 1 and untouched[0].read_bytes() == kept[untouched[0]]  # 2024-01-01's file, as it was
    history = DeltaTable(table_path).history(1)[0]
    assert history["operation"] == "WRITE" and "2024-01-02" in history["operationParameters"]["predicate"]


def test_two_delta_partitions_at_once_both_land(pgdb, pg_project):
    """Optimistic concurrency: a commit that lost the race is a transient error, retried on the newer version."""
    from deltalake import DeltaTable

    pgdb.sql(EVENTS)
    flow = FLOW.replace('type: parquet, path: "lake/{entity}"', 'type: delta, path: "lake/{entity}"')
    root = pg_project(flow + "    retries: {max: 5, delay: 0s, jitter: false}\n", pool_size=3)
    plan = hygge_core.load_project(root).entity("db/events")
    run(plan, "2024-01-02")
    results: dict[str, hygge_core.EntityResult] = {}
    start = threading.Barrier(2)

    def load(key: str) -> None:
        start.wait()
        results[key] = hygge_core.run_with_retries(plan.for_partition(key))

    threads = [threading.Thread(target=load, args=(key,)) for key in ("2024-01-01", "2024-01-03")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {key: r.status for key, r in results.items()} == {"2024-01-01": "success", "2024-01-03": "success"}
    rows = DeltaTable(str(root / "lake" / "events")).to_pyarrow_table().to_pylist()
    assert sorted((row["id"], row["label"]) for row in rows) == [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e"), (6, "f")]

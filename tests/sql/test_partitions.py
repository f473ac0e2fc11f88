"""Parallel key-range reads (home.partitions) against the throwaway server: every row exactly once, by content."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time

import pyarrow.parquet as pq
import pytest

import hygge_core
from hygge_core.errors import HomeError, TransientError
from hygge_core.sql.pool import pool_for


def lake(root, entity):
    rows = pq.read_table(root / "lake" / entity).to_pylist()
    return sorted(rows, key=lambda r: r["id"])


def range_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("hygge-range-")]


def md5(value: int) -> str:
    return hashlib.md5(str(value).encode()).hexdigest()


# ids 1..3000; k is NULL for every 7th row, 1..1000 dense, then a long sparse tail (skew: most ranges are empty)
SKEWED = """
create table skewed (id int primary key, k bigint, label text);
insert into skewed select g, case when g % 7 = 0 then null when g <= 1000 then g else 1000000000 + g * 1000 end, md5(g::text)
from generate_series(1, 3000) g;
"""


def skewed_rows() -> list[dict]:
    def key(g: int) -> int | None:
        if g % 7 == 0:
            return None
        return g if g <= 1000 else 1_000_000_000 + g * 1000

    return [{"id": g, "k": key(g), "label": md5(g)} for g in range(1, 3001)]


def test_null_and_skewed_keys_every_row_once(pgdb, pg_project):
    pgdb.sql(SKEWED)
    root = pg_project(
        """
    flows:
      db:
        home: {type: postgres, connection: pg, batch_size: 100, partitions: {column: k, count: 4}}
        store: {type: parquet, path: "lake/{entity}"}
        entities: [skewed]
    """,
        pool_size=4,
    )
    project = hygge_core.load_project(root)
    result = hygge_core.run_entity(project.entity("db/skewed"))
    assert (result.rows, result.source_rows) == (3000, 3000)
    assert lake(root, "skewed") == skewed_rows()  # NULL keys included once, skewed tail not doubled
    pool = pool_for("pg", project.config.connections["pg"])
    assert pool.peak_open <= 4 and pool.open_count <= 4
    assert range_threads() == []


def test_ranges_are_read_at_once_on_separate_connections(pgdb, pg_project):
    """While the writer holds the first batch, a second server session is reading another range."""
    pgdb.sql(
        "create table wide (id bigint primary key, label text); insert into wide select g, md5(g::text) from generate_series(1, 60000) g;"
    )
    root = pg_project(
        """
    flows:
      db:
        home: {type: postgres, connection: pg, batch_size: 500, partitions: {column: id, count: 2}}
        store: {type: parquet, path: "lake/{entity}"}
        entities: [wide]
    """,
        pool_size=2,
    )
    plan = hygge_core.load_project(root).entity("db/wide")
    seen_sessions: list[int] = []

    def progress(report):
        if seen_sessions:
            return
        # The first range cannot finish while the writer waits here (the queues hold a few 500-row batches of
        # its 30,000 rows), so two open sessions now means the second range is being read concurrently.
        deadline = time.monotonic() + 60
        while pgdb.backends() < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        seen_sessions.append(pgdb.backends())

    result = hygge_core.run_entity(plan, progress=progress)
    assert seen_sessions == [2]
    assert result.rows == 60000
    assert lake(root, "wide") == [{"id": g, "label": md5(g)} for g in range(1, 60001)]


def test_pool_smaller_than_count_reads_every_range_without_waiting(pgdb, pg_project):
    pgdb.sql(SKEWED)
    root = pg_project(
        """
    flows:
      db:
        home: {type: postgres, connection: pg, batch_size: 250, partitions: {column: k, count: 6}}
        store: {type: parquet, path: "lake/{entity}"}
        entities: [skewed]
    """,
        pool_size=1,
    )
    project = hygge_core.load_project(root)
    result = hygge_core.run_entity(project.entity("db/skewed"))
    assert result.rows == 3000
    assert lake(root, "skewed") == skewed_rows()
    pool = pool_for("pg", project.config.connections["pg"])
    assert pool.peak_open == 1 and pool.opened_total == 1


def test_count_larger_than_rows_and_empty_windows(pgdb, pg_project):
    pgdb.sql("""
        create table few (id int primary key, k int, label text); insert into few values (1, 5, 'a'), (2, 6, 'b'), (3, 7, 'c');
        create table far (id int primary key, k bigint, label text); insert into far values (1, 1, 'a'), (2, 2, 'b'), (3, 1000000000000, 'c');
        create table nulls (id int primary key, k int, label text); insert into nulls values (1, null, 'a'), (2, null, 'b');
        create table empty (id int primary key, k int, label text);
    """)
    root = pg_project(
        """
    flows:
      db:
        home: {type: postgres, connection: pg, partitions: {column: k, count: 8}}
        store: {type: parquet, path: "lake/{entity}"}
        entities: [few, far, nulls, empty]
    """,
        pool_size=3,
    )
    project = hygge_core.load_project(root)
    results = {e.entity: e for e in hygge_core.run_project(project).entities}
    assert {name: (r.status, r.rows, r.source_rows) for name, r in results.items()} == {
        "few": ("success", 3, 3),
        "far": ("success", 3, 3),
        "nulls": ("success", 2, 2),
        "empty": ("success", 0, 0),
    }
    assert lake(root, "few") == [
        {"id": 1, "k": 5, "label": "a"},
        {"id": 2, "k": 6, "label": "b"},
        {"id": 3, "k": 7, "label": "c"},
    ]
    assert lake(root, "far") == [
        {"id": 1, "k": 1, "label": "a"},
        {"id": 2, "k": 2, "label": "b"},
        {"id": 3, "k": 10**12, "label": "c"},
    ]
    assert lake(root, "nulls") == [{"id": 1, "k": None, "label": "a"}, {"id": 2, "k": None, "label": "b"}]
    empty = pq.read_table(root / "lake" / "empty")
    assert empty.num_rows == 0 and empty.schema.names == ["id", "k", "label"]


@pytest.mark.parametrize("key", ["at", "at_utc", "day"])
def test_date_and_timestamp_keys(pgdb, pg_project, key):
    pgdb.sql("""
        create table stamped (id int primary key, at timestamp, at_utc timestamptz, day date);
        insert into stamped select g,
            case when g % 11 = 0 then null else timestamp '2024-01-01 00:00:00.25' + g * interval '37 seconds 125 milliseconds' end,
            case when g % 13 = 0 then null else timestamptz '2024-03-01 00:00:00.5+00' + g * interval '3 minutes' end,
            case when g % 17 = 0 then null else date '2023-12-30' + (g % 9) end
        from generate_series(1, 2000) g;
    """)
    root = pg_project(
        f"""
    flows:
      db:
        home: {{type: postgres, connection: pg, batch_size: 300, partitions: {{column: {key}, count: 5}}}}
        store: {{type: parquet, path: "lake/{{entity}}"}}
        entities: [stamped]
    """,
        pool_size=3,
    )
    result = hygge_core.run_entity(hygge_core.load_project(root).entity("db/stamped"))
    assert result.rows == 2000
    rows = lake(root, "stamped")
    assert [r["id"] for r in rows] == list(range(1, 2001))
    start = dt.datetime(2024, 1, 1, 0, 0, 0, 250000)
    assert rows[0]["at"] == start + dt.timedelta(seconds=37.125)
    assert rows[10]["at"] is None and rows[12]["at_utc"] is None and rows[16]["day"] is None
    assert rows[1999]["at"] == start + 2000 * dt.timedelta(seconds=37.125)
    assert rows[1999]["at_utc"] == dt.datetime(2024, 3, 1, 0, 0, 0, 500000, tzinfo=dt.UTC) + 2000 * dt.timedelta(minutes=3)
    assert rows[1998]["day"] == dt.date(2023, 12, 30) + dt.timedelta(days=1999 % 9)


def test_incremental_with_partitions_reads_only_the_window_once(pgdb, pg_project):
    pgdb.sql("""
        create table events (id int primary key, payload text, modified_at timestamp not null, version int not null);
        insert into events select g, 'v1', timestamp '2024-01-01' + g * interval '1 minute', 1 from generate_series(1, 500) g;
    """)
    root = pg_project(
        """
    flows:
      app:
        home: {type: postgres, connection: pg, batch_size: 50, partitions: {column: id, count: 3}}
        store: {type: parquet, path: "lake/{entity}"}
        entities: [events]
        run_type: incremental
        watermark: {column: modified_at, key: id}
    """,
        pool_size=3,
    )
    plan = hygge_core.load_project(root).entity("app/events")
    first = hygge_core.run_entity(plan)
    assert (first.rows, first.source_rows) == (500, 500)

    # Updated old rows land in the low range, new rows far above the old MAX(id): the MIN/MAX is of the window only.
    pgdb.sql("""
        insert into events select g, 'v1', timestamp '2024-02-01' + g * interval '1 second', 1 from generate_series(100001, 100040) g;
        update events set payload = 'v2', version = 2, modified_at = timestamp '2024-03-01' where id in (3, 250, 100001);
    """)
    second = hygge_core.run_entity(plan)
    assert (second.rows, second.source_rows) == (42, 42)
    assert second.watermark_after.value == "2024-03-01T00:00:00"
    assert hygge_core.run_entity(plan).rows == 0

    rows = pq.read_table(root / "lake" / "events").to_pylist()
    versions = sorted((r["id"], r["version"], r["payload"]) for r in rows)
    expected = [(i, 1, "v1") for i in [*range(1, 501), *range(100001, 100041)] if i != 100001]
    expected += [(3, 2, "v2"), (250, 2, "v2"), (100001, 2, "v2")]
    assert versions == sorted(expected)


def test_failure_in_one_range_aborts_the_others_and_keeps_the_previous_version(pgdb, pg_project):
    pgdb.sql(
        "create table notes (id int primary key, body text); insert into notes select g, md5(g::text) from generate_series(1, 20000) g;"
    )
    root = pg_project(
        """
    flows:
      db:
        home: {type: postgres, connection: pg, batch_size: 200, max_text_size: 100, partitions: {column: id, count: 4}}
        store: {type: parquet, path: "lake/{entity}"}
        entities: [notes]
        retries: {max: 0}
    """,
        pool_size=4,
        connection_extra="    reader: odbc\n",  # max_text_size bounds psqlODBC's buffers; the native reader has none
    )
    project = hygge_core.load_project(root)
    plan = project.entity("db/notes")
    assert hygge_core.run_entity(plan).rows == 20000
    before = lake(root, "notes")

    pgdb.sql("update notes set body = 'changed' where id <= 10; update notes set body = repeat('x', 300) where id = 19990;")
    with pytest.raises(HomeError) as caught:
        hygge_core.run_entity(plan)
    message = str(caught.value)
    assert "max_text_size" in message and "range id >= 15001" in message  # the last of 4 ranges over 1..20000
    assert lake(root, "notes") == before
    staging = root / "lake" / ".hygge-staging"
    assert not staging.exists() or not [p for p in staging.iterdir() if p.suffix != ".lock"]
    assert range_threads() == []
    pool = pool_for("pg", project.config.connections["pg"])
    # every connection came back: all four can be borrowed at once without waiting
    borrowed = [pool.acquire(timeout=0) for _ in range(4)]
    for connection in borrowed:
        pool.release(connection)

    pgdb.sql("update notes set body = 'fixed' where id = 19990;")
    again = hygge_core.run_entity(plan)
    assert again.rows == 20000
    rows = lake(root, "notes")
    assert rows[0]["body"] == "changed" and rows[19989]["body"] == "fixed" and rows[500]["body"] == md5(501)


def test_dropped_connection_in_one_range_is_transient(pgdb, pg_project):
    pgdb.sql(
        "create table big (id bigint primary key, label text); insert into big select g, 'row ' || g from generate_series(1, 100000) g;"
    )
    root = pg_project(
        """
    flows:
      db:
        home: {type: postgres, connection: pg, batch_size: 1000, partitions: {column: id, count: 2}}
        store: {type: parquet, path: "lake/{entity}"}
        entities: [big]
        retries: {max: 0}
    """,
        pool_size=2,
        connection_extra="    reader: odbc\n",  # the native reader's lost connection: test_native_reader.py
    )
    plan = hygge_core.load_project(root).entity("db/big")
    killed: list[str] = []

    def kill_one_backend(report):
        if killed:
            return
        deadline = time.monotonic() + 60
        while pgdb.backends() < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        pid = pgdb.server.psql(
            f"select max(pid) from pg_stat_activity where usename = '{pgdb.user}' and backend_type = 'client backend'"
        ).strip()
        killed.append(pgdb.server.psql(f"select pg_terminate_backend({pid})").strip())

    with pytest.raises(TransientError) as caught:
        hygge_core.run_entity(plan, progress=kill_one_backend)
    assert killed == ["t"]
    assert pgdb.name in str(caught.value) and "range id" in str(caught.value)
    assert not (root / "lake" / "big").exists()
    assert range_threads() == []
    again = hygge_core.run_entity(plan)  # broken connections were discarded, not lent again
    assert again.rows == 100000
    assert lake(root, "big")[-1] == {"id": 100000, "label": "row 100000"}


def test_unusable_partition_columns_fail_in_check_and_run_naming_the_column(pgdb, pg_project):
    pgdb.sql("create table priced (id int primary key, price numeric(10,2), code text); insert into priced values (1, 2.5, 'a');")
    root = pg_project("""
    flows:
      db:
        home: {type: postgres, connection: pg}
        store: {type: parquet, path: "lake/{entity}"}
        entities:
          - {name: priced, home: {partitions: {column: price, count: 2}}}
          - {name: missing, home: {table: priced, partitions: {column: nope, count: 2}}}
    """)
    project = hygge_core.load_project(root)
    with pytest.raises(
        HomeError, match=r"partitions.column 'price' is numeric\(10,2\); partition on an integer, date or timestamp column"
    ):
        project.entity("db/priced").create_home().check()
    with pytest.raises(HomeError, match=r"partitions.column 'price' is numeric\(10,2\)"):
        hygge_core.run_entity(project.entity("db/priced"))
    with pytest.raises(
        HomeError, match=r"partitions.column 'nope' is not a column of \"public\".\"priced\"; columns: id, price, code"
    ):
        hygge_core.run_entity(project.entity("db/missing"))
    assert not (root / "lake" / "priced").exists()


def test_query_entity_is_partitioned_through_the_wrapped_query(pgdb, pg_project):
    pgdb.sql(SKEWED)
    root = pg_project(
        """
    flows:
      db:
        home: {type: postgres, connection: pg, batch_size: 100}
        store: {type: parquet, path: "lake/{entity}"}
        entities:
          - name: some
            home: {query: "select id, k, label from skewed where id <= 2000", partitions: {column: k, count: 3}}
    """,
        pool_size=3,
    )
    result = hygge_core.run_entity(hygge_core.load_project(root).entity("db/some"))
    assert (result.rows, result.source_rows) == (2000, 2000)
    assert lake(root, "some") == skewed_rows()[:2000]

"""SQL entities through Dagster's multiprocess executor against the real PostgreSQL: the whole stack at once.

Step processes open their own pooled connections, the row-count check reconciles with
the server's COUNT, and the unique-key check judges what was published.
"""

from __future__ import annotations

import pyarrow.parquet as pq
from dagster import DagsterInstance

import hygge_core
from hygge_dagster import materialize_entities

FLOWS = """
flows:
  app:
    home: {type: postgres, connection: pg}
    store: {type: parquet, path: "lake/{entity}"}
    entities: [events]
    run_type: incremental
    watermark: {column: modified_at, key: id}
  snapshot:
    home: {type: postgres, connection: pg}
    store: {type: parquet, path: "lake/{entity}"}
    entities: [dupes]
    watermark: {key: id}
"""


def checks_of(outcome) -> dict[str, bool]:
    return {check.name: check.passed for check in outcome.checks}


def test_sql_entities_materialise_with_checks_in_step_processes(pgdb, pg_project, tmp_path):
    pgdb.sql("""
        create table events (id int primary key, payload text, modified_at timestamp not null);
        insert into events select g, 'v1', timestamp '2024-01-01' + g * interval '1 minute' from generate_series(1, 100) g;
        create table dupes (id int, label text);
        insert into dupes values (1, 'a'), (2, 'b'), (2, 'b again'), (null, 'no key');
    """)
    # Dagster's step processes fork from a forkserver that an earlier test in this session may have
    # started, before this test's password variable existed: give the project its password literally.
    root = pg_project(FLOWS, pool_size=1)
    config = root / "hygge.yml"
    config.write_text(config.read_text().replace('"${HYGGE_TEST_PG_PASSWORD}"', '"' + pgdb.password + '"'))
    project = hygge_core.load_project(root)
    (tmp_path / "dagster").mkdir()
    with DagsterInstance.local_temp(tempdir=str(tmp_path / "dagster")) as instance:
        first = materialize_entities(project, project.plans, instance=instance, max_concurrent=2)

        by_key = {outcome.key: outcome for outcome in first.entities}
        events, dupes = by_key["app/events"], by_key["snapshot/dupes"]
        assert events.status == "success" and events.rows == 100 and events.attempts == 1
        assert checks_of(events) == {"row_count": True, "schema_drift": True, "unique_key": True}
        assert dupes.status == "success" and dupes.rows == 4
        assert checks_of(dupes)["unique_key"] is False  # a duplicate and a null key, reported, not hidden
        assert checks_of(dupes)["row_count"] is True

        pgdb.sql("""
            update events set payload = 'v2', modified_at = timestamp '2024-03-01' where id in (3, 30);
            insert into events select g, 'v1', timestamp '2024-02-01' + g * interval '1 second' from generate_series(101, 105) g;
        """)
        second = materialize_entities(project, [project.entity("app/events")], instance=instance, max_concurrent=2)

    (events,) = second.entities
    assert events.status == "success" and events.rows == 7
    assert checks_of(events)["unique_key"] is True  # id repeats for updated rows, (id, modified_at) does not
    published = pq.read_table(project.entity("app/events").store.path).to_pylist()
    assert len(published) == 107
    assert sorted(r["id"] for r in published if r["payload"] == "v2") == [3, 30]
    assert sorted({r["id"] for r in published}) == list(range(1, 106))

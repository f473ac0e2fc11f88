"""The Dagster resource hands out the pool the homes use and closes it after the run."""

from __future__ import annotations

import dagster as dg

import hygge_core
from hygge_core.sql.resource import SqlPoolResource


def test_resource_shares_the_home_pool_and_closes_it(pgdb, pg_project):
    pgdb.sql("create table items (id int); insert into items values (1), (2);")
    root = pg_project("""
    flows:
      db:
        home: {type: postgres, connection: pg}
        store: {type: parquet, path: "lake/{entity}"}
        entities: [items]
    """)
    seen = {}

    @dg.asset
    def items_via_hygge(erp: SqlPoolResource) -> None:
        project = hygge_core.load_project(root)
        result = hygge_core.run_entity(project.entity("db/items"))
        pool = erp.get_pool()
        with pool.connection() as connection:
            seen["count"] = connection.fetch_all("select count(*) as n from items", during="test").to_pylist()
        seen["rows"] = result.rows
        seen["opened"] = pool.opened_total
        seen["backends_during"] = pgdb.backends()

    outcome = dg.materialize([items_via_hygge], resources={"erp": SqlPoolResource(project=str(root), connection="pg")})
    assert outcome.success
    assert seen == {"count": [{"n": 2}], "rows": 2, "opened": 1, "backends_during": 1}  # one connection, shared
    assert pgdb.backends() == 0  # closed at teardown

"""Names are data (issue 9, item 7): PostgreSQL tables whose names would map to one entity are refused, never merged.

``public."a/b"`` and ``public.a_b`` both become entity ``public.a_b`` once the separator is
made safe for a folder name; ``hygge debug`` and ``hygge start`` must both name the two
tables and write nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

import hygge_core

HYGGE = str(Path(sys.executable).with_name("hygge"))


def test_two_tables_that_would_become_one_entity_are_refused_by_name(pgdb, pg_project) -> None:
    pgdb.sql(
        'create table public."a/b" (id int); insert into public."a/b" values (1); create table public.a_b (id int); insert into public.a_b values (2);'
    )
    root = pg_project(
        """
        flows:
          erp:
            home: {type: postgres, connection: pg}
            store: {type: parquet, path: "lake/{entity}"}
            entities: {include: ["public.a*"]}
        """
    )
    before = sorted(str(path.relative_to(root)) for path in root.rglob("*"))
    env = {**os.environ, "DAGSTER_HOME": str(root.parent / "dagster-home")}
    (root.parent / "dagster-home").mkdir()
    for command in ("debug", "start"):
        done = subprocess.run([HYGGE, command, "-p", str(root)], env=env, capture_output=True, text=True, timeout=300)
        text = " ".join((done.stdout + done.stderr).split())
        assert done.returncode == 2, text
        assert (
            "hygge.yml: flows.erp.entities: discovered 'public.a/b' and 'public.a_b' would both become entity 'public.a_b'"
            in text
        )
        assert sorted(str(path.relative_to(root)) for path in root.rglob("*")) == before


def test_a_discovered_name_made_folder_safe_still_reads_its_own_table(pgdb, pg_project) -> None:
    """``public."c/d"`` lands as entity ``public.c_d`` with ITS rows, not those of a table named ``c_d`` (none here)."""
    pgdb.sql("create table public.\"c/d\" (id int, note text); insert into public.\"c/d\" values (7, 'seven'), (8, 'eight');")
    root = pg_project(
        """
        flows:
          erp:
            home: {type: postgres, connection: pg}
            store: {type: parquet, path: "lake/{entity}"}
            entities: {include: ["public.c*"]}
        """
    )
    project = hygge_core.load_project(root)
    plan = project.entity("erp/public.c_d")
    assert plan.home.lineage_name() == "public.c/d"
    result = hygge_core.run_entity(plan)
    assert result.status == "success", result.error
    assert sorted(pq.read_table(root / "lake" / "public.c_d").to_pylist(), key=lambda row: row["id"]) == [
        {"id": 7, "note": "seven"},
        {"id": 8, "note": "eight"},
    ]

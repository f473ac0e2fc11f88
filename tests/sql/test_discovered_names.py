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

"""`hygge debug` against a real PostgreSQL: it connects for real and says what to fix."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "postgres_to_parquet.yaml"
HYGGE = str(Path(sys.executable).with_name("hygge"))


def debug(project: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HYGGE, "debug", "-p", str(project)], env={**os.environ, **env}, capture_output=True, text=True, timeout=300
    )


def test_debug_connects_and_reads_each_table(pgdb, tmp_path):
    pgdb.sql(
        "create schema shop;"
        "create table shop.orders (order_id bigint primary key, updated_at timestamp not null);"
        "create table shop.customers (customer_id int primary key, name text, updated_at timestamp not null);"
    )
    project = tmp_path / "hygge.yml"
    shutil.copy(SAMPLE, project)

    completed = debug(project, pgdb.env())

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert (
        "table shop.orders readable, 2 column(s), read through ADBC's PostgreSQL driver (Arrow, binary COPY)" in completed.stdout
    )
    assert "table shop.customers readable, 3 column(s)" in completed.stdout
    assert "all checks passed" in completed.stdout


def test_debug_names_the_server_on_a_wrong_password_and_never_prints_it(pgdb, tmp_path):
    pgdb.sql("create schema shop; create table shop.orders (order_id bigint primary key, updated_at timestamp not null);")
    project = tmp_path / "hygge.yml"
    shutil.copy(SAMPLE, project)
    env = {**pgdb.env(), "PGPASSWORD": "definitely-wrong-secret"}

    completed = debug(project, env)

    output = completed.stdout + completed.stderr
    assert completed.returncode != 0, output
    assert f"{pgdb.server.host}" in output and "password" in output.lower()
    assert "definitely-wrong-secret" not in output

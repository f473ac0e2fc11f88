"""The SQL suite's fixtures: one throwaway PostgreSQL server per test session, real ODBC all the way.

The server is started with ``initdb`` in a temporary folder on a free loopback
port (as the ``postgres`` user when the tests run as root) and removed at the
end. Missing binaries or drivers fail loudly with the install command: a SQL
suite that skips itself on a CI machine proves nothing.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pg_server  # noqa: E402

from hygge_core.sql import pool as sql_pool  # noqa: E402

_names = itertools.count()


@pytest.fixture(scope="session")
def pg() -> Iterator[pg_server.PgServer]:
    try:
        import pyodbc
    except ImportError as exc:
        pytest.fail(f"pyodbc cannot be imported ({exc}); {pg_server.INSTALL_HINT}")
    if not any(name.startswith("PostgreSQL") for name in pyodbc.drivers()):
        pytest.fail(f"psqlODBC is not registered with unixODBC (drivers: {pyodbc.drivers()}); {pg_server.INSTALL_HINT}")
    server = pg_server.start()
    try:
        yield server
    finally:
        sql_pool.close_all()
        server.stop()


class PgDatabase:
    """A fresh database and login for one test: tests never see each other's tables."""

    def __init__(self, server: pg_server.PgServer, name: str) -> None:
        self.server = server
        self.name = name
        self.user = f"{name}_user"
        self.password = "p;w}d'" + name  # characters that must be escaped in an ODBC connection string

    def sql(self, statement: str) -> str:
        return self.server.psql(statement, database=self.name, user=self.user, password=self.password)

    def env(self) -> dict[str, str]:
        return {
            "PGHOST": self.server.host,
            "PGPORT": str(self.server.port),
            "PGDATABASE": self.name,
            "PGUSER": self.user,
            "PGPASSWORD": self.password,
        }

    def connection_yaml(self, *, name: str = "pg", pool_size: int = 2, extra: str = "") -> str:
        return (
            f"  {name}:\n    type: postgres\n    server: {self.server.host}\n    port: {self.server.port}\n"
            f'    database: {self.name}\n    user: {self.user}\n    password: "${{HYGGE_TEST_PG_PASSWORD}}"\n'
            f"    pool_size: {pool_size}\n    login_timeout: 5s\n    acquire_timeout: 20s\n{extra}"
        )

    def backends(self) -> int:
        """Client connections this test's login has open on the server, counted by the server."""
        out = self.server.psql(
            f"select count(*) from pg_stat_activity where usename = '{self.user}' and backend_type = 'client backend'"
        )
        return int(out.strip())


@pytest.fixture
def pgdb(pg: pg_server.PgServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[PgDatabase]:
    name = f"t{os.getpid()}_{next(_names)}"
    db = PgDatabase(pg, name)
    escaped = db.password.replace("'", "''")
    pg.psql(f"create role {db.user} login password '{escaped}'")
    pg.psql(f"create database {name} owner {db.user}")
    monkeypatch.setenv("HYGGE_TEST_PG_PASSWORD", db.password)
    try:
        yield db
    finally:
        sql_pool.close_all()
        pg.psql(f"select pg_terminate_backend(pid) from pg_stat_activity where datname = '{name}'")
        pg.psql(f"drop database if exists {name}")
        pg.psql(f"drop role if exists {db.user}")


@pytest.fixture
def pg_project(pgdb: PgDatabase, write_project: Callable[..., Path]) -> Callable[..., Path]:
    """Write a project whose `connections:` holds the test database as `pg`, plus the given flows YAML."""

    def write(flows_yaml: str, *, pool_size: int = 2, connection_extra: str = "") -> Path:
        import textwrap

        text = (
            "name: sqltest\nconnections:\n"
            + pgdb.connection_yaml(pool_size=pool_size, extra=connection_extra)
            + textwrap.dedent(flows_yaml)
        )
        return write_project(text)

    return write

"""Against a real SQL Server, when one is given; reported as skipped (with the reason) everywhere else.

    HYGGE_TEST_MSSQL_CONNECTION="server=localhost;port=1433;database=hygge_test;user=sa;password=...;trust_server_certificate=true"

Keys are ``ConnectionConfig`` fields (``auth`` defaults to sql). Every Azure AD mode the environment can
exercise runs the same suite when its own variable is set, with ``auth`` forced to that mode, e.g.

    HYGGE_TEST_MSSQL_CONNECTION_AZURE_CLI="server=myserver.database.windows.net;database=hygge_test"

(``_AZURE_AD``, ``_SERVICE_PRINCIPAL`` with tenant_id/client_id/client_secret, ``_MANAGED_IDENTITY``);
each mode that is not given is reported as skipped, by name. The scenarios are the TDS suite's own
(tests/tds/scenarios.py: full and incremental loads with lookback, discovery with include/exclude and a
query entity, partitioned reads, a wrong password, every type of the map), run here with a ``Source``
that creates their tables with T-SQL (tests/tds/setup_sql.py, checked on the TDS server by
tests/tds/test_setup_sql.py), so the two suites can be compared. Each test's tables are named
``hygge_<random>_...`` in ``dbo`` and dropped at its end.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import get_args

import pyarrow as pa
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
for folder in (REPO_ROOT, REPO_ROOT / "tests" / "tds"):  # the scenarios and their helpers live with the TDS suite
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import scenarios  # noqa: E402
from setup_sql import create_table, drop_table  # noqa: E402
from tds_helpers import PASSWORD_ENV  # noqa: E402

from hygge_core.config import AuthMode, ConnectionConfig  # noqa: E402

ENV = "HYGGE_TEST_MSSQL_CONNECTION"
MODES: tuple[AuthMode, ...] = get_args(AuthMode)

pytestmark = [pytest.mark.mssql, pytest.mark.slow]


def env_name(mode: AuthMode) -> str:
    return ENV if mode == "sql" else f"{ENV}_{mode.upper()}"


def connection_values(mode: AuthMode) -> dict[str, str]:
    """The connection of ``mode``'s variable; skipped, naming the variable, when it is not set."""
    text = os.environ.get(env_name(mode))
    if not text:
        pytest.skip(
            f"NO REAL SQL SERVER for auth: {mode}: set {env_name(mode)} to run the real SQL Server suite in that mode "
            "(see docs/sql.md); the same scenarios ran on the wire against the TDS test server (tests/tds)"
        )
    pairs = [part.split("=", 1) for part in text.split(";") if part.strip()]
    values = {key.strip(): value.strip() for key, value in pairs}
    return values if mode == "sql" else {**values, "auth": mode}


class RealSource:
    """A real SQL Server as a scenario ``Source``: tables made with T-SQL, dropped by ``close``."""

    rowversion_is_served = False  # the server stamps rowversion values itself

    def __init__(self, values: dict[str, str]) -> None:
        self.values = {key: value for key, value in values.items() if key != "password"}
        self.password = values.get("password", "")
        self.user = values.get("user", "")
        self.prefix = f"hygge_{uuid.uuid4().hex[:6]}_"
        self.created: list[str] = []
        config = ConnectionConfig.model_validate({"type": "mssql", **self.values, "password": self.password})
        from hygge_core.sql.connection import PyodbcConnection
        from hygge_core.sql.odbc import build_target

        # pyodbc, outside the read path under test (arrow-odbc for SQL logins)
        self._setup = PyodbcConnection(replace(build_target("setup", config), route="pyodbc"))

    def table(self, stem: str) -> str:
        return f"{self.prefix}{stem}"

    def create(self, name: str, table: pa.Table, declared: dict[str, str]) -> None:
        self.created.append(name)
        for statement in create_table(name, table, declared):
            self.execute(statement)

    def execute(self, sql: str) -> None:
        self._setup.execute(sql, during="setting up the SQL Server test")

    def connection(self, *, pool_size: int) -> str:
        lines = "".join(f"    {key}: {value}\n" for key, value in self.values.items() if key != "pool_size")
        return f'  ms:\n    type: mssql\n{lines}    password: "${{{PASSWORD_ENV}}}"\n    pool_size: {pool_size}\n'

    def close(self) -> None:
        try:
            for name in self.created:
                self.execute(drop_table(name))
        finally:
            self._setup.close()


@pytest.fixture(params=MODES)
def source(request: pytest.FixtureRequest) -> Iterator[RealSource]:
    real = RealSource(connection_values(request.param))
    yield real
    real.close()


def test_every_mode_reads_through_arrow(source: RealSource) -> None:
    """SQL logins read through arrow-odbc; token logins through mssql-python's Arrow fetch, not pyodbc rows."""
    from hygge_core.sql.odbc import build_target

    config = ConnectionConfig.model_validate({"type": "mssql", **source.values, "password": source.password})
    expected = "arrow_odbc" if config.auth == "sql" else "mssql_python"
    assert build_target("real", config).route == expected


def test_full_load(source: RealSource, tmp_path: Path) -> None:
    scenarios.full_load(source, tmp_path / "project", twice=True)


def test_incremental_inserts_updates_and_lookback(source: RealSource, tmp_path: Path) -> None:
    scenarios.incremental_with_lookback(source, tmp_path / "project")


def test_discovery_include_exclude_and_a_query_entity(source: RealSource, tmp_path: Path) -> None:
    scenarios.discovery_and_a_query_entity(source, tmp_path / "project")


def test_partitioned_read(source: RealSource, tmp_path: Path) -> None:
    scenarios.partitioned_read(source, tmp_path / "project")


def test_wrong_password(source: RealSource, tmp_path: Path) -> None:
    if source.values.get("auth", "sql") != "sql":
        pytest.skip(
            "a wrong password applies to SQL logins only; token refusals are tested on the wire (tests/tds/test_token_route.py)"
        )
    scenarios.wrong_password(source, tmp_path / "project")


def test_every_type(source: RealSource, tmp_path: Path) -> None:
    scenarios.every_type(source, tmp_path / "project")

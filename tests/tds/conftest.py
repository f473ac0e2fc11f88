"""Fixtures for the SQL Server suite on the wire: the TDS test server (tests/tds_server) on a free loopback port.

Each test gets its own server and DuckDB engine, loaded from Parquet files the
test writes, so tests never see each other's tables. The certificate is made once
per session. Microsoft's ODBC Driver 18 comes from the mssql-python-odbc wheel.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tds_helpers import PASSWORD, TOKEN, USER, TdsSource  # noqa: E402

from tests.tds_server import Certificate, Engine, TdsServer, generate_certificate  # noqa: E402


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return generate_certificate(tmp_path_factory.mktemp("tds-cert"))


@pytest.fixture
def msodbc() -> str:
    pytest.importorskip("mssql_python_odbc", reason="install hygge[mssql] (the test extra has it) for Microsoft's driver")
    from hygge_core.sql.drivers import shipped_msodbcsql

    path = shipped_msodbcsql()
    assert path is not None, "mssql-python-odbc is installed but has no msodbcsql library for this machine"
    return str(path)


@pytest.fixture
def tds_data(tmp_path: Path) -> Path:
    return tmp_path / "tds-data"


@pytest.fixture
def tds_server(tds_data: Path, certificate: Certificate) -> Iterator[Callable[..., TdsServer]]:
    """Start a server over ``tds_data`` (call after writing the tables); stopped, with its threads joined, at the end."""
    started: list[TdsServer] = []

    def start(*, access_token: str | None = TOKEN) -> TdsServer:
        tds_data.mkdir(parents=True, exist_ok=True)
        server = TdsServer(Engine(tds_data), logins={USER: PASSWORD}, certificate=certificate, access_token=access_token)
        started.append(server.start())
        return server

    yield start
    from hygge_core.sql import pool

    pool.close_all()
    for server in started:
        server.stop()


@pytest.fixture
def tds_source(tds_data: Path, tds_server: Callable[..., TdsServer], certificate: Certificate) -> Callable[[str], TdsSource]:
    """A started server as a scenario ``Source`` (tests/tds/scenarios.py), in encryption ``mode``."""

    def start(mode: str = "off") -> TdsSource:
        return TdsSource(tds_server(), tds_data, certificate, mode)

    return start

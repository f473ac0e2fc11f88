"""Fixtures for the SQL Server suite on the wire: the TDS test server (tests/tds_server) on a free loopback port.

Each test gets its own server and DuckDB engine, loaded from Parquet files the
test writes, so tests never see each other's tables. The certificate is made once
per session. Microsoft's ODBC Driver 18 comes from the mssql-python-odbc wheel.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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


@dataclass(frozen=True)
class ServerProcess:
    """The TDS test server in a process of its own; only its port is known (no stats, no faults)."""

    port: int


@pytest.fixture
def tds_server_process(tds_data: Path, certificate: Certificate) -> Iterator[Callable[[], ServerProcess]]:
    """Start ``python -m tests.tds_server`` over ``tds_data`` (call after writing the tables); interrupted at the end.

    For drivers that hold the GIL while they wait on the socket (mssql-python fetching LOB columns): with the server
    in the test's own process, the server thread could never answer them.
    """
    started: list[subprocess.Popen[str]] = []

    def start() -> ServerProcess:
        tds_data.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "tests.tds_server", "--port", "0", "--data", str(tds_data)]
        command += ["--user", USER, "--password", PASSWORD, "--token", TOKEN]
        command += ["--cert", str(certificate.cert_file), "--key", str(certificate.key_file)]
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        started.append(process)
        assert process.stdout is not None
        first_line = process.stdout.readline()
        found = re.search(r"on 127\.0\.0\.1:(\d+)", first_line)
        assert found, (
            f"the TDS test server did not start: {first_line}{process.stdout.read() if process.poll() is not None else ''}"
        )
        return ServerProcess(int(found.group(1)))

    yield start
    from hygge_core.sql import pool

    pool.close_all()
    for process in started:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def tds_source(tds_data: Path, tds_server: Callable[..., TdsServer], certificate: Certificate) -> Callable[[str], TdsSource]:
    """A started server as a scenario ``Source`` (tests/tds/scenarios.py), in encryption ``mode``."""

    def start(mode: str = "off") -> TdsSource:
        return TdsSource(tds_server(), tds_data, certificate, mode)

    return start

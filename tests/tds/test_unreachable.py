"""An unreachable SQL Server fails within the connection's ``login_timeout``, naming the connection, never hanging.

Two ways a server is unreachable, in one ``hygge start`` run: a closed port (a socket
bound, then closed, so nothing listens there) and a listener that accepts TCP and
reads the driver's PRELOGIN but never answers it (a hung or firewalled server: the
connect succeeds, the login never does). A small ``login_timeout`` keeps the test
quick; no wall-clock assertion, only that the run ends, fails, and says why.
"""

from __future__ import annotations

import contextlib
import socket
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from scenarios import hygge_start
from tds_helpers import PASSWORD, PASSWORD_ENV

pytestmark = pytest.mark.slow

PRELOGIN = 0x12  # MS-TDS packet type of the client's first message


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SilentServer:
    """Accepts connections and reads what the client sends, and never answers."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)  # closing a socket does not wake a thread blocked in accept(): poll a flag
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.first_bytes: list[bytes] = []
        self.clients: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, name="silent-tds", daemon=True)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.clients.append(client)
            with contextlib.suppress(OSError):
                client.settimeout(30)
                self.first_bytes.append(client.recv(8))

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)
        self.listener.close()
        for client in self.clients:
            client.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    server.thread.start()
    yield server
    server.close()


def connection(name: str, port: int) -> str:
    return (
        f"  {name}:\n    type: mssql\n    server: localhost\n    port: {port}\n    database: hygge\n"
        f'    user: hygge_reader\n    password: "${{{PASSWORD_ENV}}}"\n    encrypt: false\n    login_timeout: 2s\n'
    )


def test_a_closed_port_and_an_unanswered_prelogin_fail_within_the_login_timeout(tmp_path: Path, silent_server, msodbc):
    closed = closed_port()
    root = tmp_path / "project"
    root.mkdir()
    (root / "hygge.yml").write_text(
        "name: unreachable\nconnections:\n"
        + connection("closed", closed)
        + connection("silent", silent_server.port)
        + textwrap.dedent("""
        flows:
          from_closed:
            home: {type: mssql, connection: closed, table: "dbo.{entity}"}
            store: {type: parquet, path: "lake/closed/{entity}"}
            entities: [orders]
            retries: {max: 0}
          from_silent:
            home: {type: mssql, connection: silent, table: "dbo.{entity}"}
            store: {type: parquet, path: "lake/silent/{entity}"}
            entities: [orders]
            retries: {max: 0}
        """),
        encoding="utf-8",
    )
    completed = hygge_start(root, password=PASSWORD)
    output = completed.stdout + completed.stderr
    assert completed.returncode != 0, output
    assert "0 of 2 entities succeeded" in completed.stdout, output
    for name, port in (("closed", closed), ("silent", silent_server.port)):
        assert f"connection '{name}' (mssql localhost:{port}/hygge): connection failed while connecting" in output, output
    assert output.count("Login timeout expired") >= 2, output
    assert PASSWORD not in output
    # the silent server really was reached: the driver connected and sent its PRELOGIN, which was never answered
    assert silent_server.first_bytes and all(first[:1] == bytes([PRELOGIN]) for first in silent_server.first_bytes)
    assert not (root / "lake" / "closed" / "orders").exists() and not (root / "lake" / "silent" / "orders").exists()

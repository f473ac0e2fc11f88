"""Microsoft's ODBC Driver 18 (from the mssql-python-odbc wheel) loads and speaks TDS to a loopback listener."""

from __future__ import annotations

import contextlib
import socket
import threading

import pytest

from hygge_core.config import ConnectionConfig
from hygge_core.errors import TransientError
from hygge_core.sql import drivers
from hygge_core.sql.connection import open_connection
from hygge_core.sql.odbc import build_target

TDS_PRELOGIN = 0x12


class FakeSqlServer:
    """Accepts one connection, records the first TDS packet header, then hangs up."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        self.packets: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(20)
        try:
            client, _ = self.listener.accept()
        except OSError:
            return
        with client:
            client.settimeout(10)
            with contextlib.suppress(OSError):
                self.packets.append(client.recv(4096))

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=5)


@pytest.mark.parametrize("route", ["arrow_odbc", "pyodbc"])
def test_msodbcsql_sends_a_tds_prelogin(route, monkeypatch):
    pytest.importorskip("mssql_python_odbc", reason="install hygge[mssql] to test the Microsoft driver")
    monkeypatch.setattr(drivers, "registered_drivers", lambda: [])  # force the driver shipped in the wheel
    server = FakeSqlServer()
    try:
        config = ConnectionConfig.model_validate(
            {
                "type": "mssql",
                "server": "127.0.0.1",
                "port": server.port,
                "database": "Erp",
                "auth": "sql",
                "user": "sa",
                "password": "Not-Sent-Before-Login1",
                "encrypt": False,
                "login_timeout": "5s",
            }
        )
        target = build_target("fake", config)
        assert "libmsodbcsql-18" in target.connection_string
        if route == "pyodbc":
            from dataclasses import replace

            target = replace(target, route="pyodbc")
        with pytest.raises(TransientError) as caught:
            open_connection(target)
    finally:
        server.close()
    assert server.packets, "the driver never sent anything"
    header = server.packets[0][:8]
    assert header[0] == TDS_PRELOGIN  # packet type 0x12: PRELOGIN, the first thing a TDS client says
    assert int.from_bytes(header[2:4], "big") == len(server.packets[0])  # the TDS length field covers the packet
    message = str(caught.value)
    assert "ODBC Driver 18 for SQL Server" in message and f"127.0.0.1:{server.port}/Erp" in message
    assert "Not-Sent-Before-Login1" not in message

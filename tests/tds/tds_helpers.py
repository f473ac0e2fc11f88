"""What the TDS suite's tests share: the login, the token, table writing and the driver's connection string."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.tds_server import Certificate, TdsServer

USER = "hygge_reader"
PASSWORD = "Tds;Pw}d-1"  # ODBC-special characters: the connection string must brace them
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.hygge-test-token.signature"
ENCRYPTION_MODES = ("off", "tls", "strict")


def write_table(folder: Path, name: str, table: pa.Table, declared: dict[str, str] | None = None) -> None:
    """``name.parquet`` (schema.table or table) plus the sidecar naming each column's SQL Server type."""
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / f"{name}.parquet")
    if declared:
        (folder / f"{name}.types.json").write_text(json.dumps(declared))


def odbc_string(
    driver: str, port: int, mode: str, certificate: Certificate | None, *, user: str = USER, password: str = PASSWORD
) -> str:
    """A connection string for Microsoft's driver; certificate checks need SERVER=localhost (not an IP)."""
    if mode == "off":
        encryption = "Encrypt=no"
    elif mode == "tls":
        # with Encrypt=yes the driver ignores ServerCertificate and checks the system trust store: trust the test certificate
        encryption = "Encrypt=yes;TrustServerCertificate=yes"
    else:
        assert certificate is not None
        encryption = f"Encrypt=strict;ServerCertificate={certificate.cert_file}"
    login = f"UID={user};PWD={{{password.replace('}', '}}')}}};" if user else ""
    return f"DRIVER={{{driver}}};SERVER=tcp:localhost,{port};DATABASE=hygge;{login}{encryption};LoginTimeout=10;"


PASSWORD_ENV = "HYGGE_TDS_PASSWORD"


def connection_yaml(
    port: int, mode: str, certificate: Certificate, *, pool_size: int = 2, password_env: str = PASSWORD_ENV
) -> str:
    """The ``connections:`` entry ``ms`` for a hygge project pointed at the test server in encryption ``mode``."""
    encryption = {
        "off": "    encrypt: false\n",
        "tls": "    encrypt: true\n    trust_server_certificate: true\n",
        "strict": f"    encrypt: true\n    options: {{Encrypt: strict, ServerCertificate: '{certificate.cert_file}'}}\n",
    }[mode]
    return (
        f"  ms:\n    type: mssql\n    server: localhost\n    port: {port}\n    database: hygge\n    user: {USER}\n"
        f'    password: "${{{password_env}}}"\n{encryption}    pool_size: {pool_size}\n    login_timeout: 10s\n    acquire_timeout: 60s\n'
    )


class TdsSource:
    """The TDS test server as a scenario's ``Source`` (tests/tds/scenarios.py): tables load from Parquet files."""

    user = USER
    password = PASSWORD
    rowversion_is_served = True

    def __init__(self, server: TdsServer, folder: Path, certificate: Certificate, mode: str) -> None:
        self.server, self.folder, self.certificate, self.mode = server, folder, certificate, mode

    def table(self, stem: str) -> str:
        return stem  # every test has a server of its own

    def create(self, name: str, table: pa.Table, declared: dict[str, str]) -> None:
        write_table(self.folder, f"dbo.{name}", table, declared)
        self.server.engine.load_parquet(self.folder / f"dbo.{name}.parquet")

    def execute(self, sql: str) -> None:
        self.server.execute(sql)

    def connection(self, *, pool_size: int) -> str:
        return connection_yaml(self.server.port, self.mode, self.certificate, pool_size=pool_size)

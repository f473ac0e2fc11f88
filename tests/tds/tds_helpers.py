"""What the TDS suite's tests share: the login, the token, table writing and the driver's connection string."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.tds_server import Certificate

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
    driver: str, port: int, mode: str, certificate: Certificate, *, user: str = USER, password: str = PASSWORD
) -> str:
    """A connection string for Microsoft's driver; certificate checks need SERVER=localhost (not an IP)."""
    encryption = {
        "off": "Encrypt=no",
        # with Encrypt=yes the driver ignores ServerCertificate and checks the system trust store: trust the test certificate
        "tls": "Encrypt=yes;TrustServerCertificate=yes",
        "strict": f"Encrypt=strict;ServerCertificate={certificate.cert_file}",
    }[mode]
    login = f"UID={user};PWD={{{password.replace('}', '}}')}}};" if user else ""
    return f"DRIVER={{{driver}}};SERVER=tcp:localhost,{port};DATABASE=hygge;{login}{encryption};LoginTimeout=10;"

"""A TDS (SQL Server wire protocol) test server, written from the MS-TDS specification, with DuckDB behind it.

Microsoft's ODBC Driver 18 logs in to it (SQL login or access token; no
encryption, TLS inside PRELOGIN, or TDS 8.0 strict) and runs T-SQL that sqlglot
translates for DuckDB. It proves the wire, the driver and hygge's use of them;
it does not prove SQL Server's own semantics (locking, collations, rounding).

    python -m tests.tds_server --port 14330 --data folder_of_parquet_files
"""

from .engine import Engine, SqlError
from .server import TdsServer
from .tls import Certificate, generate_certificate

__all__ = ["Certificate", "Engine", "SqlError", "TdsServer", "generate_certificate"]

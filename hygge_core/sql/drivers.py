"""Find the ODBC driver for a connection: configured, registered, or shipped by a Python package.

Order for SQL Server: the ``driver:`` key when set (a registered name or a file
path); "ODBC Driver 18 for SQL Server" / 17 when registered with unixODBC; the
msodbcsql18 library shipped by the ``mssql-python-odbc`` wheel (loaded by path,
no odbcinst.ini entry needed); FreeTDS only when named explicitly, because its
type mapping and TLS support differ. For PostgreSQL: psqlODBC ("PostgreSQL Unicode").
"""

from __future__ import annotations

import glob
import importlib
import importlib.util
import os
import platform
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType

from hygge_core.errors import HomeError

MSSQL_REGISTERED = ("ODBC Driver 18 for SQL Server", "ODBC Driver 17 for SQL Server")
POSTGRES_REGISTERED = ("PostgreSQL Unicode", "PostgreSQL ANSI")
POSTGRES_LIBRARIES = ("/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so", "/usr/lib/aarch64-linux-gnu/odbc/psqlodbcw.so")

MSSQL_INSTALL_HINT = (
    "install Microsoft's driver with `pip install mssql-python-odbc` (or `pip install 'hygge[mssql]'`), "
    "or register 'ODBC Driver 18 for SQL Server' with unixODBC, or set `driver:` on the connection"
)
POSTGRES_INSTALL_HINT = "install psqlODBC with `apt-get install odbc-postgresql` (scripts/install-system-packages.sh), or set `driver:` on the connection"


def registered_drivers() -> list[str]:
    """Driver names unixODBC knows (``pyodbc.drivers()``)."""
    return list(import_pyodbc().drivers())


def import_pyodbc():  # type: ignore[no-untyped-def]
    """pyodbc, or a ``HomeError`` that says what is missing (the module or unixODBC's libodbc)."""
    return _import_driver("pyodbc", package="pyodbc")


def import_arrow_odbc():  # type: ignore[no-untyped-def]
    """arrow-odbc, or a ``HomeError`` that says what is missing."""
    return _import_driver("arrow_odbc", package="arrow-odbc")


def import_mssql_python():  # type: ignore[no-untyped-def]
    """Microsoft's mssql-python (token logins read through its Arrow fetch), or a ``HomeError`` that says what is missing."""
    return _import_driver("mssql_python", package="mssql-python")


def has_mssql_python() -> bool:
    """Whether mssql-python is installed (the ``mssql`` extra has it); without it token logins read through pyodbc."""
    return importlib.util.find_spec("mssql_python") is not None


def mssql_python_accepts(keywords: Iterable[str]) -> bool:
    """Whether mssql-python takes every one of these connection-string keywords (it refuses any it does not know).

    mssql-python checks keywords against an allow-list and has no public call to ask it, so this asks its
    parser; if that private call ever moves, the answer is "no" and token logins read through pyodbc, which
    takes any keyword (tests/tds/test_types.py pins that the usual keywords are accepted).
    """
    try:
        from mssql_python.connection_string_parser import _ConnectionStringParser
    except ImportError:
        return False
    return all(_ConnectionStringParser.normalize_key(keyword) is not None for keyword in keywords)


def import_adbc_postgres():  # type: ignore[no-untyped-def]
    """The ADBC PostgreSQL driver's DB-API module (the native reader), or a ``HomeError`` that says what is missing.

    ADBC's DB-API layer imports Polars, when installed, to offer a Polars backend for parameters and
    results; hygge hands ADBC strings and reads Arrow, so that backend is never used, and importing
    Polars for it cost every process that reads PostgreSQL 0.1 s and 27 MiB of memory (measured with
    adbc-driver-manager 1.13). So the first import runs with Polars hidden (ADBC then skips the backend)
    unless Polars is already loaded; Polars imports normally afterwards. The only window: another
    thread importing Polars for the first time during those milliseconds would get an ImportError;
    hygge's first ADBC import comes with its first PostgreSQL connection, before any entity it reads
    can reach code that uses Polars.
    """
    if "adbc_driver_postgresql.dbapi" in sys.modules or "polars" in sys.modules:
        return _import_driver("adbc_driver_postgresql.dbapi", package="adbc-driver-postgresql")
    with _HIDING_POLARS:
        sys.modules["polars"] = None  # type: ignore[assignment]  (an import of it raises ImportError)
        try:
            return _import_driver("adbc_driver_postgresql.dbapi", package="adbc-driver-postgresql")
        finally:
            if sys.modules.get("polars", 0) is None:
                del sys.modules["polars"]


_HIDING_POLARS = threading.Lock()


def _import_driver(module: str, *, package: str) -> ModuleType:
    """Drivers are imported here, at the point of use, so ``import hygge_core`` never needs them."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if "libodbc" in str(exc):
            raise HomeError(
                f"{package} cannot load unixODBC ({exc}); install it with `apt-get install libodbc2 unixodbc`"
            ) from None
        raise HomeError(f"the SQL homes need {package}: `pip install 'hygge[sql]'` (or 'hygge[mssql]' for SQL Server)") from None


def mssql_driver(configured: str | None = None) -> str:
    """The value for ``DRIVER=`` in a SQL Server connection string."""
    return _find_driver("SQL Server", configured, MSSQL_REGISTERED, MSSQL_INSTALL_HINT, fallback=shipped_msodbcsql)


def postgres_driver(configured: str | None = None) -> str:
    """The value for ``DRIVER=`` in a PostgreSQL connection string."""
    return _find_driver("PostgreSQL", configured, POSTGRES_REGISTERED, POSTGRES_INSTALL_HINT, fallback=_installed_psqlodbc)


def _find_driver(
    database: str, configured: str | None, names: tuple[str, ...], hint: str, *, fallback: Callable[[], Path | None]
) -> str:
    """The configured driver, else the first of ``names`` unixODBC has registered, else a library file found on disk."""
    if configured:
        return _configured(configured, hint)
    registered = registered_drivers()
    for name in names:
        if name in registered:
            return name
    found = fallback()
    if found is not None:
        return str(found)
    raise HomeError(f"no {database} ODBC driver found (registered: {', '.join(registered) or 'none'}); {hint}")


def _installed_psqlodbc() -> Path | None:
    return next((Path(library) for library in POSTGRES_LIBRARIES if Path(library).is_file()), None)


def shipped_msodbcsql() -> Path | None:
    """msodbcsql18 inside the ``mssql-python-odbc`` wheel, for this distribution and machine, if installed."""
    try:
        import mssql_python_odbc
    except ImportError:
        return None
    base = Path(mssql_python_odbc.get_libs_dir()) / "linux"
    arch = {"amd64": "x86_64", "aarch64": "arm64"}.get(platform.machine().lower(), platform.machine().lower())
    for family in _distribution_families():
        matches = sorted(glob.glob(str(base / family / arch / "lib" / "libmsodbcsql-*.so*")))
        if matches:
            return Path(matches[-1])
    matches = sorted(glob.glob(str(base / "*" / arch / "lib" / "libmsodbcsql-*.so*")))
    return Path(matches[-1]) if matches else None


def _distribution_families() -> list[str]:
    """The wheel's folder names to try, most specific first, from /etc/os-release."""
    try:
        release = platform.freedesktop_os_release()
    except OSError:
        return ["debian_ubuntu"]
    ids = {release.get("ID", "")} | set(release.get("ID_LIKE", "").split())
    families = []
    if ids & {"debian", "ubuntu"}:
        families.append("debian_ubuntu")
    if ids & {"rhel", "fedora", "centos", "rocky", "almalinux", "ol", "amzn"}:
        families.append("rhel")
    if ids & {"suse", "opensuse", "sles", "opensuse-leap"}:
        families.append("suse")
    if ids & {"alpine"}:
        families.append("alpine")
    return families or ["debian_ubuntu"]


def _configured(value: str, hint: str) -> str:
    looks_like_path = os.sep in value or value.endswith((".so", ".dylib", ".dll")) or ".so." in value
    if looks_like_path and not Path(value).is_file():
        raise HomeError(f"ODBC driver file {value} does not exist; {hint}")
    return value

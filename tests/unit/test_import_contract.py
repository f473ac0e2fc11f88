"""`import hygge_core` must not drag in drivers, the Azure SDK or Dagster (DESIGN: Layout).

Checked in a fresh interpreter, because this test process has long since imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = [
    "pyodbc",
    "arrow_odbc",
    "azure",
    "azure.identity",
    "dagster",
    "mssql_python_odbc",
    "adbc_driver_postgresql",
    "adbc_driver_manager",
]


def modules_after(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(completed.stdout))


def test_importing_the_engine_and_loading_a_project_loads_no_driver_or_dagster(write_project):
    root = write_project(
        """
        name: light
        connections:
          erp: {type: mssql, server: nowhere.invalid, database: Erp, auth: azure_ad}
        flows:
          files:
            home: {type: parquet, path: data}
            store: {type: parquet, path: lake/files}
          erp:
            home: {type: mssql, connection: erp, table: sales.Orders}
            store: {type: parquet, path: lake/erp}
        """
    )
    loaded = modules_after(f"import hygge_core\nhygge_core.load_project({str(root)!r})")
    assert "hygge_core" in loaded
    assert sorted(set(HEAVY) & loaded) == []


def test_the_cli_entry_point_imports_nothing_heavy_until_a_command_needs_it():
    loaded = modules_after("import hygge_cli")
    assert sorted(set(HEAVY) & loaded) == []

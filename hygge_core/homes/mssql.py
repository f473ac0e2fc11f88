"""The SQL Server home (Microsoft ODBC Driver 18; Arrow-native for SQL and managed-identity logins)."""

from __future__ import annotations

from typing import Literal

from hygge_core.homes.sql import SqlHome, SqlHomeConfig


class MssqlHomeConfig(SqlHomeConfig):
    type: Literal["mssql"] = "mssql"


class MssqlHome(SqlHome, type_name="mssql", config=MssqlHomeConfig):
    dialect_name = "mssql"

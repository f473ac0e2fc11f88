"""The PostgreSQL home (psqlODBC through arrow-odbc, streaming with ``UseDeclareFetch=1``)."""

from __future__ import annotations

from typing import Literal

from hygge_core.homes.sql import SqlHome, SqlHomeConfig


class PostgresHomeConfig(SqlHomeConfig):
    type: Literal["postgres"] = "postgres"


class PostgresHome(SqlHome, type_name="postgres", config=PostgresHomeConfig):
    dialect_name = "postgres"

"""The PostgreSQL home: the native reader (ADBC, binary COPY) by default, psqlODBC with ``reader: odbc``.

Only PostgreSQL splits large tables on its own (``auto_partition_rows``): the native reader can share one
snapshot across the range readers (``hygge_core.sql.snapshot``); see ``hygge_core.sql.autosplit``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hygge_core.homes.sql import SqlHome, SqlHomeConfig


class PostgresHomeConfig(SqlHomeConfig):
    type: Literal["postgres"] = "postgres"
    auto_partition_rows: int | None = Field(
        default=1_000_000,
        ge=2,
        description="a table (or incremental window) of at least this many rows is read in key ranges on its primary key "
        "(or watermark.key), in one snapshot, without partitions: (native reader only; null: always one stream)",
    )

    def automatic_split_rows(self) -> int | None:
        return self.auto_partition_rows


class PostgresHome(SqlHome, type_name="postgres", config=PostgresHomeConfig):
    dialect_name = "postgres"

"""The SQL Server home (Microsoft ODBC Driver 18; Arrow-native for SQL and managed-identity logins)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import pyarrow as pa

from hygge_core.errors import HomeError
from hygge_core.homes.sql import SqlHome, SqlHomeConfig
from hygge_core.sql.dialect import SelectColumn
from hygge_core.state import EntityState

TRUNCATED = "longer than the read buffer"
UNBOUNDED_TYPES = ("text", "ntext", "image", "xml", "sql_variant")
UTF8_BYTES_PER_CHARACTER = 3  # the most a UTF-16 code unit (what LEN counts) takes in UTF-8; max_text_size counts UTF-8 bytes


class MssqlHomeConfig(SqlHomeConfig):
    type: Literal["mssql"] = "mssql"


class MssqlHome(SqlHome, type_name="mssql", config=MssqlHomeConfig):
    dialect_name = "mssql"

    def read(self, previous: EntityState, run_type: str) -> Iterator[pa.RecordBatch]:
        """As every SQL home reads, but a value longer than ``max_text_size``/``max_binary_size`` is named by column.

        The driver only says that *a* value did not fit; the columns that can hold
        longer values are the (max) and legacy LOB ones, so their longest values are
        measured (one query, after the failure) and the ones over the bound are named.
        """
        try:
            yield from super().read(previous, run_type)
        except HomeError as exc:
            if TRUNCATED not in str(exc) or self.config.source_table() is None:
                raise
            oversized = self._oversized()
            if not oversized:
                raise
            raise HomeError(f"{self.context.key}: {'; '.join(oversized)}") from None

    def _oversized(self) -> list[str]:
        table = self.dialect.parse_name(self.config.source_table() or "")
        relation = self.dialect.relation(table)
        with self._pool().connection() as connection:
            unbounded = [c for c in self._columns(connection, table) if _unbounded(c)]
            if not unbounded:
                return []
            lengths = ", ".join(
                f"MAX({'DATALENGTH' if pa.types.is_binary(c.mapping.arrow) else 'LEN'}({self.dialect.quote(c.source.name)}))"
                for c in unbounded
            )
            found = connection.fetch_all(
                f"SELECT {lengths} FROM {relation}", during=f"measuring the longest values of {relation}"
            )
        problems = []
        for index, column in enumerate(unbounded):
            longest = found.column(index)[0].as_py() if found.num_rows else None
            binary = pa.types.is_binary(column.mapping.arrow)
            limit = self.config.max_binary_size if binary else self.config.max_text_size
            if longest is None:
                continue
            if binary and int(longest) > limit:
                problems.append(
                    f"column {column.source.name!r} ({column.source.declared}) of {relation} holds a value of {int(longest):,} bytes, "
                    f"more than home.max_binary_size ({limit:,}); raise home.max_binary_size for this entity (the read buffer grows with it)"
                )
            elif not binary and int(longest) * UTF8_BYTES_PER_CHARACTER > limit:
                problems.append(
                    f"column {column.source.name!r} ({column.source.declared}) of {relation} holds a value of {int(longest):,} characters "
                    f"(up to {int(longest) * UTF8_BYTES_PER_CHARACTER:,} bytes as the driver sends them, UTF-8), more than home.max_text_size "
                    f"({limit:,} bytes); raise home.max_text_size for this entity (the read buffer grows with it)"
                )
        return problems


def _unbounded(column: SelectColumn) -> bool:
    return column.source.length == -1 or column.source.type_name in UNBOUNDED_TYPES

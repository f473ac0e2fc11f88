"""The shared SQL home: one table or query per entity, streamed as Arrow through a pooled connection.

``PostgresHome`` and ``MssqlHome`` only pick the dialect. For a table entity the
catalog gives the column types, so the select list, the Arrow schema and the
watermark literals are all derived from declared types (see
``hygge_core.sql.typemap``). Incremental runs fix the upper bound first
(``SELECT MAX(column)``) and read ``(previous, upper]``, so rows committed while
the run reads are picked up by the next run instead of being half-seen.

With ``lookback``, the lower bound moves back by that much to catch rows whose
watermark value was stamped before the previous run but committed after it.
Rows re-read that way and already loaded are recognised by ``watermark.key``
plus the watermark value (remembered in the entity's state for the lookback
span only) and dropped, so the lake gets no duplicates.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Generator, Iterator
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import Field, model_validator

from hygge_core.config import StrictModel
from hygge_core.context import EntityContext
from hygge_core.durations import Duration
from hygge_core.errors import ConfigError, HomeError
from hygge_core.home import DiscoveryContext, Home, HomeConfig
from hygge_core.log import get_logger
from hygge_core.sql.autosplit import plan_automatic
from hygge_core.sql.connection import ReadOptions, SqlConnection
from hygge_core.sql.dialect import DIALECTS, Dialect, KeyRange, SelectColumn, TableName, Window
from hygge_core.sql.odbc import ROUTE_NAMES
from hygge_core.sql.partitions import plan_ranges
from hygge_core.sql.reader import stream
from hygge_core.state import EntityState, StateUpdate, Watermark
from hygge_core.templates import substitute_entity
from hygge_core.watermark import make_watermark, require_same_column, watermark_kind

log = get_logger("homes.sql")

SEEN_KEY = "lookback_seen"
COUNT_MARGIN_ROWS = 256  # batch rows beyond the count, for rows inserted between counting and reading


class SqlPartitions(StrictModel):
    """Read one large table as disjoint key ranges over several pooled connections at once."""

    column: str = Field(description="integer, date or timestamp column whose MIN..MAX is split into ranges (ideally indexed)")
    count: int = Field(ge=1, le=64, description="key ranges; read at once over up to min(count, pool_size) connections")


class SqlHomeConfig(HomeConfig):
    connection: str = Field(description="name of a connection under connections:")
    table: str | None = Field(default=None, description="table or schema.table; defaults to the entity name")
    query: str | None = Field(default=None, description="a SELECT to run instead of a table (no ORDER BY when incremental)")
    entity: str | None = Field(default=None, description="set by hygge: the entity this block is for (the default table)")
    batch_size: int = Field(default=100_000, ge=1, description="most rows per Arrow batch")
    max_text_size: int = Field(
        default=8192, ge=1, description="ODBC readers: bytes reserved per value of unbounded text columns (text, varchar(max))"
    )
    max_binary_size: int = Field(
        default=65536, ge=1, description="ODBC readers: bytes reserved per value of unbounded binary columns"
    )
    max_bytes_per_batch: int = Field(default=16 * 1024 * 1024, ge=1024, description="cap on the driver's transfer buffer")
    query_timeout: Duration | None = Field(default=None, description="cancel a query that runs longer than this")
    count_rows: bool = Field(default=True, description="count the source window (COUNT(*)) for the row-count check")
    partitions: SqlPartitions | None = Field(
        default=None,
        description="opt-in parallel read of one large table: {column: <integer, date or timestamp column>, count: <ranges>} "
        "splits the window's MIN..MAX of column into count ranges read at once (see docs/sql.md)",
    )

    @classmethod
    def for_entity(cls, raw: dict[str, Any], entity: str, *, listed: bool) -> dict[str, Any]:
        return {**substitute_entity(raw, entity), "entity": entity}

    @model_validator(mode="after")
    def _one_source(self) -> SqlHomeConfig:
        if self.table is not None and self.query is not None:
            raise ValueError("give table: or query:, not both")
        return self

    def automatic_split_rows(self) -> int | None:
        """Rows from which a table is split into key ranges without ``partitions:``; None: never (PostgreSQL sets it)."""
        return None

    def source_table(self) -> str | None:
        if self.query is not None:
            return None
        return self.table or self.entity

    def lineage_name(self) -> str | None:
        return self.source_table()

    def describe(self) -> str:
        what = f"query {self.query.strip()[:60]!r}" if self.query else f"table {self.source_table()}"
        return f"{self.type} {self.connection}: {what}"

    def read_options(self) -> ReadOptions:
        return ReadOptions(
            batch_size=self.batch_size,
            max_text_size=self.max_text_size,
            max_binary_size=self.max_binary_size,
            max_bytes_per_batch=self.max_bytes_per_batch,
            query_timeout_seconds=int(self.query_timeout.total_seconds()) if self.query_timeout else None,
        )


class SqlHome(Home):
    """Base for database homes; subclasses register with a type name and set ``dialect_name``."""

    config: SqlHomeConfig
    dialect_name: ClassVar[str]
    reads_time_windows = True

    def __init__(self, config: SqlHomeConfig, context: EntityContext) -> None:
        super().__init__(config, context)
        self._schema: pa.Schema | None = None
        self._count: int | None = None
        self._watermark: Watermark | None = None
        self._seen: dict[str, Any] | None = None
        self._dropped_as_seen = 0  # rows of the lookback span that an earlier run already landed

    @property
    def dialect(self) -> Dialect:
        return DIALECTS[self.dialect_name]

    def _pool(self):  # type: ignore[no-untyped-def]
        from hygge_core.sql.pool import pool_for

        connection = self.context.connection
        if connection is None:
            raise ConfigError(f"{self.context.key}: home.connection {self.config.connection!r} is not defined under connections:")
        if connection.type != self.dialect_name:
            raise ConfigError(
                f"{self.context.key}: connection {self.config.connection!r} is type {connection.type}, but the home is {self.type_name}"
            )
        return pool_for(self.context.connection_name or self.config.connection, connection)

    def read(self, previous: EntityState, run_type: str) -> Iterator[pa.RecordBatch]:
        pool = self._pool()
        with pool.connection() as connection:
            if not connection.shares_snapshots:
                yield from self._read(pool, connection, previous, run_type)
                return
            # one snapshot from the catalog to the last row (hygge_core.sql.snapshot); a failure leaves the connection
            # broken, so the pool closes it with its transaction
            connection.begin_snapshot(during="starting the read's snapshot")
            yield from self._read(pool, connection, previous, run_type)
            connection.end_snapshot(during="ending the read's snapshot")

    def _read(self, pool: Any, connection: SqlConnection, previous: EntityState, run_type: str) -> Iterator[pa.RecordBatch]:
        dialect = self.dialect
        table_text = self.config.source_table()
        columns: list[SelectColumn] | None = None
        table: TableName | None = None
        if table_text is not None:
            table = dialect.parse_name(table_text)
            relation = dialect.relation(table)
            columns = self._columns(connection, table)
            fetch_schema, published = dialect.schema_for(columns)
        else:
            assert self.config.query is not None
            relation = dialect.query_relation(self.config.query)
            fetch_schema = published = None

        window = None
        watermark = self.context.watermark
        if self.context.time_window is not None:
            window = self._partition_window(columns, relation)
        elif run_type == "incremental" and watermark is not None and watermark.column:
            window = self._window(connection, relation, columns, previous)
            if window is None:
                self._count = 0
                self._schema = published
                return
        if self.config.count_rows:
            counted = connection.fetch_all(dialect.count_query(relation, window), during=f"counting rows of {relation}")
            self._count = int(counted.column(0)[0].as_py())
        during = f"reading {relation if table_text else 'the query'}"
        options = self._read_options()
        split = self._split(pool, connection, table, relation, columns, window)
        if split is not None:
            from hygge_core.sql.parallel import read_ranges, shared_budget
            from hygge_core.sql.snapshot import in_snapshot

            ranges, readers = split
            range_options = shared_budget(options, min(len(ranges), pool.size, readers or pool.size))
            snapshot_id = (
                connection.export_snapshot(during="exporting the read's snapshot") if connection.shares_snapshots else None
            )

            def read_range(range_connection: SqlConnection, key_range: KeyRange):  # type: ignore[no-untyped-def]
                query = dialect.select(columns, relation, window, key_range)
                range_during = f"{during}, {_describe_range(key_range)}"
                batches = stream(
                    range_connection,
                    query,
                    fetch_schema=fetch_schema,
                    published_schema=published,
                    options=range_options,
                    during=range_during,
                )
                if snapshot_id is None or range_connection is connection:
                    return batches
                return in_snapshot(range_connection, snapshot_id, batches, during=range_during)

            batches: Generator[pa.RecordBatch, None, None] = read_ranges(
                pool, connection, ranges, read_range, label=self.context.key, readers=readers
            )
        else:
            if table_text is None and window is None:
                query = self.config.query
                assert query is not None
            else:
                query = dialect.select(columns, relation, window)
            batches = stream(
                connection, query, fetch_schema=fetch_schema, published_schema=published, options=options, during=during
            )
        seen_filter = self._lookback_filter(previous, window)
        try:
            for batch in batches:
                self._schema = self._schema or batch.schema
                self._remember_tail(batch, window)  # before filtering: rows dropped as seen are still in the next span
                if seen_filter is not None:
                    kept = seen_filter(batch)
                    self._dropped_as_seen += batch.num_rows - kept.num_rows
                    batch = kept
                yield batch
        finally:
            batches.close()  # range readers stop and are joined before `connection` goes back to the pool
        if self._schema is None:
            self._schema = published

    def _read_options(self) -> ReadOptions:
        """The configured bounds, with batches no larger than the counted rows need.

        The driver allocates its whole buffer (``batch_size`` rows at the widest row,
        up to ``max_bytes_per_batch``) before the first fetch; for a 50-row table that
        was 16 MiB and tens of milliseconds per entity, more than opening a connection.
        The margin covers rows inserted between the count and the read; beyond it they
        arrive in more batches, never lost.
        """
        options = self.config.read_options()
        if self._count is None:
            return options
        needed = self._count + self._count // 4 + COUNT_MARGIN_ROWS
        return dataclasses.replace(options, batch_size=min(options.batch_size, needed))

    def _split(
        self,
        pool: Any,
        connection: SqlConnection,
        table: TableName | None,
        relation: str,
        columns: list[SelectColumn] | None,
        window: Window | None,
    ) -> tuple[list[KeyRange], int | None] | None:
        """(key ranges, most readers) for a parallel read: ``partitions:`` when given, else an automatic split, else None."""
        settings = self.config.partitions
        if settings is not None:
            selected = self._partition_column(columns, relation) if columns is not None else None
            return self._key_ranges(connection, relation, settings.column, selected, settings.count, window), None
        if table is None or columns is None or not connection.shares_snapshots or self.config.automatic_split_rows() is None:
            return None  # only where every range reads one snapshot (hygge_core.sql.autosplit)
        watermark = self.context.watermark
        plan = plan_automatic(
            connection,
            self.dialect,
            table,
            columns,
            watermark_key=watermark.key_columns if watermark is not None else [],
            counted=self._count,
            min_rows=self.config.automatic_split_rows(),
            pool_size=pool.size,
        )
        if plan is None:
            return None
        name = plan.column.source.name
        log.info(
            "%s: reading %s in %d key ranges on %r over up to %d connections, in one snapshot",
            self.context.key,
            relation,
            plan.ranges,
            name,
            plan.readers,
        )
        return self._key_ranges(connection, relation, name, plan.column, plan.ranges, window), plan.readers

    def _key_ranges(
        self,
        connection: SqlConnection,
        relation: str,
        name: str,
        selected: SelectColumn | None,
        count: int,
        window: Window | None,
    ) -> list[KeyRange]:
        """A parallel read's ranges: MIN/MAX of the key ``name`` inside this run's window, split ``count`` ways."""
        found = connection.fetch_all(
            self.dialect.key_bounds_query(name, relation, window), during=f"finding MIN/MAX({name}) of {relation}"
        )
        low, high = (found.column(0)[0].as_py(), found.column(1)[0].as_py()) if found.num_rows else (None, None)
        if selected is not None and pa.types.is_timestamp(selected.mapping.arrow) and selected.mapping.arrow.tz:
            low, high = (v.replace(tzinfo=dt.UTC) if isinstance(v, dt.datetime) and v.tzinfo is None else v for v in (low, high))
        declared = selected.source.declared if selected is not None else None
        return plan_ranges(name, low, high, count, declared=declared, label=self.context.key)

    def _partition_column(self, columns: list[SelectColumn], relation: str) -> SelectColumn:
        """The catalog column ``partitions.column`` names, if it is one hygge can split (integer, date, timestamp)."""
        assert self.config.partitions is not None
        name = self.config.partitions.column
        selected = next((c for c in columns if c.source.name == name), None)
        if selected is None:
            raise HomeError(
                f"{self.context.key}: home.partitions.column {name!r} is not a column of {relation}; "
                f"columns: {', '.join(c.source.name for c in columns)}"
            )
        arrow = selected.mapping.arrow
        if not (pa.types.is_integer(arrow) or pa.types.is_date(arrow) or pa.types.is_timestamp(arrow)):
            raise HomeError(
                f"{self.context.key}: home.partitions.column {name!r} is {selected.source.declared}; "
                "partition on an integer, date or timestamp column"
            )
        return selected

    def _columns(self, connection: SqlConnection, table: TableName) -> list[SelectColumn]:
        query, parameters = self.dialect.columns_query(table)
        rows = connection.fetch_all(query, during=f"reading the columns of {table}", parameters=parameters).to_pylist()
        if not rows:
            raise HomeError(
                f"{self.context.key}: table {table} not found on {connection.target.label} (or this login cannot see it); "
                "check home.table, or list what exists with entities: {include: ['*']}"
            )
        return self.dialect.select_columns([self.dialect.source_column(row) for row in rows])

    def _partition_window(self, columns: list[SelectColumn] | None, relation: str) -> Window:
        """A partition run's ``[start, end)``, its bounds typed like the column: dates for a date column, wall-clock
        times for a timestamp without time zone, instants for one with (a query's columns are unknown: instants)."""
        time_window = self.context.time_window
        assert time_window is not None
        name = time_window.column
        lower, upper = time_window.start, time_window.end
        declared = None
        if columns is not None:
            selected = next((c for c in columns if c.source.name == name), None)
            if selected is None:
                raise HomeError(
                    f"{self.context.key}: time_partitions column {name!r} is not a column of {relation}; "
                    f"columns: {', '.join(c.source.name for c in columns)}"
                )
            arrow, declared = selected.mapping.arrow, selected.source.declared
            if pa.types.is_date(arrow):
                if lower.time() != dt.time() or upper.time() != dt.time():
                    raise HomeError(f"{self.context.key}: {name!r} is a date column; hourly partitions need a timestamp")
                lower, upper = lower.date(), upper.date()
            elif pa.types.is_timestamp(arrow):
                if not arrow.tz:
                    lower, upper = lower.replace(tzinfo=None), upper.replace(tzinfo=None)
            else:
                raise HomeError(
                    f"{self.context.key}: time_partitions column {name!r} is {declared}; partition on a date or timestamp column"
                )
        return Window(column=name, lower=lower, upper=upper, declared=declared, half_open=True)

    def _window(
        self, connection: SqlConnection, relation: str, columns: list[SelectColumn] | None, previous: EntityState
    ) -> Window | None:
        """The rows this incremental run reads, or ``None`` when there is nothing new."""
        settings = self.context.watermark
        column_name = settings.column
        selected = next((c for c in columns or [] if c.source.name == column_name), None)
        if columns is not None and selected is None:
            raise HomeError(
                f"{self.context.key}: watermark column {column_name!r} is not a column of {relation}; columns: {', '.join(c.source.name for c in columns)}"
            )
        declared = selected.source.declared if selected is not None else None
        found = connection.fetch_all(
            self.dialect.max_query(column_name, relation), during=f"finding MAX({column_name}) of {relation}"
        )
        upper = found.column(0)[0].as_py() if found.num_rows else None
        if upper is None:
            return None
        if (
            selected is not None
            and pa.types.is_timestamp(selected.mapping.arrow)
            and selected.mapping.arrow.tz
            and isinstance(upper, dt.datetime)
        ):
            upper = upper.replace(tzinfo=dt.UTC)
        kind = watermark_kind(found.schema.field(0).type, column=column_name, label=self.context.key)
        self._watermark = make_watermark(column_name, kind, upper)
        lower = None
        stored = previous.watermark
        if stored is not None:
            require_same_column(stored, column_name, kind, label=self.context.key)
            lower = stored.as_python()
            if kind == "datetime" and isinstance(lower, dt.datetime) and (lower.tzinfo is None) != (upper.tzinfo is None):
                lower = lower.replace(tzinfo=upper.tzinfo)
            if settings.lookback is not None:
                if kind not in ("datetime", "date"):
                    raise HomeError(
                        f"{self.context.key}: watermark.lookback needs a date or timestamp column; {column_name!r} is {kind}"
                    )
                if not settings.key_columns:
                    raise HomeError(
                        f"{self.context.key}: watermark.lookback needs watermark.key so re-read rows can be recognised"
                    )
                lower = lower - settings.lookback
            if lower >= upper and settings.lookback is None:
                self._watermark = stored
                return None
        return Window(column=column_name, lower=lower, upper=upper, declared=declared)

    # --- lookback de-duplication ----------------------------------------------------------------

    def _lookback_filter(self, previous: EntityState, window: Window | None):  # type: ignore[no-untyped-def]
        settings = self.context.watermark
        if window is None or settings is None or settings.lookback is None:
            return None
        self._seen = {"rows": []}
        remembered = previous.home.get(SEEN_KEY) or {}
        rows = remembered.get("rows") or []
        if not rows:
            return None
        keys = settings.key_columns
        column = settings.column
        seen = {tuple(row) for row in rows}

        def drop_seen(batch: pa.RecordBatch) -> pa.RecordBatch:
            missing = [name for name in [*keys, column] if name not in batch.schema.names]
            if missing:
                raise HomeError(f"{self.context.key}: watermark.key column(s) {', '.join(missing)} are not in the data")
            values = zip(*(batch.column(name).to_pylist() for name in keys), _as_text(batch.column(column)), strict=True)
            mask = pa.array([tuple(map(_key_text, v)) not in seen for v in values], type=pa.bool_())
            return batch.filter(mask)

        return drop_seen

    def _remember_tail(self, batch: pa.RecordBatch, window: Window | None) -> None:
        """Keep (key, watermark) of rows inside the lookback span below the new upper bound, for the next run."""
        settings = self.context.watermark
        if self._seen is None or window is None or settings is None or settings.lookback is None or batch.num_rows == 0:
            return
        column = batch.column(settings.column)
        upper = window.upper
        threshold = upper - settings.lookback
        if isinstance(upper, dt.datetime) and pa.types.is_timestamp(column.type):
            scalar = pa.scalar(
                threshold if column.type.tz or threshold.tzinfo is None else threshold.replace(tzinfo=None), type=column.type
            )
        else:
            scalar = pa.scalar(threshold, type=column.type)
        import pyarrow.compute as pc  # imported with the first lookback filter, not with hygge_core

        tail = batch.filter(pc.greater(column, scalar))
        if tail.num_rows:
            keys = [tail.column(name).to_pylist() for name in settings.key_columns]
            for values in zip(*keys, _as_text(tail.column(settings.column)), strict=True):
                self._seen["rows"].append([_key_text(v) for v in values])

    # --- results --------------------------------------------------------------------------------

    def schema(self) -> pa.Schema | None:
        return self._schema

    def source_row_count(self) -> int | None:
        """The window's COUNT less the re-read rows the lookback dropped: what this run should have written."""
        return None if self._count is None else self._count - self._dropped_as_seen

    def state_update(self) -> StateUpdate:
        return StateUpdate(progress={SEEN_KEY: self._seen} if self._seen is not None else {}, watermark=self._watermark)

    @classmethod
    def discover(cls, config: HomeConfig, plan_context: DiscoveryContext) -> list[str]:
        from hygge_core.sql.pool import pool_for

        assert isinstance(config, SqlHomeConfig)
        connection = plan_context.connection
        if connection is None:
            raise ConfigError(f"{plan_context.where}: discovery needs home.connection naming one of connections:")
        dialect = DIALECTS[cls.dialect_name]
        with pool_for(config.connection, connection).connection() as open_connection:
            table = open_connection.fetch_all(dialect.tables_query(), during="listing tables for entity discovery")
        return [f"{row['schema_name']}.{row['table_name']}" for row in table.to_pylist()]

    def check(self) -> str:
        with self._pool().connection() as connection:
            reads = f"read through {ROUTE_NAMES[connection.target.route]}"
            table_text = self.config.source_table()
            if table_text is not None:
                table = self.dialect.parse_name(table_text)
                columns = self._columns(connection, table)
                if self.config.partitions is not None:
                    self._partition_column(columns, self.dialect.relation(table))
                return f"{connection.target.label}: table {table} readable, {len(columns)} column(s), {reads}"
            connection.ping()
            return f"{connection.target.label}: connected, {reads}"


def _describe_range(key_range: KeyRange) -> str:
    parts = []
    if key_range.lower is not None:
        parts.append(f"{key_range.column} >= {key_range.lower}")
    if key_range.upper is not None:
        parts.append(f"{key_range.column} < {key_range.upper}")
    text = " and ".join(parts) or "all keys"
    return f"range {text}{' (and NULL)' if key_range.nulls and parts else ''}"


def _as_text(column: pa.Array | pa.ChunkedArray) -> list[str | None]:
    return [
        None if v is None else (v.isoformat() if isinstance(v, (dt.datetime, dt.date)) else str(v)) for v in column.to_pylist()
    ]


def _key_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return str(value)

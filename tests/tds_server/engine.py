"""The engine behind the wire: DuckDB holding the Parquet tables, T-SQL translated, SQL Server's catalog shimmed.

Each table has declared SQL Server types (a sidecar ``<table>.types.json`` naming
the T-SQL type of some or all columns, the rest derived from the Parquet types),
so every type hygge maps can be served. Result columns get their SQL Server type
from, in order: a CAST in the select list, the declared type of a same-named
column of a table the query reads (when DuckDB returns it unchanged), or the
Arrow type DuckDB returns. ``sys.tables``, ``sys.schemas``, ``sys.columns``,
``sys.types``, ``OBJECT_ID``, ``TYPE_NAME`` and ``SWITCHOFFSET`` are real DuckDB
tables and macros kept in step with the declared types, so hygge's catalog queries
execute as SQL rather than being matched as strings.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from sqlglot import exp
from sqlglot.errors import ParseError

from . import translate
from .types import SYSTEM_TYPE_IDS, TsqlType, parse_declared

NVARCHAR_LIMIT = 4000
T = TypeVar("T")
VARBINARY_LIMIT = 8000


class SqlError(Exception):
    """An error the server reports as an ERROR token, with SQL Server's number."""

    def __init__(self, number: int, text: str, *, severity: int = 16, state: int = 1) -> None:
        super().__init__(text)
        self.number = number
        self.text = text
        self.severity = severity
        self.state = state


@dataclass
class Rows:
    columns: list[tuple[str, TsqlType]]
    batches: Iterator[list[tuple[Any, ...]]]


@dataclass
class Count:
    rows: int | None


@dataclass
class Table:
    schema: str
    name: str
    columns: dict[str, TsqlType]  # declared, in column order, keyed by the column's name as written
    arrow: dict[str, pa.DataType] = field(default_factory=dict)  # what DuckDB returns for each stored column

    @property
    def key(self) -> tuple[str, str]:
        return self.schema.lower(), self.name.lower()


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def derived_type(arrow: pa.DataType) -> TsqlType:
    """The SQL Server type for a computed column, from the Arrow type DuckDB gives it."""
    if pa.types.is_boolean(arrow):
        return TsqlType("bit")
    if pa.types.is_uint8(arrow):
        return TsqlType("tinyint")
    if pa.types.is_int8(arrow) or pa.types.is_int16(arrow):
        return TsqlType("smallint")
    if pa.types.is_uint16(arrow) or pa.types.is_int32(arrow):
        return TsqlType("int")
    if pa.types.is_uint32(arrow) or pa.types.is_int64(arrow):
        return TsqlType("bigint")
    if pa.types.is_uint64(arrow):
        return TsqlType("decimal", precision=20, scale=0)
    if pa.types.is_float16(arrow) or pa.types.is_float32(arrow):
        return TsqlType("real")
    if pa.types.is_float64(arrow):
        return TsqlType("float", precision=53)
    if pa.types.is_decimal(arrow) and arrow.precision <= 38:
        return TsqlType("decimal", precision=arrow.precision, scale=arrow.scale)
    if pa.types.is_date(arrow):
        return TsqlType("date")
    if pa.types.is_time(arrow):
        return TsqlType("time", scale=7)
    if pa.types.is_timestamp(arrow):
        return TsqlType("datetimeoffset" if arrow.tz else "datetime2", scale=7)
    if pa.types.is_binary(arrow) or pa.types.is_large_binary(arrow):
        return TsqlType("varbinary", length=VARBINARY_LIMIT)
    if pa.types.is_null(arrow):
        return TsqlType("int")
    return TsqlType("nvarchar", length=NVARCHAR_LIMIT)


class Engine:
    """One DuckDB database for the server; ``session()`` gives each connection its own cursor."""

    def __init__(self, data: Path | None = None, *, database: str = "hygge") -> None:
        self.database = database
        self.db = duckdb.connect(":memory:")
        self.lock = threading.RLock()
        self.tables: dict[tuple[str, str], Table] = {}
        self._next_object_id = 1_000_000
        self._object_ids: dict[tuple[str, str], int] = {}
        with self.lock:
            self.db.execute("SET TimeZone = 'UTC'")
            self._create_shims()
            if data is not None:
                for path in sorted(Path(data).glob("*.parquet")):
                    self.load_parquet(path)

    # --- tables ------------------------------------------------------------------------------

    def load_parquet(self, path: Path) -> Table:
        """``orders.parquet`` becomes dbo.orders, ``sales.orders.parquet`` sales.orders; ``<stem>.types.json`` declares types."""
        stem = path.name[: -len(".parquet")]
        schema, name = stem.split(".", 1) if "." in stem else ("dbo", stem)
        sidecar = path.with_name(f"{stem}.types.json")
        declared_text: dict[str, str] = json.loads(sidecar.read_text()) if sidecar.exists() else {}
        arrow_schema = pq.read_schema(path)
        unknown = set(declared_text) - set(arrow_schema.names)
        if unknown:
            raise ValueError(f"{sidecar} names columns {sorted(unknown)} that {path.name} does not have")
        columns = {
            f.name: parse_declared(declared_text[f.name]) if f.name in declared_text else derived_type(f.type)
            for f in arrow_schema
        }
        with self.lock:
            self._create_table(schema, name, columns)
            selects = []
            for arrow_field in arrow_schema:
                source = quote(arrow_field.name)
                target = translate.duck_type(columns[arrow_field.name], stored=True)
                if columns[arrow_field.name].name == "datetimeoffset" and pa.types.is_timestamp(arrow_field.type):
                    source = f"strftime({source}, '%Y-%m-%d %H:%M:%S.%f') || ' +00:00'"
                selects.append(f"CAST({source} AS {target})")
            self.db.execute(
                f"INSERT INTO {quote(schema)}.{quote(name)} SELECT {', '.join(selects)} FROM read_parquet(?)", [str(path)]
            )
        return self.tables[(schema.lower(), name.lower())]

    def _create_table(self, schema: str, name: str, columns: dict[str, TsqlType]) -> None:
        definitions = ", ".join(f"{quote(c)} {translate.duck_type(t, stored=True)}" for c, t in columns.items())
        self.db.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
        self.db.execute(f"CREATE TABLE {quote(schema)}.{quote(name)} ({definitions})")
        self._register(schema, name, columns)

    def _register(self, schema: str, name: str, columns: dict[str, TsqlType]) -> None:
        table = Table(schema, name, columns)
        probe = self.db.sql(f"SELECT * FROM {quote(schema)}.{quote(name)} LIMIT 0").to_arrow_table().schema
        table.arrow = {f.name.lower(): f.type for f in probe}
        self.tables[table.key] = table
        if table.key not in self._object_ids:
            self._object_ids[table.key] = self._next_object_id
            self._next_object_id += 1
        self._refresh_catalog()

    def _forget(self, schema: str, name: str) -> None:
        self.tables.pop((schema.lower(), name.lower()), None)
        self._refresh_catalog()

    # --- SQL Server's catalog, as DuckDB tables and macros --------------------------------------

    def _create_shims(self) -> None:
        statements = [
            "CREATE SCHEMA sys",
            "CREATE SCHEMA dbo",
            "CREATE SCHEMA hygge_tds",
            "CREATE TABLE sys.schemas (schema_id INTEGER, name VARCHAR, principal_id INTEGER)",
            "CREATE TABLE sys.tables (object_id INTEGER, name VARCHAR, schema_id INTEGER, type VARCHAR, type_desc VARCHAR, "
            "is_ms_shipped BOOLEAN, create_date TIMESTAMP, modify_date TIMESTAMP)",
            "CREATE TABLE sys.columns (object_id INTEGER, name VARCHAR, column_id INTEGER, system_type_id INTEGER, "
            "user_type_id INTEGER, max_length SMALLINT, precision UTINYINT, scale UTINYINT, is_nullable BOOLEAN, is_identity BOOLEAN)",
            "CREATE TABLE sys.types (name VARCHAR, system_type_id INTEGER, user_type_id INTEGER, schema_id INTEGER)",
            "CREATE VIEW sys.objects AS SELECT object_id, name, schema_id, type, type_desc, is_ms_shipped FROM sys.tables",
            "CREATE TABLE hygge_tds.names (name VARCHAR, object_id INTEGER)",
            "CREATE MACRO object_id(n) AS (SELECT max(x.object_id) FROM hygge_tds.names AS x WHERE x.name = lower(n))",
            "CREATE MACRO type_name(i) AS (SELECT max(t.name) FROM sys.types AS t WHERE t.user_type_id = i)",
            "CREATE MACRO schema_name(i) AS (SELECT max(s.name) FROM sys.schemas AS s WHERE s.schema_id = i)",
            # datetimeoffset is stored as its text; SQL Server writes a space before the offset, DuckDB wants none
            "CREATE MACRO switchoffset(v, o) AS CAST(regexp_replace(CAST(v AS VARCHAR), '\\s+([+-][0-9:]+)$', '\\1') AS TIMESTAMPTZ)",
            "CREATE MACRO db_name() AS 'hygge'",
            "CREATE MACRO datalength(x) AS octet_length(CAST(x AS BLOB))",
        ]
        for statement in statements:
            self.db.execute(statement)
        types = [(name, type_id, type_id, 4) for name, type_id in SYSTEM_TYPE_IDS.items()] + [("sysname", 231, 256, 4)]
        self.db.executemany("INSERT INTO sys.types VALUES (?, ?, ?, ?)", types)

    def _refresh_catalog(self) -> None:
        schemas = sorted({t.schema for t in self.tables.values()} | {"dbo"}, key=str.lower)
        schema_ids = {s.lower(): (1 if s.lower() == "dbo" else 5 + i) for i, s in enumerate(schemas)}
        for table_name in ("sys.schemas", "sys.tables", "sys.columns", "hygge_tds.names"):
            self.db.execute(f"DELETE FROM {table_name}")
        self.db.executemany("INSERT INTO sys.schemas VALUES (?, ?, 1)", [(schema_ids[s.lower()], s) for s in schemas])
        tables, columns, names = [], [], []
        for key, table in self.tables.items():
            object_id = self._object_ids[key]
            tables.append((object_id, table.name, schema_ids[table.schema.lower()], "U ", "USER_TABLE", False))
            for column_id, (column, tsql) in enumerate(table.columns.items(), start=1):
                type_id, max_length, precision, scale = tsql.catalog()
                user_type = 256 if tsql.name == "sysname" else type_id
                columns.append((object_id, column, column_id, type_id, user_type, max_length, precision, scale, True, False))
            for spelled in _spellings(table.schema, table.name):
                names.append((spelled.lower(), object_id))
        if tables:
            self.db.executemany("INSERT INTO sys.tables VALUES (?, ?, ?, ?, ?, ?, now()::TIMESTAMP, now()::TIMESTAMP)", tables)
        if columns:
            self.db.executemany("INSERT INTO sys.columns VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", columns)
        if names:
            self.db.executemany("INSERT INTO hygge_tds.names VALUES (?, ?)", names)

    def session(self, spid: int) -> EngineSession:
        with self.lock:
            return EngineSession(self, self.db.cursor(), spid)


def _spellings(schema: str, name: str) -> list[str]:
    """The ways OBJECT_ID can be given a table: bare, bracketed or double-quoted, with or without the schema."""

    def forms(part: str) -> list[str]:
        return [part, "[" + part.replace("]", "]]") + "]", '"' + part.replace('"', '""') + '"']

    spelled = [f"{s}.{t}" for s in forms(schema) for t in forms(name)]
    if schema.lower() == "dbo":
        spelled += forms(name)
    return spelled


class EngineSession:
    """One connection's view of the engine: a DuckDB cursor and the statement runner."""

    def __init__(self, engine: Engine, cursor: duckdb.DuckDBPyConnection, spid: int) -> None:
        self.engine = engine
        self.cursor = cursor
        self.spid = spid
        self.cursor.execute("SET TimeZone = 'UTC'")
        self.cursor.execute("SET search_path = 'dbo,main'")  # unqualified names are dbo's, as for a dbo user

    def close(self) -> None:
        self.cursor.close()

    def run(self, sql: str, params: dict[str, Any] | None = None, *, batch_rows: int = 1000) -> Iterator[Rows | Count]:
        """Each statement of the batch in turn: ``Rows`` for a result set, ``Count`` for the rest."""
        params = {k.lstrip("@").lower(): v for k, v in (params or {}).items()}
        try:
            statements = translate.parse(translate.globals_replaced(sql, self.spid))
        except ParseError as exc:
            raise SqlError(102, f"Incorrect syntax: {_first_line(exc)}", severity=15) from None
        for statement in statements:
            yield from self._statement(statement, params, batch_rows)

    def _statement(self, statement: exp.Expression, params: dict[str, Any], batch_rows: int) -> Iterator[Rows | Count]:
        if isinstance(statement, exp.Set | exp.Transaction | exp.Commit | exp.Rollback | exp.Use) or _is_noop_command(statement):
            yield Count(None)
            return
        if isinstance(statement, exp.Execute) or (
            isinstance(statement, exp.Command) and str(statement.this).upper() in ("EXEC", "EXECUTE")
        ):
            name = (
                statement.this.sql(dialect="tsql") if isinstance(statement, exp.Execute) else str(statement.expression).split()[0]
            )
            raise SqlError(2812, f"Could not find stored procedure '{name}'.")  # batches run no procedures here; RPCs do
        if isinstance(statement, exp.Create) and statement.kind == "TABLE":
            yield from self._create(statement)
            return
        if isinstance(statement, exp.Drop) and statement.kind == "TABLE":
            yield from self._drop(statement)
            return
        duck_sql = translate.to_duckdb(statement, params)
        try:
            yield from self._translated(statement, duck_sql, batch_rows)
        except SqlError as error:
            raise _as_written(error, statement) from None

    def _translated(self, statement: exp.Expression, duck_sql: str, batch_rows: int) -> Iterator[Rows | Count]:
        if isinstance(statement, exp.Query):
            relation = self._execute(lambda: self.cursor.sql(duck_sql))
            reader = self._execute(lambda: _arrow_reader(relation, batch_rows))
            yield self._rows(statement, reader)
            return
        result = self._execute(lambda: self.cursor.execute(duck_sql))
        if isinstance(statement, exp.Insert | exp.Update | exp.Delete):
            counted = result.fetchone()
            yield Count(int(counted[0]) if counted else 0)
            return
        yield Count(None)

    def _execute(self, action: Callable[[], T]) -> T:
        """Run a DuckDB call, turning its errors into SQL Server's numbers."""
        try:
            return action()
        except duckdb.CatalogException as exc:
            text = _first_line(exc)
            if "Table with name" in text or "does not exist" in text and "Table" in text:
                missing = text.split("Table with name ", 1)[-1].split(" does not exist", 1)[0]
                raise SqlError(208, f"Invalid object name '{missing}'.") from None
            raise SqlError(208, text) from None
        except duckdb.BinderException as exc:
            text = _first_line(exc)
            if 'column "' in text.lower() or "referenced column" in text.lower():
                raise SqlError(207, f"Invalid column name: {text}") from None
            raise SqlError(4104, text) from None
        except duckdb.ParserException as exc:
            raise SqlError(102, f"Incorrect syntax: {_first_line(exc)}", severity=15) from None
        except duckdb.ConstraintException as exc:
            raise SqlError(2627, _first_line(exc), severity=14) from None
        except (duckdb.ConversionException, duckdb.OutOfRangeException) as exc:
            raise SqlError(241, f"Conversion failed: {_first_line(exc)}") from None
        except duckdb.Error as exc:
            raise SqlError(50000, _first_line(exc)) from None

    def _rows(self, statement: exp.Expression, reader: pa.RecordBatchReader) -> Rows:
        schema = reader.schema
        hints = translate.projection_hints(statement)
        if hints is not None and len(hints) != len(schema):
            hints = None
        by_name: dict[str, tuple[TsqlType, pa.DataType]] = {}
        for key in translate.referenced_tables(statement):
            table = self.engine.tables.get(key)
            if table is not None:
                for column, tsql in table.columns.items():
                    by_name.setdefault(column.lower(), (tsql, table.arrow[column.lower()]))
        columns: list[tuple[str, TsqlType]] = []
        needs_scan: list[int] = []
        for index, arrow_field in enumerate(schema):
            hint = hints[index] if hints else translate.COLUMN
            known = by_name.get(arrow_field.name.lower()) if hint == translate.COLUMN else None
            if isinstance(hint, TsqlType):
                tsql = hint
            elif known is not None and known[1] == arrow_field.type:
                tsql = known[0]
            else:
                tsql = derived_type(arrow_field.type)
                if tsql.name in ("nvarchar", "varbinary"):
                    needs_scan.append(index)
            columns.append((_output_name(statement, index, arrow_field.name), tsql))
        batches: Iterator[pa.RecordBatch] = iter(reader)
        if needs_scan:  # computed text: nvarchar(4000) unless a value is longer, as SQL Server would size it
            materialized = list(batches)
            for index in needs_scan:
                name, tsql = columns[index]
                limit = NVARCHAR_LIMIT if tsql.name == "nvarchar" else VARBINARY_LIMIT
                longest = max((_longest(batch.column(index)) for batch in materialized), default=0)
                if longest > limit:
                    columns[index] = (name, TsqlType(tsql.name, length=-1))
            batches = iter(materialized)
        return Rows(columns, _python_rows(batches))

    def _create(self, statement: exp.Create) -> Iterator[Count]:
        table_node = statement.this.this if isinstance(statement.this, exp.Schema) else statement.this
        schema_node = statement.this
        columns: dict[str, TsqlType] = {}
        for column_def in schema_node.expressions if isinstance(schema_node, exp.Schema) else []:
            if isinstance(column_def, exp.ColumnDef) and isinstance(column_def.args.get("kind"), exp.DataType):
                columns[column_def.name] = translate.declared_of(column_def.args["kind"])
        schema, name = table_node.db or "dbo", table_node.name
        with self.engine.lock:
            if (schema.lower(), name.lower()) in self.engine.tables:
                raise SqlError(2714, f"There is already an object named '{name}' in the database.")
            self.engine._create_table(schema, name, columns)
        yield Count(None)

    def _drop(self, statement: exp.Drop) -> Iterator[Count]:
        # newer sqlglot lists the tables (``DROP TABLE a, b``) under ``tables``; older versions had one, as ``this``
        tables = statement.args.get("tables") or [statement.this]
        with self.engine.lock:
            for table_node in tables:
                schema, name = table_node.db or "dbo", table_node.name
                if (schema.lower(), name.lower()) not in self.engine.tables:
                    if statement.args.get("exists"):
                        continue
                    raise SqlError(
                        3701, f"Cannot drop the table '{name}', because it does not exist or you do not have permission."
                    )
                self.engine.db.execute(f"DROP TABLE {quote(schema)}.{quote(name)}")
                self.engine._forget(schema, name)
        yield Count(None)


def _as_written(error: SqlError, statement: exp.Expression) -> SqlError:
    """SQL Server names a missing table as the statement wrote it (``dbo.nowhere``), DuckDB by its bare name."""
    if error.number != 208:
        return error
    for table in statement.find_all(exp.Table):
        if f"'{table.name}'" in error.text:
            written = ".".join(part for part in (table.db, table.name) if part)
            return SqlError(208, f"Invalid object name '{written}'.")
    return error


def _output_name(statement: exp.Expression, index: int, name: str) -> str:
    """SQL Server leaves a computed, unaliased column unnamed (DuckDB names it after its text)."""
    if isinstance(statement, exp.Select) and index < len(statement.expressions):
        projection = statement.expressions[index]
        if not isinstance(projection, exp.Alias | exp.Column | exp.Star):
            return ""
    return name


def _is_noop_command(statement: exp.Expression) -> bool:
    """Statements the server accepts and ignores: session options and transaction control."""
    if not isinstance(statement, exp.Command):
        return False
    word = str(statement.this).upper()
    return word in ("SET", "BEGIN", "COMMIT", "ROLLBACK", "IF", "DECLARE", "USE", "PRINT")


def _longest(column: pa.Array) -> int:
    import pyarrow.compute as pc

    if pa.types.is_null(column.type) or column.null_count == len(column):
        return 0
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return int(pc.max(pc.utf8_length(column)).as_py() or 0)
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        return int(pc.max(pc.binary_length(column)).as_py() or 0)
    return max(len(str(v)) for v in column.to_pylist() if v is not None)


def _python_rows(batches: Iterator[pa.RecordBatch]) -> Iterator[list[tuple[Any, ...]]]:
    for batch in batches:
        columns = [column.to_pylist() for column in batch.columns]
        yield list(zip(*columns, strict=True)) if columns else []


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _arrow_reader(relation: duckdb.DuckDBPyRelation, batch_rows: int) -> pa.RecordBatchReader:
    """DuckDB 2 renamed ``fetch_arrow_reader`` to ``to_arrow_reader`` (the old name warns); the bench extra pins 1.4."""
    if int(duckdb.__version__.split(".")[0]) >= 2:
        return relation.to_arrow_reader(batch_rows)
    return relation.fetch_arrow_reader(batch_rows)

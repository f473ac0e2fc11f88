"""Dagster's SQLite event log, with each database's connection kept open instead of reopened per event.

Dagster's ``SqliteEventLogStorage`` builds a new SQLAlchemy engine for every event it stores, so each
event pays for an engine, a statement compilation (the compiled-statement cache lives in the engine),
a connection and a close. Closing the last connection to a WAL database also checkpoints it and deletes
the WAL file. A materialisation with three check results writes about 12 events and opens 40 connections;
on this machine kind that was about 90 ms of a core per asset with no data moved (docs/benchmarks.md,
"Dagster's SQLite bookkeeping").

This class keeps one engine and one open connection per database, per process. It stores the same
events in the same files (``<dagster_home>/history/runs``), so the UI, the Dagster CLI and the default
storage read them unchanged. Two things keep it safe:

- Dagster's webserver follows a running run by watching ``<run>.db`` for changes (inotify's modify and
  attribute events, through watchdog). An open connection writes to ``<run>.db-wal`` only, so after each
  transaction on a run's database the storage touches ``<run>.db`` (its modification time): the watcher
  wakes and reads the new events through SQLite, which reads the WAL too. A checkpoint per transaction
  did the same and cost a second fsync each time (a third of the events' cost, docs/benchmarks.md); the
  WAL is checkpointed by SQLite as it grows and when the last connection closes.
- ``synchronous`` (config) is SQLite's setting for these databases. ``full`` (SQLite's and Dagster's
  default) syncs the WAL to disk at every commit, three or four times per event. ``normal`` syncs it at
  checkpoints only: in WAL mode a crash of the process loses nothing and the database is never
  corrupted, but a power cut or an operating-system crash can lose the last events before it. The
  lake's data and state do not depend on them (hygge syncs its own commits), so the settings hygge
  writes for new project homes choose ``normal``: about a quarter of the events' cost.
- ``store_event_batch`` (what Dagster calls for a run's planned events when ``DAGSTER_EVENT_BATCH_SIZE`` is
  set, as ``hygge start`` sets it) writes the batch in one transaction per database, all or nothing.
- An SQLite connection must not be used, or closed, in a process forked from its owner: engines are kept
  per process id, and a forked child forgets the inherited ones without closing them (SQLAlchemy's
  ``dispose(close=False)``).

hygge writes this class into the ``dagster.yaml`` of the project homes it creates; an existing
``dagster.yaml`` is never changed.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from dagster import DagsterInvariantViolationError, EventLogEntry, Field, StringSource
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine

CLASS_NAME = "PooledSqliteEventLogStorage"
# The index database and the run databases written or read most recently. A webserver reads the logs of
# many runs; older runs' engines are closed rather than holding a file open each.
MAX_OPEN_DATABASES = 8
Synchronous = Literal["full", "normal"]


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` with an engine and an open connection per database, per process."""

    def __init__(
        self, dagster_home: str, inst_data: ConfigurableClassData | None = None, synchronous: Synchronous = "full"
    ) -> None:
        self.synchronous = synchronous
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_pid = os.getpid()
        self._batch: dict[str, Connection] | None = None
        super().__init__(base_dir=os.path.join(dagster_home, "history", "runs"), inst_data=inst_data)
        # Re-entrant: Dagster may ask ``has_table`` while one of its own connections is open in this thread.
        self._db_lock = threading.RLock()  # type: ignore[assignment]

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"dagster_home": Field(StringSource, is_required=False), "synchronous": Field(str, is_required=False)}

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> PooledSqliteEventLogStorage:
        """The instance folder: from the config (``hygge start`` puts it there), else ``$DAGSTER_HOME`` as Dagster's CLI uses."""
        dagster_home = config_value.get("dagster_home") or os.environ.get("DAGSTER_HOME")
        if not dagster_home:
            raise DagsterInvariantViolationError(
                f"dagster.yaml: event_log_storage {CLASS_NAME} finds the instance folder through $DAGSTER_HOME, which is "
                "not set; set DAGSTER_HOME to the folder that holds this dagster.yaml (or give config: {dagster_home: ...})"
            )
        synchronous = config_value.get("synchronous", "full")
        if synchronous not in get_args(Synchronous):
            raise DagsterInvariantViolationError(
                f"dagster.yaml: event_log_storage {CLASS_NAME}: synchronous is {synchronous!r}; "
                f"use one of {', '.join(get_args(Synchronous))}"
            )
        return cls(dagster_home=dagster_home, inst_data=inst_data, synchronous=synchronous)

    def _engine(self, shard: str) -> Engine:
        """This process's engine for ``shard``; call with ``_db_lock`` held."""
        if self._engines_pid != os.getpid():
            for inherited in self._engines.values():
                inherited.dispose(close=False)  # the parent's connections are the parent's to close
            self._engines.clear()
            self._engines_pid = os.getpid()
        engine = self._engines.get(shard)
        if engine is not None:
            self._engines.move_to_end(shard)
            return engine
        engine = create_engine(
            self.conn_string_for_shard(shard),
            pool_size=1,
            max_overflow=4,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        )
        pragma = f"PRAGMA synchronous={self.synchronous.upper()}"
        event.listen(engine, "connect", lambda dbapi_connection, _record: dbapi_connection.execute(pragma))
        self._engines[shard] = engine
        while len(self._engines) > MAX_OPEN_DATABASES:
            oldest = next(shard for shard in self._engines if shard != INDEX_SHARD_NAME)
            self._engines.pop(oldest).dispose()
        return engine

    def _dispose_engines(self) -> None:
        with self._db_lock:
            for engine in self._engines.values():
                if self._engines_pid == os.getpid():
                    engine.dispose()
            self._engines.clear()

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            if self._batch is not None:
                connection = self._batch.get(shard)
                if connection is None:
                    connection = self._batch[shard] = engine.connect()
                    connection.begin()
                yield connection
                return
            with engine.connect() as connection:
                with connection.begin():
                    yield connection
                _tell_the_watcher(connection, shard)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Every event of the batch in one transaction per database (Dagster batches a run's planned events)."""
        with self._db_lock:
            self._batch = {}
            try:
                for event in events:
                    self.store_event(event)
                for connection in self._batch.values():
                    connection.commit()
            except BaseException:
                for connection in self._batch.values():
                    connection.rollback()
                raise
            finally:
                batch, self._batch = self._batch, None
                for shard, connection in batch.items():
                    _tell_the_watcher(connection, shard)
                    connection.close()

    def has_table(self, table_name: str) -> bool:
        with self._connect(INDEX_SHARD_NAME) as connection:
            return bool(connection.dialect.has_table(connection, table_name))

    def wipe(self) -> None:
        self._dispose_engines()  # wipe deletes run databases; no connection may stay open on a deleted file
        super().wipe()

    def dispose(self) -> None:
        self._dispose_engines()
        super().dispose()


def _tell_the_watcher(connection: Connection, shard: str) -> None:
    """Touch ``<run>.db``, the file the webserver's watcher follows, after a transaction on a run's database."""
    if shard != INDEX_SHARD_NAME:
        database = connection.engine.url.database
        assert database is not None  # every shard is a file under history/runs
        os.utime(database)


def bound_to_home(home: Path) -> dict[str, Any]:
    """Instance overrides that give this storage ``home`` itself when ``home``'s ``dagster.yaml`` names it.

    The Dagster CLI and webserver find an instance through ``$DAGSTER_HOME``, and so does this storage when
    its config names no folder; ``hygge start`` opens the instance by its folder, in a process where
    ``$DAGSTER_HOME`` may be unset or name another one. The instance reference it builds (and hands to step processes) then carries
    the folder. Nothing is overridden when the home uses another event log storage.
    """
    settings_file = home / "dagster.yaml"
    settings = yaml.safe_load(settings_file.read_text(encoding="utf-8")) if settings_file.is_file() else None
    storage = (settings or {}).get("event_log_storage") or {}
    if storage.get("module") != __name__ or storage.get("class") != CLASS_NAME:
        return {}
    config = {**(storage.get("config") or {}), "dagster_home": str(home.resolve())}
    return {"event_log_storage": {"module": __name__, "class": CLASS_NAME, "config": config}}

"""Test-only home and store types: rows made in memory, with switches for the failures the Dagster tests need.

It lives in its own module (not a test file) so multiprocess step processes can import it:
``materialize_entities`` imports the module that registered each custom home type.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from hygge_core.config import RunType
from hygge_core.errors import ConfigError, TransientError
from hygge_core.home import DiscoveryContext, Home, HomeConfig
from hygge_core.state import EntityState
from hygge_core.store import PublishResult, StoreWriter
from hygge_core.stores.parquet import ParquetSession, ParquetStore, ParquetStoreConfig


class MemoryHomeConfig(HomeConfig):
    type: Literal["test_memory"] = "test_memory"
    connection: str | None = None
    rows: int = 1000
    batch_rows: int = 100
    fail_once_marker: str | None = None  # first attempt creates this file, then fails transiently mid-read
    claimed_source_rows: int | None = None  # what the home says the source holds (default: rows)
    fail_with: str | None = None  # raise RuntimeError(this) after two batches: a bug, not one of hygge's errors
    sleep: float = 0.0  # seconds spent reading, to make runs overlap if nothing stops them
    timeline: str | None = None  # folder for <entity>.start / <entity>.end wall-clock stamps
    entity: str | None = None  # set per entity, like a SQL home's default table
    catalog: list[str] = []  # what discovery finds (entities: {include: ...})
    catalog_once_marker: str | None = None  # the first discovery creates this file; every later one fails, like a dead catalog

    @classmethod
    def for_entity(cls, raw: dict[str, Any], entity: str, *, listed: bool) -> dict[str, Any]:
        return {**super().for_entity(raw, entity, listed=listed), "entity": entity}

    def lineage_name(self) -> str | None:
        """Like a SQL table: a home with a connection reads the table named after its entity."""
        return self.entity if self.connection else None


class MemoryHome(Home, type_name="test_memory", config=MemoryHomeConfig):
    config: MemoryHomeConfig

    @classmethod
    def discover(cls, config: HomeConfig, plan_context: DiscoveryContext) -> list[str]:
        assert isinstance(config, MemoryHomeConfig)
        marker = Path(config.catalog_once_marker) if config.catalog_once_marker else None
        if marker is not None and marker.exists():
            raise ConfigError(f"{plan_context.where}: the catalog query failed (test: the server went away)")
        if marker is not None:
            marker.write_text("discovered once")
        return list(config.catalog)

    def read(self, previous: EntityState, run_type: str) -> Iterator[pa.Table]:
        timeline = Path(self.config.timeline) if self.config.timeline else None
        if timeline is not None:
            (timeline / f"{self.context.entity}.start").write_text(repr(time.time()))
        time.sleep(self.config.sleep)
        for offset in range(0, self.config.rows, self.config.batch_rows):
            ids = range(offset, min(offset + self.config.batch_rows, self.config.rows))
            yield pa.table({"id": pa.array(ids, pa.int64()), "name": [f"row {i}" for i in ids]})
            if self.config.fail_with is not None and offset >= 2 * self.config.batch_rows:
                raise RuntimeError(self.config.fail_with)
            marker = Path(self.config.fail_once_marker) if self.config.fail_once_marker else None
            if marker is not None and offset >= 2 * self.config.batch_rows and not marker.exists():
                marker.write_text("failed once")
                raise TransientError(f"{self.context.key}: connection lost (test)")
        if timeline is not None:
            (timeline / f"{self.context.entity}.end").write_text(repr(time.time()))

    def schema(self) -> pa.Schema:
        return pa.schema([("id", pa.int64()), ("name", pa.string())])

    def source_row_count(self) -> int | None:
        return self.config.claimed_source_rows if self.config.claimed_source_rows is not None else self.config.rows


class LossyStoreConfig(ParquetStoreConfig):
    type: Literal["test_lossy"] = "test_lossy"  # type: ignore[assignment]  (a Parquet store under another name)


class LossyStore(ParquetStore, type_name="test_lossy", config=LossyStoreConfig):
    """A destination that loses rows after hygge handed them over: every batch's first row never lands.

    Stands in for a tampered destination or a broken store; only a check that reads
    back what was published can notice.
    """

    def session(self) -> ParquetSession:
        return _LossySession(self)


class _LossySession(ParquetSession):
    def writer(self, *, run_id: str, run_type: RunType) -> StoreWriter:
        return _LossyWriter(super().writer(run_id=run_id, run_type=run_type))


class _LossyWriter(StoreWriter):
    """Passes everything to the real writer, except the first row of each batch."""

    def __init__(self, inner: StoreWriter) -> None:
        self.inner = inner

    def write(self, data: pa.Table | pa.RecordBatch) -> None:
        self.inner.write(data.slice(1))

    def commit(self, state: EntityState, *, schema: pa.Schema | None) -> PublishResult:
        return self.inner.commit(state, schema=schema)

    def abort(self) -> None:
        self.inner.abort()

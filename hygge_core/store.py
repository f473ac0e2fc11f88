"""The store contract: where an entity's data lands, and how a run is published.

A store opens a ``StoreSession`` per run. The session holds the entity's lock,
recovers leftovers of killed runs, exposes the committed state, and hands out a
writer whose ``commit`` publishes atomically and whose ``abort`` leaves no trace.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa

from hygge_core.config import RunType, StrictModel
from hygge_core.errors import StoreError
from hygge_core.registry import RegisteredType, Registry
from hygge_core.state import EntityState
from hygge_core.templates import substitute_entity

if TYPE_CHECKING:
    import polars as pl

stores_registry: Registry[type[Store]] = Registry("store")


class StoreConfig(StrictModel):
    type: str

    @classmethod
    def for_entity(cls, raw: dict[str, Any], entity: str, *, listed: bool) -> dict[str, Any]:
        return substitute_entity(raw, entity)

    def resolve_paths(self, root: Path) -> StoreConfig:
        return self

    def owned_location(self) -> str | None:
        """The folder or URI this entity's data owns exclusively (absolute), so the plan can refuse overlaps; ``None``: unknown."""
        return None

    def describe(self) -> str:
        return self.type


@dataclass(frozen=True)
class PublishResult:
    """What one commit added to the destination, read back from what was published, not counted on the way in.

    ``rows``: the rows this commit added (the ``row_count`` check reconciles them with the rows read).
    ``table_rows``: the rows in the whole published version after the commit (Parquet footers,
    Delta log), what a reader of the table sees; ``None`` when the store cannot tell cheaply.
    ``uri``: where a reader finds the table, never with credentials; ``None`` when there is no such address.
    """

    files: int
    bytes: int
    rows: int
    destination: str
    table_rows: int | None = None
    uri: str | None = None

    def details(self) -> dict[str, int | str]:
        """Store-specific facts about the commit (e.g. a table version), shown as ``hygge/<name>`` metadata."""
        return {}


class StoreWriter(ABC):
    @abstractmethod
    def write(self, data: pa.Table | pa.RecordBatch) -> None:
        """Accept one batch; the writer buffers to its own output unit (e.g. a row group)."""

    @abstractmethod
    def commit(self, state: EntityState, *, schema: pa.Schema | None) -> PublishResult:
        """Publish everything written plus ``state`` in one atomic step."""

    @abstractmethod
    def abort(self) -> None:
        """Drop everything written; the destination stays as it was."""


class StoreSession(ABC):
    """One run's hold on an entity's destination. Use as a context manager."""

    @property
    @abstractmethod
    def state(self) -> EntityState:
        """The committed state before this run."""

    @abstractmethod
    def writer(self, *, run_id: str, run_type: RunType) -> StoreWriter: ...

    def __enter__(self) -> StoreSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the entity's lock."""


class Store(RegisteredType):
    registry = stores_registry
    config: StoreConfig
    scannable: ClassVar[bool] = False
    """Whether ``scan`` can read the published version back (checks such as ``unique_key`` need it)."""

    @abstractmethod
    def session(self) -> StoreSession:
        """Lock the entity, recover leftovers, and read its committed state."""

    @abstractmethod
    def read_state(self) -> EntityState:
        """The committed state, without locking (for planning and checks)."""

    @property
    @abstractmethod
    def destination(self) -> str:
        """Where the entity lands, for messages and metadata."""

    @property
    def public_uri(self) -> str | None:
        """Where a reader finds the table, as a URI without credentials (``file://`` on local disk); ``None``: no such address."""
        return None

    @property
    def table_name(self) -> str:
        """The table's name for catalogs and Dagster's ``dagster/table_name``: ``flow.entity`` unless the store names its own."""
        return f"{self.context.flow}.{self.context.entity}"

    def definition_state(self) -> EntityState | None:
        """The committed state when reading it costs a local file read at most; ``None`` when it would not.

        Dagster builds definitions whenever a code location loads, so a store on remote storage
        returns ``None`` rather than making a network call per entity there.
        """
        return None

    def check(self) -> str:
        """Prove the destination is writable (for ``hygge debug``); return what was checked."""
        return "not checked"

    def scan(self, state: EntityState) -> pl.LazyFrame | None:
        """A lazy read of the version ``state`` describes (``None`` when nothing is published); ``scannable`` stores only."""
        raise StoreError(f"{self.context.key}: store type {self.type_name!r} cannot read its data back")

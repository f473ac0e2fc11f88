"""The home contract: where an entity's data comes from.

A home yields bounded Arrow record batches (or Polars frames, converted without
copying) and never holds a whole table. It registers itself with its config model::

    class ParquetHome(Home, type_name="parquet", config=ParquetHomeConfig): ...
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
from pydantic import Field

from hygge_core.config import RunType, StrictModel
from hygge_core.context import EntityContext
from hygge_core.errors import ConfigError
from hygge_core.registry import RegisteredType, Registry
from hygge_core.state import EntityState, StateUpdate
from hygge_core.templates import substitute_entity

homes_registry: Registry[type[Home]] = Registry("home")


class HomeConfig(StrictModel):
    """Keys every home accepts. Subclasses add their own and narrow ``type``."""

    type: str
    batch_size: int = Field(default=100_000, ge=1, description="rows per batch handed to the store")

    @classmethod
    def for_entity(cls, raw: dict[str, Any], entity: str, *, listed: bool) -> dict[str, Any]:
        """Turn the flow-level block into this entity's block, before the entity's overrides.

        ``{entity}`` is replaced in every string. Homes with a default mapping
        (a folder per entity, a table per entity) override this to apply it when
        the template does not mention ``{entity}``.
        """
        return substitute_entity(raw, entity)

    def resolve_paths(self, root: Path) -> HomeConfig:
        """Return a copy whose relative paths are resolved against the project root."""
        return self

    def describe(self) -> str:
        return self.type

    def local_paths(self) -> list[Path]:
        """Files or folders this entity reads on local disk (a glob's folder before its first wildcard), for overlap checks."""
        return []

    def lineage_name(self) -> str | None:
        """The source object this entity reads (``schema.table`` for SQL), for upstream lineage; ``None`` if none."""
        return None

    def lineage_key(self, context: EntityContext) -> tuple[str, ...] | None:
        """The source asset upstream of this entity, as key parts; ``None``: none.

        ``(connection, schema, table)`` for a home on a connection that names what it reads
        (``lineage_name``); homes that read files override this to name their folder.
        """
        name = self.lineage_name()
        if context.connection_name is None or name is None:
            return None
        return (context.connection_name, *name.split("."))


class Home(RegisteredType):
    """Reads one entity. Built fresh for every run, so it may keep per-run progress."""

    registry = homes_registry
    config: HomeConfig
    watchable: ClassVar[bool] = False
    """Whether ``change_token`` can tell cheaply that the source changed (Dagster builds a sensor for such flows)."""
    reads_time_windows: ClassVar[bool] = False
    """Whether ``read`` honours the context's ``time_window`` (entities of such homes may have ``time_partitions``)."""

    @abstractmethod
    def read(self, previous: EntityState, run_type: RunType) -> Iterator[pa.RecordBatch | pa.Table]:
        """Yield the entity's rows in bounded batches; for incremental runs only what is new."""

    def schema(self) -> pa.Schema | None:
        """The schema of the data read, for publishing an empty entity when no batch came."""
        return None

    def state_update(self) -> StateUpdate:
        """What to commit with the data (called after ``read`` finishes): the home's progress, its watermark."""
        return StateUpdate()

    def source_row_count(self) -> int | None:
        """Rows in the window just read, when the source can tell cheaply; ``None`` otherwise."""
        return None

    @classmethod
    def discover(cls, config: HomeConfig, plan_context: DiscoveryContext) -> list[str]:
        """Entity names this home can see, for ``entities: {include, exclude}``."""
        raise ConfigError(f"{plan_context.where}: home type {cls.type_name!r} cannot discover entities; list them instead")

    def check(self) -> str:
        """Prove the home is reachable and readable (for ``hygge debug``); return what was checked."""
        return "not checked"

    def change_token(self) -> str:
        """A digest of what the source holds now (``""`` when it holds nothing yet); only for ``watchable`` homes."""
        raise NotImplementedError(f"home type {self.type_name!r} is not watchable")


class DiscoveryContext(StrictModel):
    """What discovery needs besides the home config: where errors point and the connection."""

    model_config = StrictModel.model_config | {"arbitrary_types_allowed": True}

    where: str
    project_root: Path
    connection: Any = None

"""The home contract: where an entity's data comes from.

A home yields bounded Arrow record batches (or Polars frames, converted without
copying) and never holds a whole table. It registers itself with its config model::

    class ParquetHome(Home, type_name="parquet", config=ParquetHomeConfig): ...
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa
from pydantic import Field

from hygge_core.config import StrictModel
from hygge_core.registry import Registry
from hygge_core.state import EntityState
from hygge_core.templates import substitute_entity

if TYPE_CHECKING:
    from hygge_core.project import EntityPlan

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


class Home(ABC):
    """Reads one entity. Built fresh for every run, so it may keep per-run progress."""

    type_name: ClassVar[str]
    config_model: ClassVar[type[HomeConfig]]

    def __init_subclass__(cls, *, type_name: str | None = None, config: type[HomeConfig] | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        homes_registry.register_subclass(cls, type_name=type_name, config=config)

    def __init__(self, config: HomeConfig, plan: EntityPlan) -> None:
        self.config = config
        self.plan = plan

    @abstractmethod
    def read(self, previous: EntityState, run_type: str) -> Iterator[pa.RecordBatch | pa.Table]:
        """Yield the entity's rows in bounded batches; for incremental runs only what is new."""

    def schema(self) -> pa.Schema | None:
        """The schema of the data read, for publishing an empty entity when no batch came."""
        return None

    def state_updates(self) -> dict[str, Any]:
        """Home-specific progress to commit with the data (called after ``read`` finishes)."""
        return {}

    def source_row_count(self) -> int | None:
        """Rows in the window just read, when the source can tell cheaply; ``None`` otherwise."""
        return None

    @classmethod
    def discover(cls, config: HomeConfig, plan_context: DiscoveryContext) -> list[str]:
        """Entity names this home can see, for ``entities: {include, exclude}``."""
        from hygge_core.errors import ConfigError

        raise ConfigError(f"{plan_context.where}: home type {cls.type_name!r} cannot discover entities; list them instead")

    def check(self) -> str:
        """Prove the home is reachable and readable (for ``hygge debug``); return what was checked."""
        return "not checked"


class DiscoveryContext(StrictModel):
    """What discovery needs besides the home config: where errors point and the connection."""

    model_config = StrictModel.model_config | {"arbitrary_types_allowed": True}

    where: str
    project_root: Path
    connection: Any = None

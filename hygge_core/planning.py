"""Expand one validated flow into entity plans: list or discover its entities, merge overrides, resolve paths.

Each entity's home and store blocks are the flow's blocks with ``{entity}`` filled in
(and the folder-per-entity default applied), with the entity's own overrides merged
over them, validated by the model their ``type:`` registered.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hygge_core import homes as _builtin_homes  # noqa: F401  (registers built-in homes)
from hygge_core import stores as _builtin_stores  # noqa: F401  (registers built-in stores)
from hygge_core.config import (
    ConnectionConfig,
    EntityConfig,
    EntityDiscovery,
    FlowConfig,
    RunType,
    TimePartitionsConfig,
    WatermarkConfig,
)
from hygge_core.errors import ConfigError
from hygge_core.home import DiscoveryContext, Home, homes_registry
from hygge_core.names import check_entity_name, safe_segment
from hygge_core.project import EntityPlan
from hygge_core.store import Store, stores_registry
from hygge_core.suggest import did_you_mean
from hygge_core.templates import substitute_entity
from hygge_core.validation import Where, collect_problems, validate


@dataclass(frozen=True)
class FlowPlanner:
    """Plans the entities of one flow; ``where`` is the flow's place in the configuration, for errors."""

    project_name: str
    project_root: Path
    connections: Mapping[str, ConnectionConfig]
    flow_name: str
    flow: FlowConfig
    where: Where
    discovered: tuple[str, ...] | None = None
    """What the home's discovery returned, when already known (a step process gets it from the run's parent)."""

    @property
    def home_class(self) -> type[Home]:
        return homes_registry.get(str(self.flow.home["type"]), where=self.where.at("home.type"))

    @property
    def store_class(self) -> type[Store]:
        return stores_registry.get(str(self.flow.store["type"]), where=self.where.at("store.type"))

    def plans(self) -> list[EntityPlan]:
        connection_name, connection = self._connection()
        problems: list[str] = []
        plans: list[EntityPlan] = []
        seen: set[str] = set()
        for entity, listed, source in self._entities(connection, problems):
            if entity.name in seen:
                problems.append(f"{self.where.at('entities')}: entity {entity.name!r} is listed twice")
                continue
            seen.add(entity.name)
            plan = collect_problems(problems, self._plan_entity, entity, listed, source, connection_name, connection)
            if plan is not None:
                plans.append(plan)
        if problems:
            raise ConfigError(list(dict.fromkeys(problems)))
        return plans

    def _entities(self, connection: ConnectionConfig | None, problems: list[str]) -> list[tuple[EntityConfig, bool, str]]:
        """``(entity, listed, source name)``: a flow without ``entities:`` is one entity named after the flow.

        The source name is what the home reads (a table, a folder); it differs from the
        entity's name only for a discovered name that had to be made safe for a folder.
        """
        entities = self.flow.entities
        if entities is None:
            return [(EntityConfig(name=self.flow_name), False, self.flow_name)]
        if isinstance(entities, EntityDiscovery):
            return [(EntityConfig(name=name), True, source) for name, source in self._discover(entities, connection)]
        listed = []
        for index, item in enumerate(entities):
            entity = EntityConfig(name=item) if isinstance(item, str) else item
            collect_problems(problems, check_entity_name, entity.name, where=self.where.at(f"entities[{index}]"))
            listed.append((entity, True, entity.name))
        return listed

    def _plan_entity(
        self, entity: EntityConfig, listed: bool, source: str, connection_name: str | None, connection: ConnectionConfig | None
    ) -> EntityPlan:
        home_model, store_model = self.home_class.config_model, self.store_class.config_model
        problems: list[str] = []
        for part, override, model in (("home", entity.home, home_model), ("store", entity.store, store_model)):
            for key in override:
                if key not in model.model_fields:
                    where = self.where.at(f"entities[{entity.name}].{part}.{key}")
                    problems.append(f"{where}: unknown key {key!r}{did_you_mean(str(key), model.model_fields)}")
        if problems:
            raise ConfigError(problems)
        home_raw = _deep_merge(
            home_model.for_entity(dict(self.flow.home), source, listed=listed), substitute_entity(entity.home, entity.name)
        )
        store_raw = _deep_merge(
            store_model.for_entity(dict(self.flow.store), entity.name, listed=listed),
            substitute_entity(entity.store, entity.name),
        )
        home = collect_problems(problems, validate, home_model, home_raw, file=self.where.file, prefix=self.where.key("home"))
        store = collect_problems(problems, validate, store_model, store_raw, file=self.where.file, prefix=self.where.key("store"))
        if problems or home is None or store is None:
            raise ConfigError(problems)
        run_type = entity.run_type or self.flow.run_type
        watermark = entity.watermark or self.flow.watermark
        return EntityPlan(
            project_name=self.project_name,
            project_root=self.project_root,
            flow=self.flow_name,
            entity=entity.name,
            home=home.resolve_paths(self.project_root),
            store=store.resolve_paths(self.project_root),
            run_type=run_type,
            schema_change=entity.schema_change or self.flow.schema_change,
            watermark=watermark,
            flow_config=self.flow,
            time_partitions=self._time_partitions(entity, run_type, watermark),
            connection_name=connection_name,
            connection=connection,
        )

    def _time_partitions(
        self, entity: EntityConfig, run_type: RunType, watermark: WatermarkConfig | None
    ) -> TimePartitionsConfig | None:
        """The entity's partitioning with its column resolved; only incremental SQL entities can be partitioned."""
        partitions = entity.time_partitions or self.flow.time_partitions
        if partitions is None:
            return None
        where = self.where.at(f"entities[{entity.name}].time_partitions" if entity.time_partitions else "time_partitions")
        problems = []
        if not self.home_class.reads_time_windows:
            problems.append(
                f"{where}: home type {self.home_class.type_name!r} cannot read a time window; "
                "time partitions are for SQL homes (mssql, postgres)"
            )
        if run_type != "incremental":
            problems.append(
                f"{where}: needs run_type: incremental (a partition run replaces its own period and keeps the others); "
                f"this entity is {run_type}"
            )
        column = partitions.column or (watermark.column if watermark else None)
        if column is None:
            problems.append(
                f"{where}: name the date or timestamp column to cut periods on (time_partitions.column or watermark.column)"
            )
        if watermark is not None and watermark.lookback is not None:
            problems.append(
                f"{where}: watermark.lookback does not apply to partition runs (each reads its whole period); remove it"
            )
        if problems:
            raise ConfigError(problems)
        return partitions.model_copy(update={"column": column})

    def discover(self) -> tuple[str, ...]:
        """Every name the home's discovery finds (before include/exclude): a catalog query for SQL homes."""
        if self.discovered is not None:
            return self.discovered
        home_class = self.home_class
        raw = dict(self.flow.home)
        home_config = validate(home_class.config_model, raw, file=self.where.file, prefix=self.where.key("home")).resolve_paths(
            self.project_root
        )
        _, connection = self._connection()
        context = DiscoveryContext(where=self.where.at("entities"), project_root=self.project_root, connection=connection)
        return tuple(home_class.discover(home_config, context))

    def _discover(self, discovery: EntityDiscovery, connection: ConnectionConfig | None) -> list[tuple[str, str]]:
        """``(entity, source name)`` of each discovered name that include/exclude keep, by entity."""
        chosen = [
            name
            for name in self.discover()
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in discovery.include)
            and not any(fnmatch.fnmatchcase(name, pattern) for pattern in discovery.exclude)
        ]
        sources: dict[str, str] = {}
        problems = []
        for name in sorted(chosen):
            entity = safe_segment(name)
            if entity in sources:
                problems.append(
                    f"{self.where.at('entities')}: discovered {sources[entity]!r} and {name!r} would both become entity {entity!r} "
                    "(separators and control characters become '_'); exclude one of them"
                )
            sources.setdefault(entity, name)
        if problems:
            raise ConfigError(problems)
        return sorted(sources.items())

    def _connection(self) -> tuple[str | None, ConnectionConfig | None]:
        name = self.flow.home.get("connection")
        if name is None:
            return None, None
        if name not in self.connections:
            known = ", ".join(sorted(self.connections)) or "none are defined"
            raise ConfigError(
                f"{self.where.at('home.connection')}: {name!r} is not under connections:{did_you_mean(str(name), self.connections)} (known: {known})"
            )
        return name, self.connections[name]


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged

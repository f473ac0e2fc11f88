"""A loaded project and its entity plans: what runs, from where, to where.

Loading (``hygge_core.loading``) reads the YAML; planning (``hygge_core.planning``)
expands flows into the ``EntityPlan``s held here. This module only holds the result
and answers selections (``--flow``, ``--entity``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from hygge_core.config import FlowConfig, ProjectConfig, RunType, TimePartitionsConfig
from hygge_core.context import EntityContext
from hygge_core.errors import ConfigError
from hygge_core.home import Home, HomeConfig, homes_registry
from hygge_core.store import Store, StoreConfig, stores_registry
from hygge_core.suggest import did_you_mean
from hygge_core.time_partitions import latest_key, window_for


@dataclass(frozen=True)
class DefinedAt:
    """Where an entity is written in the project's YAML (its list item, its entity file), for code references."""

    file: Path
    line: int


@dataclass(frozen=True, kw_only=True)
class EntityPlan(EntityContext):
    """Everything needed to run one entity, fully resolved: no templates, no relative paths.

    A plan is its entity's context plus the resolved home and store blocks and the
    flow's settings; homes and stores are handed only the context part.
    """

    project_name: str
    home: HomeConfig
    store: StoreConfig
    run_type: RunType
    flow_config: FlowConfig
    defined_at: DefinedAt | None = None
    time_partitions: TimePartitionsConfig | None = None
    """The entity's partitioning, its ``column`` resolved (from ``watermark.column`` when not given)."""

    def for_partition(self, key: str) -> EntityPlan:
        """This plan narrowed to one partition: its run reads that window and replaces only that partition."""
        if self.time_partitions is None:
            raise ConfigError(f"{self.key}: has no time_partitions, so it cannot load partition {key!r}")
        assert self.time_partitions.column is not None  # resolved by the planner
        return replace(self, time_window=window_for(self.time_partitions, self.time_partitions.column, key, label=self.key))

    def latest_partition(self, now: dt.datetime) -> str:
        """The last complete period's key at ``now``: what a run without a chosen partition loads."""
        assert self.time_partitions is not None
        key = latest_key(self.time_partitions, now=now)
        if key is None:
            raise ConfigError(
                f"{self.key}: no partition has ended yet (time_partitions.start is {self.time_partitions.start}); "
                "name one with --partition"
            )
        return key

    @property
    def context(self) -> EntityContext:
        """The part of the plan a home or store may see."""
        return EntityContext(**{item.name: getattr(self, item.name) for item in fields(EntityContext)})

    @property
    def home_class(self) -> type[Home]:
        return homes_registry.get(self.home.type, where=f"flows.{self.flow}.home")

    @property
    def store_class(self) -> type[Store]:
        return stores_registry.get(self.store.type, where=f"flows.{self.flow}.store")

    def create_home(self) -> Home:
        return self.home_class(self.home, self.context)

    def create_store(self) -> Store:
        return self.store_class(self.store, self.context)


@dataclass
class Project:
    name: str
    root: Path
    config_file: Path
    config: ProjectConfig
    plans: list[EntityPlan] = field(default_factory=list)
    discovered: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Per discovering flow, the names its home found when the project loaded (see ``load_project``)."""

    @property
    def flows(self) -> list[str]:
        return list(self.config.flows)

    def entities(self, flow: str | None = None) -> list[EntityPlan]:
        return [plan for plan in self.plans if flow is None or plan.flow == flow]

    def entity(self, key: str) -> EntityPlan:
        for plan in self.plans:
            if plan.key == key:
                return plan
        raise ConfigError(f"no entity {key!r} in project {self.name!r}{did_you_mean(key, [p.key for p in self.plans])}")

    def select(self, *, flows: Sequence[str] = (), entities: Sequence[str] = ()) -> list[EntityPlan]:
        """Plans matching ``--flow`` and ``--entity`` (``flow/entity`` or ``flow.entity``); unknown names are errors."""
        problems = []
        for flow in flows:
            if flow not in self.config.flows:
                problems.append(f"no flow {flow!r}{did_you_mean(flow, self.flows)}; flows: {', '.join(self.flows)}")
        wanted_keys = {_normalise_entity_key(name, self.flows) for name in entities}
        keys = {plan.key for plan in self.plans}
        for key in sorted(wanted_keys - keys):
            problems.append(f"no entity {key!r}{did_you_mean(key, sorted(keys))}")
        if problems:
            raise ConfigError(problems)
        chosen = []
        for plan in self.plans:
            in_flow = not flows or plan.flow in flows
            in_entities = not entities or plan.key in wanted_keys
            if flows and entities:
                if plan.flow in flows or plan.key in wanted_keys:
                    chosen.append(plan)
            elif in_flow and in_entities:
                chosen.append(plan)
        return chosen

    def only(self, plans: Sequence[EntityPlan]) -> Project:
        """The same project holding only ``plans`` (what a run or a code location was given)."""
        return Project(
            name=self.name,
            root=self.root,
            config_file=self.config_file,
            config=self.config,
            plans=list(plans),
            discovered=dict(self.discovered),
        )


def _normalise_entity_key(name: str, flows: Sequence[str]) -> str:
    if "/" in name:
        return name
    for flow in sorted(flows, key=len, reverse=True):
        if name.startswith(flow + "."):
            return f"{flow}/{name[len(flow) + 1 :]}"
    return name

"""How entities map to Dagster steps: one step per entity, or one step that carries a whole flow.

A step is a process under the multiprocess executor: about a core-second and
150-250 MB to start, plus Dagster's events. For a table that takes minutes that is
nothing; for a hundred tables of a thousand rows it is the whole run. So a flow's
entities may share one step (``step: flow``), which loads them on threads, while a
few large tables keep a step each (``step: entity``) for process isolation and
per-entity retries in the UI. ``auto`` (the default) picks by entity count.

Either way every entity stays its own asset: its own key, materialisation,
check results and history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from hygge_core.project import EntityPlan, Project
from hygge_dagster import constants as c
from hygge_dagster.partitions import partitions_def

AUTO_SHARED_MIN_ENTITIES = 5
"""``step: auto`` shares one step among a flow's entities from this many on (fewer keep a step each)."""

StepKind = Literal["entity", "flow"]


@dataclass(frozen=True)
class StepGroup:
    """Entities that run in one Dagster step; ``kind == "entity"`` groups hold exactly one."""

    kind: StepKind
    plans: tuple[EntityPlan, ...]

    @property
    def flow(self) -> str:
        return self.plans[0].flow

    def op_name(self) -> str:
        """The shared step's op name; an entity step's op is named after its asset key instead."""
        return c.SHARED_STEP_PREFIX + c.sanitize(self.flow)


def flow_step_kind(project: Project, flow: str, entity_count: int) -> StepKind:
    """What the flow's ``dagster: {step:}`` (else the project's) asks for, with ``auto`` decided by count."""
    mode = project.config.flows[flow].dagster.step or project.config.dagster.step
    if mode == "auto":
        return "flow" if entity_count >= AUTO_SHARED_MIN_ENTITIES else "entity"
    return mode


def step_groups(project: Project, plans: Sequence[EntityPlan] | None = None) -> list[StepGroup]:
    """The steps for ``plans`` (default: all of the project's), in plan order of each group's first entity."""
    by_flow: dict[str, list[EntityPlan]] = {}
    for plan in project.plans if plans is None else plans:
        by_flow.setdefault(plan.flow, []).append(plan)
    groups: list[StepGroup] = []
    for flow, members in by_flow.items():
        if flow_step_kind(project, flow, len(members)) == "flow":
            # One step has one partitioning, the flow's: an entity that overrides its time_partitions gets a step of its own.
            flow_partitions = partitions_def(project.config.flows[flow].time_partitions)
            shared = tuple(plan for plan in members if partitions_def(plan.time_partitions) == flow_partitions)
            if shared:
                groups.append(StepGroup("flow", shared))
            groups.extend(StepGroup("entity", (plan,)) for plan in members if plan not in shared)
        else:
            groups.extend(StepGroup("entity", (plan,)) for plan in members)
    return groups


def shared_step_threads(concurrency: int, *, steps_in_run: int, sequential: bool) -> int:
    """Entities a shared step loads at once, so the whole run never loads more than ``concurrency``.

    The executor runs at most ``concurrency`` steps at a time; when fewer steps than
    that make up the run, each shared step gets an equal share of the rest. Under the
    in-process executor steps run one after another, so a step may use all of it.
    """
    if sequential:
        return concurrency
    return max(1, concurrency // max(1, min(concurrency, steps_in_run)))

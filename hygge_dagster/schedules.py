"""A flow's ``schedule:`` becomes one schedule targeting the flow's assets (no job per flow).

Generating a job per flow is what makes big code locations slow to load
(dagster#16129, #22523); a schedule can target an asset selection directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from dagster import (
    AssetKey,
    AssetSelection,
    AssetSpec,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from hygge_core.config import ScheduleConfig, TimePartitionsConfig
from hygge_core.project import EntityPlan, Project
from hygge_core.time_partitions import latest_key
from hygge_dagster.constants import sanitize
from hygge_dagster.partitions import partitions_def


def build_schedules(project: Project, specs_by_flow: Mapping[str, Sequence[AssetSpec]]) -> list[ScheduleDefinition]:
    schedules = []
    for flow, config in project.config.flows.items():
        if config.schedule is None or not specs_by_flow.get(flow):
            continue
        if config.time_partitions is not None:
            schedules.extend(partitioned_schedules(flow, config.schedule, project.entities(flow), specs_by_flow[flow]))
            continue
        schedules.append(
            ScheduleDefinition(
                name=f"{sanitize(flow)}_schedule",
                cron_schedule=config.schedule.cron,
                execution_timezone=config.schedule.timezone,
                target=flow_selection(flow, specs_by_flow),
                description=f"Runs every entity of flow {flow!r} on {config.schedule.cron} ({config.schedule.timezone}).",
            )
        )
    return schedules


def flow_selection(flow: str, specs_by_flow: Mapping[str, Sequence[AssetSpec]]) -> AssetSelection:
    """The flow's group when the group holds exactly the flow's assets, else the flow's asset keys.

    A group selection keeps the snapshot small for big flows; the key list keeps a
    custom translator that regroups assets from changing what the schedule runs.
    """
    specs = specs_by_flow[flow]
    group = specs[0].group_name
    own_group = group is not None and all(spec.group_name == group for spec in specs)
    shared = any(spec.group_name == group for other, others in specs_by_flow.items() if other != flow for spec in others)
    if own_group and not shared:
        return AssetSelection.groups(group)
    return AssetSelection.assets(*[spec.key for spec in specs])


def partitioned_schedules(
    flow: str, schedule_config: ScheduleConfig, plans: Sequence[EntityPlan], specs: Sequence[AssetSpec]
) -> list[ScheduleDefinition]:
    """Schedules of a partitioned flow: each tick loads the latest complete partition (a run has one partition key).

    One schedule per partitioning: ``<flow>_schedule`` for the flow's own, ``<flow>_schedule_<n>`` for
    entities that override it (a run's assets must share one partitions definition).
    """
    groups: dict[object, list[tuple[EntityPlan, AssetSpec]]] = {}
    for plan, spec in zip(plans, specs, strict=True):
        groups.setdefault(partitions_def(plan.time_partitions), []).append((plan, spec))
    built = []
    for number, members in enumerate(groups.values(), start=1):
        name = f"{sanitize(flow)}_schedule" + ("" if number == 1 else f"_{number}")
        partitions = members[0][0].time_partitions
        assert partitions is not None
        built.append(_latest_partition_schedule(name, schedule_config, partitions, [spec.key for _, spec in members], flow))
    return built


def _latest_partition_schedule(
    name: str, schedule_config: ScheduleConfig, partitions: TimePartitionsConfig, keys: Sequence[AssetKey], flow: str
) -> ScheduleDefinition:
    @schedule(
        name=name,
        cron_schedule=schedule_config.cron,
        execution_timezone=schedule_config.timezone,
        target=AssetSelection.assets(*keys),
        description=f"Loads the latest complete {partitions.period} partition of flow {flow!r}'s entities on "
        f"{schedule_config.cron} ({schedule_config.timezone}).",
    )
    def _tick(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        now = context.scheduled_execution_time or datetime.now(UTC)
        key = latest_key(partitions, now=now)
        if key is None:
            return SkipReason(f"no {partitions.period} partition has ended yet (time_partitions.start is {partitions.start})")
        return RunRequest(partition_key=key)

    return _tick

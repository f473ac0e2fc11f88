"""A flow's ``schedule:`` becomes one schedule targeting the flow's assets (no job per flow).

Generating a job per flow is what makes big code locations slow to load
(dagster#16129, #22523); a schedule can target an asset selection directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dagster import AssetSelection, AssetSpec, ScheduleDefinition

from hygge_core.project import Project
from hygge_dagster.constants import sanitize


def build_schedules(project: Project, specs_by_flow: Mapping[str, Sequence[AssetSpec]]) -> list[ScheduleDefinition]:
    schedules = []
    for flow, config in project.config.flows.items():
        if config.schedule is None or not specs_by_flow.get(flow):
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

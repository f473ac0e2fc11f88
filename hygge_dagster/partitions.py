"""An entity's ``time_partitions:`` as Dagster's time-window partitions, and a step's plan for the partition it runs.

The engine owns the period arithmetic (``hygge_core.time_partitions``); the
definition here is built from the same cron, key format, start and timezone, so a
key Dagster hands a step is a key the engine accepts, and both mean one window.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from dagster import AssetExecutionContext, Failure, TimeWindowPartitionsDefinition

from hygge_core.config import TimePartitionsConfig
from hygge_core.errors import ConfigError
from hygge_core.project import EntityPlan, Project
from hygge_core.time_partitions import CRON, KEY_FORMATS


def partitions_def(partitions: TimePartitionsConfig | None) -> TimeWindowPartitionsDefinition | None:
    """Dagster's partitions for an entity's ``time_partitions`` (``None``: unpartitioned); equal configs, equal definitions."""
    if partitions is None:
        return None
    return TimeWindowPartitionsDefinition(
        start=partitions.start_at().strftime(KEY_FORMATS[partitions.period]),
        fmt=KEY_FORMATS[partitions.period],
        cron_schedule=CRON[partitions.period],
        timezone=partitions.timezone,
    )


def run_job_plans(plans: Sequence[EntityPlan]) -> list[EntityPlan]:
    """The entities the run job (``hygge start``'s) holds: every unpartitioned one and those of the first partitioning.

    A Dagster job has one partitions definition; entities with another partitioning load
    from Dagster's own asset jobs (the UI, backfills, schedules), not from ``hygge start``.
    """
    first = next((partitions_def(plan.time_partitions) for plan in plans if plan.time_partitions is not None), None)
    return [plan for plan in plans if plan.time_partitions is None or partitions_def(plan.time_partitions) == first]


def run_partition(
    project: Project, plans: Sequence[EntityPlan], requested: str | None, *, now: dt.datetime | None = None
) -> str | None:
    """The partition ``hygge start`` loads: ``requested`` (``--partition``), else the latest complete one; ``None`` unpartitioned.

    One run has one partition key, so a partitioned selection must share one partitioning and
    ``--partition`` needs every selected entity partitioned (an unpartitioned one would load whole).
    """
    partitioned = [plan for plan in plans if plan.time_partitions is not None]
    if not partitioned:
        if requested is not None:
            raise ConfigError(f"--partition {requested}: none of the selected entities has time_partitions")
        return None
    in_run_job = {plan.key for plan in run_job_plans(project.plans)}
    outside = [plan.key for plan in plans if plan.key not in in_run_job]
    if outside:
        raise ConfigError(
            f"{', '.join(outside)}: partitioned unlike the project's first partitioned entity; hygge start runs one "
            "partitioning at a time: load these from Dagster (materialise a partition or launch a backfill)"
        )
    if requested is not None:
        whole = [plan.key for plan in plans if plan.time_partitions is None]
        if whole:
            raise ConfigError(
                f"--partition {requested}: {', '.join(whole)} have no time_partitions; select partitioned entities only"
            )
        for plan in plans:
            plan.for_partition(requested)  # a malformed or too early key fails here, naming the entity
        return requested
    return partitioned[0].latest_partition(now or dt.datetime.now(dt.UTC))


def for_run(context: AssetExecutionContext, plan: EntityPlan) -> EntityPlan:
    """The plan narrowed to the run's partition; a partitioned entity run without one fails, naming what to choose."""
    if plan.time_partitions is None:
        return plan
    if not context.has_partition_key:
        raise Failure(
            description=f"{plan.key}: is partitioned ({plan.time_partitions.period}); materialise one partition or launch a backfill",
            allow_retries=False,
        )
    try:
        return plan.for_partition(context.partition_key)
    except ConfigError as error:  # a key Dagster accepted but hygge does not: the definitions are out of date
        raise Failure(description=str(error), allow_retries=False) from error

"""Run a selection of entities as one Dagster run and report each entity's outcome.

This is how ``hygge start`` runs a project through Dagster: the run is recorded on
the given instance (so it shows in the UI), steps run under the project's executor,
and every figure in the report is read back from the run's event log
(materialisation metadata, check evaluations, step failures), never from logs.

Step processes rebuild the job with ``reconstruct_job`` from the project file, so
the run does not depend on environment variables or on the caller's working
directory; modules that registered custom home or store types are imported first.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    JobDefinition,
    RunsFilter,
    build_reconstructable_job,
)

# Dagster has no public way to run a job with a remote origin (execute_job leaves it empty); these are the
# pieces execute_job itself uses, on the pinned Dagster version.
from dagster._core.execution.api import execute_run
from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.storage.tags import PARTITION_NAME_TAG

from hygge_core.config import RUN_TYPES, RunType
from hygge_core.errors import ConfigError
from hygge_core.home import homes_registry
from hygge_core.loading import load_project
from hygge_core.project import EntityPlan, Project
from hygge_core.sql.pool import close_all as close_all_pools
from hygge_core.store import stores_registry
from hygge_dagster import constants as c
from hygge_dagster.code_location import project_definitions
from hygge_dagster.executor import build_executor
from hygge_dagster.outcomes import EntitiesRunReport, EntityStep, RunEventReader
from hygge_dagster.pools import apply_pool_limits
from hygge_dagster.steps import step_groups

SINGLETON_REPOSITORY_NAME = "__repository__"  # the repository name Dagster gives a code location's Definitions


def materialize_entities(
    project: Project,
    plans: Sequence[EntityPlan],
    *,
    instance: DagsterInstance,
    run_type: RunType | None = None,
    partition: str | None = None,
    max_concurrent: int | None = None,
    tags: Mapping[str, str] | None = None,
    run_config: Mapping[str, Any] | None = None,
) -> EntitiesRunReport:
    """Materialise ``plans`` in ONE Dagster run on ``instance`` and report per entity.

    Uses the project's executor (multiprocess, forkserver by default) with
    ``max_concurrent`` parallel steps (default ``concurrency:`` from hygge.yml); with
    ``max_concurrent == 1`` the run executes in process. ``run_type`` sets the
    ``hygge/run_type`` run tag; ``partition`` the time partition of partitioned entities (see
    ``partitions.run_partition``); ``run_config`` is passed to Dagster (e.g. the console log level). Each SQL connection's ``pool_size`` is set on the
    instance as its pool limit first. Failed entities are reported, not raised.
    """
    if run_type is not None and run_type not in RUN_TYPES:
        raise ConfigError(f"run type {run_type!r} is not one of: {', '.join(RUN_TYPES)}")
    if not plans:
        raise ConfigError("no entities selected to run")
    args, job_def = run_job(project, plans, max_concurrent)
    _, kind, *_ = args
    steps = entity_steps(job_def, plans)
    apply_pool_limits(instance, project)
    run_tags = dict(tags or {})
    if run_type is not None:
        run_tags[c.RUN_TYPE_TAG] = run_type
    if partition is not None:
        run_tags[PARTITION_NAME_TAG] = partition  # the time partition the run's partitioned entities load
    if kind != "in_process":
        close_all_pools()  # discovery's connections: step processes open their own, and pool_size counts them all
    started = time.perf_counter()
    selection = frozenset(step.asset_key for step in steps)
    job = build_reconstructable_job(__name__, reconstruct_job.__name__, reconstructable_args=args).get_subset(
        asset_selection=selection
    )
    run = instance.create_run_for_job(
        job_def=job.get_definition(),
        run_config=dict(run_config or {}),
        tags=run_tags,
        asset_selection=selection,
        job_code_origin=job.get_python_origin(),
        remote_job_origin=code_location_job_origin(project),
    )
    with execute_run(job, run, instance, raise_on_error=False) as result:
        run_id, success = result.run_id, result.success
    return read_report(instance, run_id, success, time.perf_counter() - started, steps)


_JOBS: dict[tuple[object, ...], JobDefinition] = {}
"""Jobs this process already built, by ``reconstruct_job`` arguments: one project load per process."""

DiscoveredNames = tuple[tuple[str, tuple[str, ...]], ...]


def run_job(
    project: Project, plans: Sequence[EntityPlan], max_concurrent: int | None
) -> tuple[tuple[str, str | None, int, tuple[str, ...], DiscoveredNames], JobDefinition]:
    """The job that runs ``plans`` and the ``reconstruct_job`` arguments that rebuild it in step processes.

    Built from the loaded project once per process: the CLI (for its live view) and
    ``materialize_entities`` share it, and Dagster's own reconstruction in this process finds it cached.
    """
    concurrency = max_concurrent or project.config.concurrency
    kind = executor_kind(project, plans, concurrency)
    modules = type_modules(plans)
    args = (str(project.config_file), kind, concurrency, modules, discovered_names(project))
    if args not in _JOBS:
        _JOBS[args] = project_job(project, kind, concurrency, modules)
    return args, _JOBS[args]


def executor_kind(project: Project, plans: Sequence[EntityPlan], concurrency: int) -> str | None:
    """``in_process`` when more processes cannot help this run, else ``None`` (the project's executor).

    One entity at a time, or a run that is one step (a shared step carrying every selected
    entity, or a single entity): a step process and the forkserver that starts it would
    add seconds and hundreds of MB and run nothing in parallel. A project that sets
    ``dagster: {executor: ...}`` explicitly gets that executor whenever ``concurrency`` > 1.

    The project's default executor would run a one-step run in process too
    (``hygge_dagster.executor``), but ``materialize_entities`` must know it before the run:
    only steps in this process reuse the pooled connection discovery opened; for step
    processes it closes the pools (tests/tds/test_scale.py counts the logins).
    """
    if concurrency == 1:
        return "in_process"
    if "executor" not in project.config.dagster.model_fields_set and len(step_groups(project, plans)) == 1:
        return "in_process"
    return None


def reconstruct_job(
    config_file: str, kind: str | None, max_concurrent: int, modules: tuple[str, ...], discovered: DiscoveredNames = ()
) -> JobDefinition:
    """Build the project's asset job; step processes call this with the same arguments.

    ``discovered`` carries the names the parent's discovery found, so a step process
    plans the same entities without querying the catalog again.
    """
    args = (config_file, kind, max_concurrent, modules, discovered)
    if args not in _JOBS:
        for module in modules:
            importlib.import_module(module)
        project = load_project(config_file, discovered=dict(discovered))
        _JOBS[args] = project_job(project, kind, max_concurrent, modules)
    return _JOBS[args]


def discovered_names(project: Project) -> DiscoveredNames:
    """``Project.discovered`` in a form Dagster can pass to step processes (plain, hashable tuples)."""
    return tuple((flow, tuple(names)) for flow, names in sorted(project.discovered.items()))


def project_job(project: Project, kind: str | None, max_concurrent: int, modules: tuple[str, ...]) -> JobDefinition:
    """The asset job over every entity of ``project``, with the executor for this run."""
    executor = build_executor(project.config.dagster, max_concurrent=max_concurrent, kind=kind, extra_preload=modules)
    defs = project_definitions(project, executor=executor, schedules=False, sensors=False, concurrency=max_concurrent)
    return defs.resolve_job_def(c.RUN_JOB_NAME)


def code_location_job_origin(project: Project) -> RemoteJobOrigin:
    """Where the UI finds this run's job: the run job of the code location named after the project.

    ``hygge dev`` names its code location after the project, and the code location holds the
    same ``hygge_entities`` job, so the UI shows these runs under it and can re-execute them
    (a run without a remote origin cannot be re-executed: "Pipeline not found").
    """
    repository = RemoteRepositoryOrigin(RegisteredCodeLocationOrigin(project.name), SINGLETON_REPOSITORY_NAME)
    return RemoteJobOrigin(repository, c.RUN_JOB_NAME)


def type_modules(plans: Sequence[EntityPlan]) -> tuple[str, ...]:
    """Modules outside hygge_core that registered the home/store types these plans use."""
    modules = set()
    for plan in plans:
        for cls in (homes_registry.get(plan.home.type, where=plan.key), stores_registry.get(plan.store.type, where=plan.key)):
            if not cls.__module__.startswith("hygge_core") and cls.__module__ != "__main__":
                modules.add(cls.__module__)
    return tuple(sorted(modules))


def entity_steps(job_def: JobDefinition, plans: Sequence[EntityPlan]) -> list[EntityStep]:
    """Where each selected plan's events come from (its asset key and step), in plan order."""
    by_entity: dict[str, EntityStep] = {}
    layer = job_def.asset_layer
    for key in layer.executable_asset_keys:
        node = layer.get(key)
        flow, entity = node.metadata.get(c.META_FLOW), node.metadata.get(c.META_ENTITY)
        if isinstance(flow, str) and isinstance(entity, str):
            name = f"{flow}/{entity}"
            by_entity[name] = EntityStep(name, key, layer.get_op_output_handle(key).node_handle.name)
    missing = [plan.key for plan in plans if plan.key not in by_entity]
    if missing:
        raise ConfigError(f"entities not in the project's Dagster definitions: {', '.join(missing)}")
    return [by_entity[plan.key] for plan in plans]


def read_report(
    instance: DagsterInstance, run_id: str, success: bool, seconds: float, steps: Sequence[EntityStep]
) -> EntitiesRunReport:
    """Each entity's outcome from the run's events."""
    reader = RunEventReader(steps)
    for entry in instance.all_logs(run_id):
        reader.read(entry)
    return EntitiesRunReport(run_id=run_id, success=success, seconds=seconds, entities=reader.outcomes())


def request_cancel(instance: DagsterInstance, tag: tuple[str, str], message: str) -> None:
    """Mark the running run tagged ``tag`` as canceling, so Dagster ends it CANCELED, not FAILURE.

    For a stop the user asked for (a signal to ``hygge start``): the executor, which got the
    same signal, interrupts the steps; Dagster reads this status when it decides how the run ended.
    """
    running = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED]
    for run in instance.get_runs(filters=RunsFilter(tags={tag[0]: tag[1]}, statuses=running)):
        instance.report_run_canceling(run, message=message)


def end_canceled_runs(instance: DagsterInstance, tag: tuple[str, str], message: str) -> None:
    """Mark the run tagged ``tag`` CANCELED if a stop left it unfinished (a signal before Dagster took over).

    Dagster ends an interrupted run itself; this is the safety net, so no run stays
    STARTED in the UI for a process that is gone.
    """
    unfinished = [DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
    for run in instance.get_runs(filters=RunsFilter(tags={tag[0]: tag[1]}, statuses=unfinished)):
        instance.report_run_canceled(run, message=message)

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
from dataclasses import dataclass, field
from typing import Any

from dagster import (
    AssetKey,
    AssetSelection,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    JobDefinition,
    build_reconstructable_job,
    define_asset_job,
    execute_job,
)

from hygge_core.errors import ConfigError
from hygge_core.home import homes_registry
from hygge_core.project import EntityPlan, Project, load_project
from hygge_core.store import stores_registry
from hygge_dagster import constants as c
from hygge_dagster.code_location import project_definitions
from hygge_dagster.executor import build_executor
from hygge_dagster.pools import apply_pool_limits

RUN_JOB_NAME = "hygge_entities"


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    passed: bool
    severity: str  # "ERROR" | "WARN"
    description: str | None = None


@dataclass(frozen=True)
class EntityOutcome:
    """One entity's result in a run, as recorded in the instance's event log."""

    flow: str
    entity: str
    asset_key: str
    status: str  # "success" | "skipped" (nothing new) | "failed" | "not_run"
    rows: int = 0
    rows_per_second: float = 0.0
    seconds: float = 0.0
    bytes: int = 0
    files: int = 0
    run_type: str | None = None
    destination: str | None = None
    attempts: int = 0
    checks: tuple[CheckOutcome, ...] = ()
    error: str | None = None

    @property
    def key(self) -> str:
        return f"{self.flow}/{self.entity}"

    @property
    def ok(self) -> bool:
        return self.status in ("success", "skipped")


@dataclass(frozen=True)
class EntitiesRunReport:
    run_id: str
    success: bool
    seconds: float
    entities: list[EntityOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[EntityOutcome]:
        return [outcome for outcome in self.entities if not outcome.ok]

    @property
    def rows(self) -> int:
        return sum(outcome.rows for outcome in self.entities)


def materialize_entities(
    project: Project,
    plans: Sequence[EntityPlan],
    *,
    instance: DagsterInstance,
    run_type: str | None = None,
    max_concurrent: int | None = None,
    tags: Mapping[str, str] | None = None,
    run_config: Mapping[str, Any] | None = None,
) -> EntitiesRunReport:
    """Materialise ``plans`` in ONE Dagster run on ``instance`` and report per entity.

    Uses the project's executor (multiprocess, forkserver by default) with
    ``max_concurrent`` parallel steps (default ``concurrency:`` from hygge.yml); with
    ``max_concurrent == 1`` the run executes in process. ``run_type`` sets the
    ``hygge/run_type`` run tag; ``run_config`` is passed to Dagster (e.g. the console log level). Each SQL connection's ``pool_size`` is set on the
    instance as its pool limit first. Failed entities are reported, not raised.
    """
    if run_type is not None and run_type not in c.RUN_TYPES:
        raise ConfigError(f"run type {run_type!r} is not one of: {', '.join(c.RUN_TYPES)}")
    if not plans:
        raise ConfigError("no entities selected to run")
    concurrency = max_concurrent or project.config.concurrency
    kind = "in_process" if concurrency == 1 else None
    modules = type_modules(plans)
    args = (str(project.config_file), kind, concurrency, modules)
    job_def = reconstruct_job(*args)
    steps = entity_steps(job_def, plans)
    apply_pool_limits(instance, project)
    run_tags = dict(tags or {})
    if run_type is not None:
        run_tags[c.RUN_TYPE_TAG] = run_type
    started = time.perf_counter()
    job = build_reconstructable_job(__name__, reconstruct_job.__name__, reconstructable_args=args)
    with execute_job(
        job, instance=instance, tags=run_tags, run_config=dict(run_config or {}), asset_selection=[key for key, _ in steps.values()], raise_on_error=False
    ) as result:
        run_id, success = result.run_id, result.success
    return read_report(instance, run_id, success, time.perf_counter() - started, plans, steps)


def reconstruct_job(config_file: str, kind: str | None, max_concurrent: int, modules: tuple[str, ...]) -> JobDefinition:
    """Build the project's asset job; step processes call this with the same arguments."""
    for module in modules:
        importlib.import_module(module)
    project = load_project(config_file)
    executor = build_executor(project.config.dagster, max_concurrent=max_concurrent, kind=kind, extra_preload=modules)
    defs = project_definitions(project, executor=executor, schedules=False, sensors=False)
    # A named job over every asset: the implicit job's reserved name cannot be reconstructed by pointer.
    job = define_asset_job(RUN_JOB_NAME, selection=AssetSelection.all(), executor_def=executor)
    return Definitions.merge(defs, Definitions(jobs=[job])).resolve_job_def(RUN_JOB_NAME)


def type_modules(plans: Sequence[EntityPlan]) -> tuple[str, ...]:
    """Modules outside hygge_core that registered the home/store types these plans use."""
    modules = set()
    for plan in plans:
        for cls in (homes_registry.get(plan.home.type, where=plan.key), stores_registry.get(plan.store.type, where=plan.key)):
            if not cls.__module__.startswith("hygge_core") and cls.__module__ != "__main__":
                modules.add(cls.__module__)
    return tuple(sorted(modules))


def entity_steps(job_def: JobDefinition, plans: Sequence[EntityPlan]) -> dict[str, tuple[AssetKey, str]]:
    """``{"flow/entity": (asset key, step key)}`` for the selected plans."""
    by_entity: dict[str, tuple[AssetKey, str]] = {}
    layer = job_def.asset_layer
    for key in layer.executable_asset_keys:
        node = layer.get(key)
        flow, entity = node.metadata.get(c.META_FLOW), node.metadata.get(c.META_ENTITY)
        if isinstance(flow, str) and isinstance(entity, str):
            by_entity[f"{flow}/{entity}"] = (key, layer.get_op_output_handle(key).node_handle.name)
    missing = [plan.key for plan in plans if plan.key not in by_entity]
    if missing:
        raise ConfigError(f"entities not in the project's Dagster definitions: {', '.join(missing)}")
    return {plan.key: by_entity[plan.key] for plan in plans}


def read_report(
    instance: DagsterInstance,
    run_id: str,
    success: bool,
    seconds: float,
    plans: Sequence[EntityPlan],
    steps: Mapping[str, tuple[AssetKey, str]],
) -> EntitiesRunReport:
    """Each entity's outcome from the run's events."""
    materialized: dict[AssetKey, Mapping[str, Any]] = {}
    observed: dict[AssetKey, Mapping[str, Any]] = {}
    checks: dict[AssetKey, list[CheckOutcome]] = {}
    failures: dict[str, str] = {}
    attempts: dict[str, int] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None:
            continue
        data = event.event_specific_data
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            materialized[event.asset_key] = data.materialization.metadata
        elif event.event_type == DagsterEventType.ASSET_OBSERVATION:
            observed[event.asset_key] = data.asset_observation.metadata
        elif event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            checks.setdefault(data.asset_key, []).append(CheckOutcome(data.check_name, data.passed, data.severity.value, data.description))
        elif event.event_type in (DagsterEventType.STEP_START, DagsterEventType.STEP_RESTARTED):
            attempts[event.step_key] = attempts.get(event.step_key, 0) + 1
        elif event.event_type == DagsterEventType.STEP_FAILURE:
            failures[event.step_key] = _failure_message(data)
    outcomes = []
    for plan in plans:
        key, step = steps[plan.key]
        metadata = materialized.get(key) or observed.get(key) or {}
        if step in failures:
            status = "failed"
        elif key in materialized:
            status = "success"
        elif key in observed:
            status = "skipped"
        else:
            status = "not_run"
        outcomes.append(
            EntityOutcome(
                flow=plan.flow,
                entity=plan.entity,
                asset_key=key.to_user_string(),
                status=status,
                rows=int(_value(metadata, c.META_ROW_COUNT, 0)),
                rows_per_second=float(_value(metadata, c.META_ROWS_PER_SECOND, 0.0)),
                seconds=float(_value(metadata, c.META_DURATION, 0.0)),
                bytes=int(_value(metadata, c.META_BYTES, 0)),
                files=int(_value(metadata, c.META_FILES, 0)),
                run_type=_value(metadata, c.META_RUN_TYPE, None),
                destination=_value(metadata, c.META_DESTINATION, None),
                attempts=attempts.get(step, 0),
                checks=tuple(checks.get(key, [])),
                error=failures.get(step),
            )
        )
    return EntitiesRunReport(run_id=run_id, success=success, seconds=seconds, entities=outcomes)


def _value(metadata: Mapping[str, Any], key: str, default: Any) -> Any:
    item = metadata.get(key)
    return default if item is None else item.value


def _failure_message(data: Any) -> str:
    """The engine's message: a ``Failure``'s description, else the innermost error's message."""
    if data.user_failure_data is not None and data.user_failure_data.description:
        return data.user_failure_data.description
    error = data.error
    if error is None:
        return "step failed"
    while error.cause is not None:
        error = error.cause
    return error.message.strip()

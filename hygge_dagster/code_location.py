"""Definitions for a whole hygge project: assets, schedules, sensors, the configured executor and the run job.

The run job (``hygge_entities``, every entity asset) is the job ``hygge start`` runs;
it is part of the code location so the UI can show and re-execute those runs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from dagster import AssetSelection, AssetSpec, Definitions, ExecutorDefinition, define_asset_job

from hygge_core.loading import load_project
from hygge_core.project import Project
from hygge_dagster import constants as c
from hygge_dagster.assets import build_entity_assets, build_source_assets
from hygge_dagster.executor import build_executor
from hygge_dagster.partitions import run_job_plans
from hygge_dagster.schedules import build_schedules
from hygge_dagster.sensors import build_sensors
from hygge_dagster.translator import DagsterHyggeTranslator

PROJECT_ENV_VAR = "HYGGE_PROJECT"
SAMPLE_PROJECT = Path(__file__).resolve().parent.parent / "samples" / "parquet_to_parquet.yaml"


def default_project_path() -> Path:
    """``$HYGGE_PROJECT`` when set, else the bundled sample, so entry points work with no setup."""
    value = os.environ.get(PROJECT_ENV_VAR)
    return Path(value) if value else SAMPLE_PROJECT


def build_definitions(project_path: str | Path | None = None, *, translator: DagsterHyggeTranslator | None = None) -> Definitions:
    """Load a hygge project and build its Dagster definitions (see ``project_definitions``)."""
    return project_definitions(
        load_project(project_path if project_path is not None else default_project_path()), translator=translator
    )


def project_definitions(
    project: Project,
    *,
    translator: DagsterHyggeTranslator | None = None,
    executor: ExecutorDefinition | None = None,
    flows: Sequence[str] = (),
    schedules: bool = True,
    sensors: bool = True,
    concurrency: int | None = None,
) -> Definitions:
    """Assets for every entity (of ``flows`` when given), plus schedules, sensors and the executor."""
    if flows:
        project = project.only(project.select(flows=flows))
    entity_assets = build_entity_assets(project, translator, concurrency=concurrency)
    specs_by_key = entity_assets.specs
    specs_by_flow: dict[str, list[AssetSpec]] = {}
    for plan in project.plans:
        specs_by_flow.setdefault(plan.flow, []).append(specs_by_key[plan.key])
    executor = executor or build_executor(project.config.dagster, max_concurrent=concurrency or project.config.concurrency)
    run_job = define_asset_job(
        c.RUN_JOB_NAME,
        selection=AssetSelection.assets(*(specs_by_key[plan.key].key for plan in run_job_plans(project.plans))),
        description=f"Every entity of hygge project {project.name!r}: the job `hygge start` runs (select entities to run some).",
        executor_def=executor,
    )
    return Definitions(
        assets=[*entity_assets.assets, *build_source_assets(project)],
        schedules=build_schedules(project, specs_by_flow) if schedules else [],
        sensors=build_sensors(project, specs_by_key) if sensors else [],
        jobs=[run_job],
        executor=executor,
    )

"""A sensor per Parquet-home flow: run the entities whose source files changed.

The cursor maps each entity to a digest of its files' (path, size, mtime) stamps,
so it stays small however many files a folder holds. A missing source folder
counts as "no files" (not an error): the entity is requested once files appear.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

from dagster import AssetSelection, AssetSpec, RunRequest, SensorDefinition, SensorEvaluationContext, SensorResult, sensor

from hygge_core.errors import HomeError
from hygge_core.homes.parquet import ParquetHomeConfig, list_files
from hygge_core.project import EntityPlan, Project
from hygge_dagster.constants import sanitize

MINIMUM_INTERVAL_SECONDS = 30


def build_sensors(project: Project, specs_by_key: Mapping[str, AssetSpec]) -> list[SensorDefinition]:
    sensors = []
    for flow in project.flows:
        watched = [(plan, specs_by_key[plan.key]) for plan in project.entities(flow) if isinstance(plan.home, ParquetHomeConfig)]
        if watched:
            sensors.append(files_sensor(flow, watched))
    return sensors


def files_sensor(flow: str, watched: Sequence[tuple[EntityPlan, AssetSpec]]) -> SensorDefinition:
    @sensor(
        name=f"{sanitize(flow)}_files_sensor",
        minimum_interval_seconds=MINIMUM_INTERVAL_SECONDS,
        target=AssetSelection.assets(*[spec.key for _, spec in watched]),
        description=f"Runs the entities of flow {flow!r} whose source Parquet files changed.",
    )
    def _sensor(context: SensorEvaluationContext) -> SensorResult:
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        now = {plan.entity: files_digest(plan) for plan, _ in watched}
        changed = [(plan, spec) for plan, spec in watched if now[plan.entity] and now[plan.entity] != seen.get(plan.entity)]
        requests = []
        if changed:
            # The run key names this exact set of file versions, so a re-evaluation never requests it twice.
            stamp = json.dumps(sorted((plan.entity, now[plan.entity]) for plan, _ in changed))
            requests.append(RunRequest(run_key=hashlib.sha256(stamp.encode()).hexdigest(), asset_selection=[spec.key for _, spec in changed]))
        return SensorResult(run_requests=requests, cursor=json.dumps(now, sort_keys=True))

    return _sensor


def files_digest(plan: EntityPlan) -> str:
    """A digest of the entity's source files, or ``""`` when it has none yet."""
    assert isinstance(plan.home, ParquetHomeConfig)
    try:
        files = list_files(plan.home.path)
    except HomeError:
        return ""
    stamps = []
    for path in files:
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        stamps.append((str(path), stat.st_size, stat.st_mtime_ns))
    return hashlib.sha256(json.dumps(stamps).encode()).hexdigest() if stamps else ""

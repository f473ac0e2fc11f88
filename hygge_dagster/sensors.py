"""A sensor per flow whose home is ``watchable`` (Parquet folders): run the entities whose source changed.

The cursor maps each entity to the home's change token (for Parquet, a digest of its
files' stamps), so it stays small however many files a folder holds. An empty token
means "nothing there yet": the entity is requested once data appears.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

from dagster import AssetSelection, AssetSpec, RunRequest, SensorDefinition, SensorEvaluationContext, SensorResult, sensor

from hygge_core.project import EntityPlan, Project
from hygge_dagster.constants import sanitize

MINIMUM_INTERVAL_SECONDS = 30


def build_sensors(project: Project, specs_by_key: Mapping[str, AssetSpec]) -> list[SensorDefinition]:
    sensors = []
    for flow in project.flows:
        watched = [(plan, specs_by_key[plan.key]) for plan in project.entities(flow) if plan.home_class.watchable]
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
        now = {plan.entity: plan.create_home().change_token() for plan, _ in watched}
        changed = [(plan, spec) for plan, spec in watched if now[plan.entity] and now[plan.entity] != seen.get(plan.entity)]
        requests = []
        if changed:
            # The run key names this exact set of file versions, so a re-evaluation never requests it twice.
            stamp = json.dumps(sorted((plan.entity, now[plan.entity]) for plan, _ in changed))
            requests.append(
                RunRequest(run_key=hashlib.sha256(stamp.encode()).hexdigest(), asset_selection=[spec.key for _, spec in changed])
            )
        return SensorResult(run_requests=requests, cursor=json.dumps(now, sort_keys=True))

    return _sensor

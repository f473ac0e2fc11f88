"""The asset factory: one Dagster asset per hygge entity, in a step of its own or one shared by its flow.

A step of its own makes Dagster's parallelism, retries and pools exact per entity:
a retry re-runs one entity, a pool slot is one running entity, and a bad entity
fails alone. A shared step (``steps.py``) keeps those promises inside the step
(``shared_step.py``) at a fraction of the cost per entity. Either way the engine's
result becomes the entity's metadata and asset checks (``events.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetObservation,
    AssetsDefinition,
    AssetSpec,
    MaterializeResult,
    multi_asset,
)

from hygge_core.errors import ConfigError, HyggeError, TransientError
from hygge_core.flow import run_entity
from hygge_core.project import EntityPlan, Project
from hygge_dagster import constants as c
from hygge_dagster.checks import check_specs, published_check_results
from hygge_dagster.errors import entity_failure, unexpected_failure
from hygge_dagster.events import entity_events, run_type_override
from hygge_dagster.partitions import for_run, partitions_def
from hygge_dagster.pools import entity_slot
from hygge_dagster.progress import ThrottledProgress
from hygge_dagster.retries import retry_request
from hygge_dagster.shared_step import load_entities
from hygge_dagster.steps import StepGroup, step_groups
from hygge_dagster.translator import DagsterHyggeTranslator, HyggeEntityData


def entity_data(project: Project, plans: Sequence[EntityPlan] | None = None) -> list[HyggeEntityData]:
    """The translator's input for each planned entity (all of the project's by default)."""
    with_sources = project.config.dagster.source_assets
    return [
        HyggeEntityData(
            project_name=project.name,
            flow=plan.flow,
            entity=plan.entity,
            plan=plan,
            destination=plan.create_store().destination,
            source_key=source_asset_key(plan) if with_sources else None,
        )
        for plan in (project.plans if plans is None else plans)
    ]


def build_hygge_asset_specs(project: Project, translator: DagsterHyggeTranslator | None = None) -> list[AssetSpec]:
    """The specs alone (no compute): for lineage, docs, or assets executed elsewhere."""
    translator = translator or DagsterHyggeTranslator()
    return [translator.get_asset_spec(data) for data in entity_data(project)]


def build_hygge_assets(project: Project, translator: DagsterHyggeTranslator | None = None) -> list[AssetsDefinition]:
    """One asset per entity, plus external source assets when ``dagster.source_assets`` is on."""
    return [*build_entity_assets(project, translator).assets, *build_source_assets(project)]


@dataclass(frozen=True)
class EntityAssets:
    """The entity assets of a project: the definitions (one per step) and each entity's spec by ``flow/entity``."""

    assets: list[AssetsDefinition]
    specs: dict[str, AssetSpec]


def build_entity_assets(
    project: Project, translator: DagsterHyggeTranslator | None = None, *, concurrency: int | None = None
) -> EntityAssets:
    """Every planned entity's asset, grouped into steps as the flows' ``dagster: {step:}`` say.

    ``concurrency`` bounds the entities a run loads at once (default: the project's ``concurrency:``).
    """
    translator = translator or DagsterHyggeTranslator()
    specs: dict[str, AssetSpec] = {}
    op_names: dict[str, str] = {}
    for data in entity_data(project):
        spec = translator.get_asset_spec(data)
        op_name = "__".join(spec.key.path)
        if op_name in op_names:
            raise ConfigError(
                f"entities {op_names[op_name]!r} and {data.plan.key!r} both become Dagster asset {spec.key.to_user_string()!r} "
                "(names are sanitised to A-Za-z0-9_); rename one, or map keys with a custom translator"
            )
        op_names[op_name] = data.plan.key
        specs[data.plan.key] = spec
    assets: list[AssetsDefinition] = []
    for group in step_groups(project):
        if group.kind == "entity":
            plan = group.plans[0]
            assets.append(entity_asset(plan, specs[plan.key], op_name="__".join(specs[plan.key].key.path)))
        else:
            assets.append(shared_asset(group, specs, concurrency=concurrency or project.config.concurrency))
    return EntityAssets(assets=assets, specs=specs)


def build_source_assets(project: Project) -> list[AssetsDefinition]:
    """External ``[connection, schema, table]`` assets, upstream of the entities (``dagster.source_assets``)."""
    if not project.config.dagster.source_assets:
        return []
    keys = {key for key in (source_asset_key(plan) for plan in project.plans) if key is not None}
    if not keys:
        return []
    return [
        AssetsDefinition(specs=[AssetSpec(key, group_name="hygge_sources", kinds={"source"}) for key in sorted(keys, key=str)])
    ]


def entity_asset(plan: EntityPlan, spec: AssetSpec, *, op_name: str) -> AssetsDefinition:
    """The asset that loads one entity in its own step; retries and the pool slot are ``load_entity``'s.

    No ``pool=`` on the op: Dagster would hold that slot from launch, and a step process
    that dies while loading the project never gives it back (Dagster logs "finished
    without success or failure event"), so every other step of the pool waited forever.
    The step claims the slot itself while the entity loads (``pools.entity_slot``).
    """
    key = spec.key

    @multi_asset(
        name=op_name,
        specs=[spec],
        check_specs=check_specs(plan, key),
        op_tags={c.FLOW_TAG: c.sanitize(plan.flow)},
        can_subset=True,  # so a run may select some of the entity's checks
        partitions_def=partitions_def(plan.time_partitions),
    )
    def _load(context):  # noqa: ANN001, ANN202  (Dagster reads this annotation at runtime; it must stay blank here)
        yield from load_entity(context, plan, key)

    return _load


def shared_asset(group: StepGroup, specs: Mapping[str, AssetSpec], *, concurrency: int) -> AssetsDefinition:
    """One step for a flow's entities (see ``shared_step``): subsettable, so a run may select any of them.

    No ``pool=`` on the step: it claims a slot of each entity's connection pool per running entity.
    """
    plans = {specs[plan.key].key: plan for plan in group.plans}
    checks = [check for key, plan in plans.items() for check in check_specs(plan, key)]

    @multi_asset(
        name=group.op_name(),
        specs=[specs[plan.key] for plan in group.plans],
        check_specs=checks,
        op_tags={c.FLOW_TAG: c.sanitize(group.flow)},
        can_subset=True,
        partitions_def=partitions_def(group.plans[0].time_partitions),  # a shared step's entities share one partitioning
    )
    def _load(context):  # noqa: ANN001, ANN202  (Dagster reads this annotation at runtime; it must stay blank here)
        yield from load_entities(context, plans, concurrency=concurrency)

    return _load


def load_entity(
    context: AssetExecutionContext, plan: EntityPlan, key: AssetKey
) -> Iterator[MaterializeResult | AssetObservation | object]:
    """Run the engine for one entity and turn its result into Dagster events.

    Transient errors ask Dagster for a retry (as the flow's ``retries:`` allow); every
    other error, hygge's or not, becomes a ``Failure`` that is not retried, with its
    message. Interrupts (SIGINT, SIGTERM, a run terminated from the UI) propagate
    untouched: the engine has already removed the staging, and Dagster ends the run
    instead of retrying the entity.
    """
    if key not in context.selected_asset_keys:  # checks alone (the UI's "Execute" on a check): judge what is published
        yield from published_check_results(plan, key, context.selected_asset_check_keys)
        return
    run_type = run_type_override(context.run.tags)
    attempt = context.retry_number + 1
    slot_key = context.op_execution_context.op.name
    try:
        with entity_slot(
            context.instance, plan.connection_name, run_id=context.run.run_id, slot_key=slot_key, cancel=threading.Event()
        ):
            result = run_entity(for_run(context, plan), run_type=run_type, progress=ThrottledProgress(context.log.info))
    except TransientError as error:
        context.log.warning(
            f"{plan.key}: attempt {attempt} failed with a transient error (retried if the flow's retries allow): {error}"
        )
        raise retry_request(plan.flow_config.retries, attempt) from error
    except HyggeError as error:
        raise entity_failure(plan, error) from error
    except Exception as error:  # a bug: fail once, with its message; never retried like a dropped connection
        raise unexpected_failure(plan, error) from error
    yield from entity_events(context, key, result, attempt=attempt)


def source_asset_key(plan: EntityPlan) -> AssetKey | None:
    """What the home reads, as the home config names it (``lineage_key``), sanitised; ``None`` when it names nothing.

    ``[connection, schema, table]`` for SQL tables (discovered SQL entities are named
    ``schema.table``), ``[files, folder]`` for Parquet homes.
    """
    parts = plan.home.lineage_key(plan)
    return AssetKey([c.sanitize(part) for part in parts]) if parts else None

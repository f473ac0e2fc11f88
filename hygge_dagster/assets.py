"""The asset factory: one Dagster asset (one step) per hygge entity.

One step per entity is what makes Dagster's parallelism, retries and pools exact:
a retry re-runs one entity, a pool slot is one running entity, and a bad entity
fails alone. Each step runs ``hygge_core.run_entity`` and reports the engine's
result as metadata and asset checks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetObservation,
    AssetsDefinition,
    AssetSpec,
    Failure,
    MaterializeResult,
    multi_asset,
)

from hygge_core.config import RUN_TYPES, RunType
from hygge_core.errors import ConfigError, HyggeError, TransientError
from hygge_core.flow import run_entity
from hygge_core.project import EntityPlan, Project
from hygge_dagster import constants as c
from hygge_dagster.checks import check_results, check_specs
from hygge_dagster.errors import bad_run_type_failure, entity_failure, unexpected_failure
from hygge_dagster.metadata import result_metadata
from hygge_dagster.progress import ThrottledProgress
from hygge_dagster.retries import retry_request
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
    return [*build_entity_assets(project, translator).values(), *build_source_assets(project)]


def build_entity_assets(project: Project, translator: DagsterHyggeTranslator | None = None) -> dict[str, AssetsDefinition]:
    """``{"flow/entity": asset}`` for every planned entity, in plan order."""
    translator = translator or DagsterHyggeTranslator()
    assets: dict[str, AssetsDefinition] = {}
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
        assets[data.plan.key] = entity_asset(data.plan, spec, op_name=op_name)
    return assets


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
    """The asset that loads one entity: pool per SQL connection; retries are requested by ``load_entity``."""
    key = spec.key

    @multi_asset(
        name=op_name,
        specs=[spec],
        check_specs=check_specs(plan, key),
        pool=c.pool_name(plan.connection_name) if plan.connection_name else None,
        op_tags={c.FLOW_TAG: c.sanitize(plan.flow)},
        can_subset=True,  # so a run may select some of the entity's checks
    )
    def _load(context):  # noqa: ANN001, ANN202  (Dagster reads this annotation at runtime; it must stay blank here)
        yield from load_entity(context, plan, key)

    return _load


def load_entity(
    context: AssetExecutionContext, plan: EntityPlan, key: AssetKey
) -> Iterator[MaterializeResult | AssetObservation | object]:
    """Run the engine for one entity and turn its result into Dagster events.

    Transient errors ask Dagster for a retry (as the flow's ``retries:`` allow); every
    other error, hygge's or not, becomes a ``Failure`` that is not retried, with its
    message. Interrupts (SIGINT, SIGTERM, a run terminated from the UI) propagate
    untouched: the engine has already removed the staging, and Dagster ends the run
    instead of retrying the entity. An incremental run that
    found nothing new leaves the destination unchanged, so it is recorded as an
    observation, not a materialisation.
    """
    if key not in context.selected_asset_keys:
        raise Failure(
            description=f"{plan.key}: hygge evaluates checks while it loads the entity; select the asset {key.to_user_string()} with its checks",
            allow_retries=False,
        )
    run_type = run_type_override(context.run.tags)
    attempt = context.retry_number + 1
    try:
        result = run_entity(plan, run_type=run_type, progress=ThrottledProgress(context.log.info))
    except TransientError as error:
        context.log.warning(
            f"{plan.key}: attempt {attempt} failed with a transient error (retried if the flow's retries allow): {error}"
        )
        raise retry_request(plan.flow_config.retries, attempt) from error
    except HyggeError as error:
        raise entity_failure(plan, error) from error
    except Exception as error:  # a bug: fail once, with its message; never retried like a dropped connection
        raise unexpected_failure(plan, error) from error
    metadata = result_metadata(result, attempt=attempt)
    checks = check_results(result.checks, key, context.selected_asset_check_keys)
    if result.published:
        yield MaterializeResult(asset_key=key, metadata=metadata, check_results=checks)
    else:
        yield AssetObservation(asset_key=key, metadata=metadata, description="nothing new: destination unchanged")
        yield from checks


def run_type_override(tags: Mapping[str, str]) -> RunType | None:
    """The run type every entity of this run uses, from the ``hygge/run_type`` run tag."""
    value = tags.get(c.RUN_TYPE_TAG)
    if value is None:
        return None
    if value not in RUN_TYPES:
        raise bad_run_type_failure(value)
    return value  # type: ignore[return-value]  (checked against RUN_TYPES just above)


def source_asset_key(plan: EntityPlan) -> AssetKey | None:
    """``[connection, schema, table]`` for entities read from a SQL connection; ``None`` for files.

    The home names the table it reads (its ``table:``, else the entity name: discovered
    SQL entities are named ``schema.table``).
    """
    name = plan.home.lineage_name()
    if plan.connection_name is None or name is None:
        return None
    return AssetKey([c.sanitize(plan.connection_name), *(c.sanitize(part) for part in name.split("."))])

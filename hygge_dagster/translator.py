"""How a hygge entity becomes a Dagster ``AssetSpec``: the one place users customise keys, groups, owners...

Subclass ``DagsterHyggeTranslator`` and override ``get_asset_spec``; call ``super()`` and
``.replace_attributes(...)`` / ``.merge_attributes(...)`` on the result to change only what you need::

    class MyTranslator(DagsterHyggeTranslator):
        def get_asset_spec(self, data: HyggeEntityData) -> AssetSpec:
            return super().get_asset_spec(data).replace_attributes(key_prefix="lake", owners=["team:data"])
"""

from __future__ import annotations

from dataclasses import dataclass

from dagster import AssetKey, AssetSpec, FreshnessPolicy

from hygge_core.project import EntityPlan
from hygge_dagster import constants as c


@dataclass(frozen=True)
class HyggeEntityData:
    """Everything the translator may use about one entity. A record, so fields can be added later."""

    project_name: str
    flow: str
    entity: str
    plan: EntityPlan
    destination: str
    source_key: AssetKey | None = None

    @property
    def home_type(self) -> str:
        return self.plan.home.type

    @property
    def store_type(self) -> str:
        return self.plan.store.type

    @property
    def connection_name(self) -> str | None:
        return self.plan.connection_name


@dataclass
class DagsterHyggeTranslator:
    """Default mapping: key ``[flow, entity]`` (sanitised), group = flow, kinds = home and store types."""

    def get_asset_spec(self, data: HyggeEntityData) -> AssetSpec:
        plan = data.plan
        flow = plan.flow_config
        tags = {c.FLOW_TAG: c.sanitize(data.flow), **flow.tags}
        if data.connection_name:
            tags[c.CONNECTION_TAG] = c.sanitize(data.connection_name)
        metadata: dict[str, object] = {
            c.META_FLOW: data.flow,
            c.META_ENTITY: data.entity,
            c.META_SOURCE: plan.home.describe(),
            c.META_DESTINATION: data.destination,
            c.META_RUN_TYPE: plan.run_type,
        }
        if plan.watermark is not None and plan.watermark.column:
            metadata[c.META_WATERMARK_COLUMN] = plan.watermark.column
        if plan.watermark is not None and plan.watermark.key_columns:
            metadata[c.META_KEY_COLUMNS] = ", ".join(plan.watermark.key_columns)
        summary = f"{plan.run_type} load from {plan.home.describe()} to {data.destination}."
        return AssetSpec(
            key=AssetKey([c.sanitize(data.flow), c.sanitize(data.entity)]),
            group_name=c.sanitize(data.flow),
            kinds={data.home_type, data.store_type},
            description=f"{flow.description}\n\n{summary}" if flow.description else summary,
            metadata=metadata,
            tags=tags,
            owners=list(flow.owners),
            deps=[data.source_key] if data.source_key is not None else [],
            freshness_policy=_freshness(plan),
            skippable=True,
        )


def _freshness(plan: EntityPlan) -> FreshnessPolicy | None:
    freshness = plan.flow_config.freshness
    if freshness is None:
        return None
    return FreshnessPolicy.time_window(fail_window=freshness.max_lag, warn_window=freshness.warn_lag)

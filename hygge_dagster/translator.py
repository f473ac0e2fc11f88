"""How a hygge entity becomes a Dagster ``AssetSpec``: the one place users customise keys, groups, owners...

Subclass ``DagsterHyggeTranslator`` and override ``get_asset_spec``; call ``super()`` and
``.replace_attributes(...)`` / ``.merge_attributes(...)`` on the result to change only what you need::

    class MyTranslator(DagsterHyggeTranslator):
        def get_asset_spec(self, data: HyggeEntityData) -> AssetSpec:
            return super().get_asset_spec(data).replace_attributes(key_prefix="lake", owners=["team:data"])
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from functools import cached_property

from dagster import (
    AssetKey,
    AssetSpec,
    BetaWarning,
    CodeReferencesMetadataValue,
    FreshnessPolicy,
    LocalFileCodeReference,
    MetadataValue,
)

from hygge_core.errors import HyggeError
from hygge_core.project import EntityPlan
from hygge_core.state import EntityState
from hygge_core.store import Store
from hygge_dagster import constants as c
from hygge_dagster.metadata import column_lineage, columns_schema
from hygge_dagster.partitions import partitions_def

log = logging.getLogger(__name__)


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

    @cached_property
    def store(self) -> Store:
        return self.plan.create_store()

    @cached_property
    def committed_state(self) -> EntityState | None:
        """The entity's last commit when the store can read it cheaply (local files); ``None`` otherwise.

        Definitions must load whatever state the lake is in: an unreadable record is logged
        and left to the next run to report.
        """
        try:
            state = self.store.definition_state()
        except HyggeError as error:
            log.warning("%s: committed state not shown in Dagster: %s", self.plan.key, error)
            return None
        return None if state is None or state.is_new else state


@dataclass
class DagsterHyggeTranslator:
    """Default mapping: key ``[flow, entity]`` (sanitised), group = flow, kinds = home and store types and ``hygge``.

    Definition metadata also carries what a catalog shows before and between runs: the table's
    name and URI, the columns of its last commit with their lineage from the source asset, and
    where the entity is written in the project's YAML.
    """

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
        if plan.time_partitions is not None:
            partitions = plan.time_partitions
            metadata[c.META_TIME_PARTITIONS] = (
                f"{partitions.period} on {partitions.column} ({partitions.timezone}) from {partitions.start}"
            )
        metadata.update(_table_metadata(data))
        summary = f"{plan.run_type} load from {plan.home.describe()} to {data.destination}."
        return AssetSpec(
            key=AssetKey([c.sanitize(data.flow), c.sanitize(data.entity)]),
            group_name=c.sanitize(data.flow),
            kinds={data.home_type, data.store_type, c.HYGGE_KIND},
            description=f"{flow.description}\n\n{summary}" if flow.description else summary,
            metadata=metadata,
            tags=tags,
            owners=list(flow.owners),
            deps=[data.source_key] if data.source_key is not None else [],
            freshness_policy=_freshness(plan),
            partitions_def=partitions_def(plan.time_partitions),
            skippable=True,
        )


def _freshness(plan: EntityPlan) -> FreshnessPolicy | None:
    freshness = plan.flow_config.freshness
    if freshness is None:
        return None
    return FreshnessPolicy.time_window(fail_window=freshness.max_lag, warn_window=freshness.warn_lag)


def _table_metadata(data: HyggeEntityData) -> dict[str, object]:
    """Table name, URI, the last commit's columns and their lineage, and the entity's place in the YAML."""
    metadata: dict[str, object] = {c.META_TABLE_NAME: MetadataValue.text(data.store.table_name)}
    uri = data.store.public_uri
    if uri is not None:
        metadata[c.META_URI] = MetadataValue.text(uri)
    if data.source_key is not None:
        metadata[c.META_SOURCE_ASSET] = MetadataValue.text(data.source_key.to_user_string())
    state = data.committed_state
    if state is not None and state.columns:
        metadata[c.META_COLUMN_SCHEMA] = MetadataValue.table_schema(columns_schema(state.columns))
        if data.source_key is not None:
            names = [name for name, _ in state.columns]
            metadata[c.META_COLUMN_LINEAGE] = MetadataValue.column_lineage(column_lineage(names, data.source_key))
    where = data.plan.defined_at
    if where is not None:
        with warnings.catch_warnings():  # Dagster marks code references beta; a user of hygge can do nothing about it
            warnings.simplefilter("ignore", BetaWarning)
            reference = LocalFileCodeReference(file_path=str(where.file), line_number=where.line, label="hygge YAML")
            metadata[c.META_CODE_REFERENCES] = CodeReferencesMetadataValue(code_references=[reference])
    return metadata

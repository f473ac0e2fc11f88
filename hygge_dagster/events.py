"""The Dagster events of one loaded entity, the same whichever kind of step loaded it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from dagster import AssetExecutionContext, AssetKey, AssetObservation, MaterializeResult, MetadataValue

from hygge_core.config import RUN_TYPES, RunType
from hygge_core.result import EntityResult
from hygge_dagster import constants as c
from hygge_dagster.checks import check_results
from hygge_dagster.errors import bad_run_type_failure
from hygge_dagster.metadata import result_metadata


def entity_events(
    context: AssetExecutionContext, key: AssetKey, result: EntityResult, *, attempt: int
) -> Iterator[MaterializeResult | AssetObservation | object]:
    """A materialisation with its check results; for an unchanged entity an observation, then the checks.

    An incremental run that found nothing new leaves the destination unchanged, so it
    is recorded as an observation, not a materialisation. A load that failed before
    publishing yields nothing: its step's failure says why.
    """
    if result.status == "failed" and not result.published:
        return
    metadata = result_metadata(result, attempt=attempt, source=_source_asset(context, key))
    checks = check_results(result.checks, key, context.selected_asset_check_keys)
    if result.published:
        yield MaterializeResult(asset_key=key, metadata=metadata, check_results=checks)
    else:
        yield AssetObservation(asset_key=key, metadata=metadata, description="nothing new: destination unchanged")
        yield from checks


def _source_asset(context: AssetExecutionContext, key: AssetKey) -> AssetKey | None:
    """The upstream asset the translator named in the spec (``hygge/source_asset``): the run's columns come from it."""
    value = context.assets_def.specs_by_key[key].metadata.get(c.META_SOURCE_ASSET)
    text = value.value if isinstance(value, MetadataValue) else value
    return AssetKey.from_user_string(text) if isinstance(text, str) else None


def run_type_override(tags: Mapping[str, str]) -> RunType | None:
    """The run type every entity of this run uses, from the ``hygge/run_type`` run tag."""
    value = tags.get(c.RUN_TYPE_TAG)
    if value is None:
        return None
    if value not in RUN_TYPES:
        raise bad_run_type_failure(value)
    return value  # type: ignore[return-value]  (checked against RUN_TYPES just above)

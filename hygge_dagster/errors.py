"""How engine errors surface in Dagster: transient ones are retried, the rest fail once with their message."""

from __future__ import annotations

from dagster import Failure, MetadataValue

from hygge_core.config import RUN_TYPES
from hygge_core.errors import ConfigError, HyggeError
from hygge_core.project import EntityPlan
from hygge_dagster import constants as c


def entity_failure(plan: EntityPlan, error: HyggeError) -> Failure:
    """A non-retryable ``Failure`` that carries the engine's message and where it happened.

    ``allow_retries=False`` because a configuration or data problem does not fix itself.
    """
    metadata = {
        c.META_FLOW: MetadataValue.text(plan.flow),
        c.META_ENTITY: MetadataValue.text(plan.entity),
        c.META_SOURCE: MetadataValue.text(plan.home.describe()),
        c.META_DESTINATION: MetadataValue.text(plan.store.describe()),
        c.META_ERROR_TYPE: MetadataValue.text(type(error).__name__),
    }
    if isinstance(error, ConfigError) and len(error.problems) > 1:
        metadata["hygge/problems"] = MetadataValue.json(error.problems)
    return Failure(description=f"{plan.key}: {error}", metadata=metadata, allow_retries=False)


def unexpected_failure(plan: EntityPlan, error: Exception) -> Failure:
    """A non-retryable ``Failure`` for an exception that is not hygge's (a bug in hygge or in a custom type).

    Not retried: only ``TransientError`` says that another attempt may succeed.
    """
    metadata = {
        c.META_FLOW: MetadataValue.text(plan.flow),
        c.META_ENTITY: MetadataValue.text(plan.entity),
        c.META_ERROR_TYPE: MetadataValue.text(type(error).__name__),
    }
    return Failure(description=f"{plan.key}: unexpected {type(error).__name__}: {error}", metadata=metadata, allow_retries=False)


def bad_run_type_failure(value: str) -> Failure:
    return Failure(
        description=f"run tag {c.RUN_TYPE_TAG}={value!r} is not a run type; use one of: {', '.join(RUN_TYPES)}",
        allow_retries=False,
    )

"""A SQL connection's ``pool_size`` as a Dagster pool limit.

Each entity asset of a connection declares ``pool="hygge_<connection>"``; the
instance holds the limit, so it applies across steps and across runs. Parquet-only
flows have no pool.
"""

from __future__ import annotations

from dagster import DagsterInstance

from hygge_core.project import Project
from hygge_dagster.constants import pool_name


def pool_limits(project: Project) -> dict[str, int]:
    """``{pool: limit}`` for every connection some entity reads from."""
    limits: dict[str, int] = {}
    for plan in project.plans:
        if plan.connection_name is not None and plan.connection is not None:
            limits[pool_name(plan.connection_name)] = plan.connection.pool_size
    return limits


def apply_pool_limits(instance: DagsterInstance, project: Project) -> dict[str, int]:
    """Set each connection's pool limit on the instance (what ``dagster instance concurrency set`` does).

    ``hygge.yml`` is the source of truth for ``pool_size``, so the limit is set every time.
    """
    limits = pool_limits(project)
    if limits and not instance.event_log_storage.supports_global_concurrency_limits:
        return {}  # e.g. an in-memory instance: it runs in process, one step at a time anyway
    for pool, limit in limits.items():
        instance.event_log_storage.set_concurrency_slots(pool, limit)
    return limits

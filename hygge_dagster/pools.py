"""A SQL connection's ``pool_size`` as a Dagster pool limit.

Every entity of a connection holds one slot of the pool ``hygge_<connection>`` while it
loads; the instance holds the limit, so it applies across steps, processes and runs.
The step claims the slot itself (``entity_slot``), whether it carries one entity or a
whole flow, so a pool counts running entities in both step modes; the ops declare no
``pool=``, because Dagster never frees the slot of a step process that dies before it
reports (a project that fails to load in a step process hung every other step of the
pool). Parquet-only flows have no pool.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from dagster import DagsterInstance

from hygge_core.errors import Cancelled
from hygge_core.project import Project
from hygge_core.sql.pool import shrink_pools
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


SLOT_POLL_SECONDS = 0.25

_held: Counter[str] = Counter()  # slots this process holds, per connection
_held_lock = threading.Lock()


@contextmanager
def entity_slot(
    instance: DagsterInstance, connection: str | None, *, run_id: str, slot_key: str, cancel: threading.Event
) -> Iterator[None]:
    """Hold one slot of ``connection``'s pool while the block runs; wait for a free one first (``cancel`` stops the wait).

    Uses the instance's own pool queue, so every step of every run counts against the same
    ``pool_size``. ``slot_key`` must be unique in the run (the step key, plus the entity
    in a shared step). On the way out this process closes the idle pooled connections
    its remaining slots do not cover, before the slot goes to another process: the
    server never sees more open connections than ``pool_size``. A process killed while
    holding a slot leaves it claimed, as with Dagster's own steps, until the run's slots
    are freed (``dagster instance concurrency`` or the UI).
    """
    if connection is None or not _limited(instance, pool_name(connection)):
        yield
        return
    pool = pool_name(connection)
    storage = instance.event_log_storage
    claimed = False
    try:
        while not storage.claim_concurrency_slot(pool, run_id, slot_key).is_claimed:
            if cancel.wait(SLOT_POLL_SECONDS):
                raise Cancelled(f"stopped while waiting for a slot of pool {pool}")
        claimed = True
        with _held_lock:
            _held[connection] += 1
        yield
    finally:
        if claimed:
            with _held_lock:
                _held[connection] -= 1
                keep = _held[connection]
            shrink_pools(connection, keep)
        storage.free_concurrency_slot_for_step(run_id, slot_key)


def _limited(instance: DagsterInstance, pool: str) -> bool:
    """Whether the instance limits ``pool`` per op, as the executor decides for entity steps."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return False
    config = storage.get_pool_config()
    if config.pool_granularity is not None and config.pool_granularity.value == "run":
        return False  # the run as a whole holds the slot (the run coordinator's setting)
    if any(limit.name == pool for limit in storage.get_pool_limits()):
        return True
    if config.default_pool_limit is None:
        return False
    storage.initialize_concurrency_limit_to_default(pool)  # what the executor does for a pool it meets first
    return True

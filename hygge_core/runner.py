"""Run many entities without Dagster: a thread per running entity, a bad entity fails alone.

This is the library API's whole-project entry point. Dagster users get the same
per-entity engine through ``hygge_dagster``, with Dagster doing parallelism and retries.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from hygge_core.config import RetryConfig
from hygge_core.errors import Cancelled, HyggeError, TransientError
from hygge_core.flow import ProgressCallback, run_entity
from hygge_core.log import entity_logger
from hygge_core.project import EntityPlan, Project
from hygge_core.result import EntityResult, ProjectResult


def run_project(
    project: Project,
    *,
    flows: Sequence[str] = (),
    entities: Sequence[str] = (),
    run_type: str | None = None,
    concurrency: int | None = None,
    progress: ProgressCallback | None = None,
) -> ProjectResult:
    """Run the selected entities (all by default); failures are collected, not raised."""
    plans = project.select(flows=flows, entities=entities)
    started = time.perf_counter()
    workers = max(1, min(concurrency or project.config.concurrency, len(plans) or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hygge-entity") as pool:
        results = list(pool.map(lambda plan: run_with_retries(plan, run_type=run_type, progress=progress), plans))
    return ProjectResult(entities=results, seconds=time.perf_counter() - started)


def run_with_retries(
    plan: EntityPlan,
    *,
    run_type: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> EntityResult:
    """Run one entity, retrying transient errors as its flow's ``retries:`` says.

    Never raises for a failed entity: errors, including unexpected ones, become a failed
    result, so one bad entity cannot stop the others of ``run_project`` or of a Dagster
    step that carries many entities. Only a stop raises: an interrupt, or ``Cancelled``
    once ``cancel`` is set (also while waiting to retry).
    """
    retries = plan.flow_config.retries
    log = entity_logger(plan.flow, plan.entity)
    started = time.perf_counter()
    attempt = 0
    while True:
        attempt += 1
        try:
            result = run_entity(plan, run_type=run_type, progress=progress, cancel=cancel)
            return result if attempt == 1 else replace(result, attempts=attempt)
        except TransientError as error:
            if attempt > retries.max:
                return _failed(plan, run_type, error, started, attempt)
            wait = retry_delay(retries, attempt)
            log.warning("attempt %d failed (%s); retrying in %.1fs", attempt, error, wait)
            if cancel is None:
                time.sleep(wait)
            elif cancel.wait(wait):
                raise Cancelled(f"{plan.key}: stopped while waiting to retry; previous version kept") from error
        except HyggeError as error:
            log.error("failed: %s", error)
            return _failed(plan, run_type, error, started, attempt)
        except Exception as error:  # a bug must fail its entity, not the whole project
            log.exception("failed with an unexpected error (please report it)")
            return _failed(plan, run_type, error, started, attempt)


def retry_delay(retries: RetryConfig, attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based)."""
    base = retries.delay.total_seconds()
    if retries.backoff == "exponential":
        delay = base * 2 ** (attempt - 1)
    elif retries.backoff == "linear":
        delay = base * attempt
    else:
        delay = base
    return random.uniform(0, delay) if retries.jitter else delay


def _failed(plan: EntityPlan, run_type: str | None, error: BaseException, started: float, attempts: int) -> EntityResult:
    return EntityResult(
        flow=plan.flow,
        entity=plan.entity,
        run_type=run_type or plan.run_type,
        status="failed",
        seconds=time.perf_counter() - started,
        destination=plan.store.describe(),
        source=plan.home.describe(),
        error=str(error) if isinstance(error, HyggeError) else f"unexpected {type(error).__name__}: {error}",
        error_type=type(error).__name__,
        attempts=attempts,
    )

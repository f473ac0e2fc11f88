"""A flow's ``retries:`` as a Dagster ``RetryPolicy`` on each of its entity assets.

One asset per step means a retry re-runs exactly one entity; hygge publishes
atomically per attempt, so a retried entity never lands twice.
"""

from __future__ import annotations

from dagster import Backoff, Jitter, RetryPolicy

from hygge_core.config import RetryConfig


def retry_policy(retries: RetryConfig) -> RetryPolicy | None:
    """``None`` when the flow allows no retries (``max: 0``)."""
    if retries.max == 0:
        return None
    backoff = {"exponential": Backoff.EXPONENTIAL, "linear": Backoff.LINEAR, "constant": None}[retries.backoff]
    return RetryPolicy(
        max_retries=retries.max,
        delay=retries.delay.total_seconds(),
        backoff=backoff,
        jitter=Jitter.FULL if retries.jitter else None,
    )

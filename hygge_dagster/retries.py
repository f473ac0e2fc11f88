"""A flow's ``retries:`` in Dagster: only hygge's ``TransientError`` asks for another attempt.

The entity's step raises ``RetryRequested`` itself for a transient error, instead of
carrying a ``RetryPolicy``: Dagster applies a policy to *every* exception, interrupts
included, so with one a Ctrl-C or SIGTERM re-ran the entity and a bug was retried as
if it were a dropped connection. One asset per step means a retry re-runs exactly one
entity; hygge publishes atomically per attempt, so a retried entity never lands twice.
"""

from __future__ import annotations

from dagster import RetryRequested

from hygge_core.config import RetryConfig
from hygge_core.runner import retry_delay


def retry_request(retries: RetryConfig, attempt: int) -> RetryRequested:
    """The request to retry after failed attempt number ``attempt`` (1-based), with the library's backoff.

    Dagster fails the step instead once ``retries.max`` retries have been made (``max: 0``: never retried).
    """
    return RetryRequested(max_retries=retries.max, seconds_to_wait=retry_delay(retries, attempt))

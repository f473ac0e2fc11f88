"""The executor a project's ``dagster:`` block asks for.

The multiprocess executor starts one process per step. With ``spawn`` each step
re-imports Dagster and hygge (seconds of CPU); ``forkserver`` forks steps from a
server that imported them once (``preload_modules``), which is the default here.
"""

from __future__ import annotations

from collections.abc import Sequence

from dagster import ExecutorDefinition, in_process_executor, multiprocess_executor

from hygge_core.config import DagsterConfig
from hygge_dagster.constants import PRELOAD_MODULES


def build_executor(
    config: DagsterConfig,
    *,
    max_concurrent: int,
    kind: str | None = None,
    extra_preload: Sequence[str] = (),
) -> ExecutorDefinition:
    """``kind`` overrides ``config.executor`` (``multiprocess`` | ``in_process``) for one run."""
    if (kind or config.executor) == "in_process":
        return in_process_executor
    if config.start_method == "forkserver":
        preload = list(dict.fromkeys([*PRELOAD_MODULES, *extra_preload]))
        start_method: dict[str, object] = {"forkserver": {"preload_modules": preload}}
    else:
        start_method = {"spawn": {}}
    return multiprocess_executor.configured(
        {"max_concurrent": max_concurrent, "start_method": start_method}, name="hygge_multiprocess"
    )

"""The executor a project's ``dagster:`` block asks for.

The multiprocess executor starts one process per step. With ``spawn`` each step
re-imports Dagster and hygge (seconds of CPU); ``forkserver`` forks steps from a
server that imported them once (``preload_modules``), which is the default here.

A run of a single step gains nothing from a process of its own: one shared step carrying a
flow, or one entity, runs nothing in parallel, and the forkserver and step process cost
seconds and hundreds of MB (docs/benchmarks.md, "Issue 10"). So unless the project names its
executor, the multiprocess executor runs a one-step run in the run's own process, whoever
launched it: ``hygge start``, the Dagster CLI, the UI or a schedule.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from dagster import ExecutorDefinition, in_process_executor, multiprocess_executor
from dagster._core.events import DagsterEvent
from dagster._core.execution.context.system import PlanOrchestrationContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._core.execution.retries import RetryMode
from dagster._core.execution.step_dependency_config import StepDependencyConfig
from dagster._core.executor.base import Executor
from dagster._core.executor.in_process import InProcessExecutor
from dagster._core.executor.init import InitExecutorContext

from hygge_core.config import DagsterConfig
from hygge_dagster.constants import PRELOAD_MODULES


class OneStepInProcessExecutor(Executor):
    """The multiprocess executor, except that a run of one step executes in the run's own process."""

    def __init__(self, multiprocess: Executor) -> None:
        self._multiprocess = multiprocess
        self._in_process = InProcessExecutor(
            retries=multiprocess.retries, marker_to_close=None, step_dependency_config=multiprocess.step_dependency_config
        )

    @property
    def retries(self) -> RetryMode:
        return self._multiprocess.retries

    @property
    def step_dependency_config(self) -> StepDependencyConfig:
        return self._multiprocess.step_dependency_config

    def execute(self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan) -> Iterator[DagsterEvent]:
        chosen = self._in_process if len(execution_plan.step_keys_to_execute) == 1 else self._multiprocess
        return chosen.execute(plan_context, execution_plan)


def _one_step_in_process(init_context: InitExecutorContext) -> Executor:
    return OneStepInProcessExecutor(multiprocess_executor.executor_creation_fn(init_context))


one_step_in_process_executor = ExecutorDefinition(
    name="hygge_multiprocess",
    config_schema=multiprocess_executor.config_schema,
    executor_creation_fn=_one_step_in_process,
    description="Multiprocess, except that a run of one step executes in the run's own process.",
)


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
    chosen = multiprocess_executor if "executor" in config.model_fields_set else one_step_in_process_executor
    return chosen.configured({"max_concurrent": max_concurrent, "start_method": start_method}, name="hygge_multiprocess")

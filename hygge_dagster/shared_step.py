"""One Dagster step that loads many entities on threads, each still its own asset.

Entities run on a bounded set of worker threads (``steps.shared_step_threads``),
each holding a slot of its connection's pool while it loads. Every Dagster call
(events, log lines) happens on the step's own thread: workers only run the engine
and hand back what happened through a queue, so an entity's materialisation and
check results are recorded as soon as it finishes. Transient errors are retried
per entity under the flow's ``retries:``; a failed entity does not stop the others,
and the step fails at the end naming every failed entity (its metadata maps each to
its error), so "re-execute from failure" runs only those again.

A signal reaches only the step's thread: it sets ``cancel``, every worker stops
before its next commit (its staging removed, the previous version kept), and the
interrupt goes on to Dagster.
"""

from __future__ import annotations

import queue
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from dagster import AssetExecutionContext, AssetKey, DagsterEventType, DagsterRun, Failure, MetadataValue

from hygge_core.project import EntityPlan
from hygge_core.result import EntityResult
from hygge_core.runner import run_with_retries
from hygge_dagster import constants as c
from hygge_dagster.checks import published_check_results
from hygge_dagster.events import entity_events, run_type_override
from hygge_dagster.partitions import for_run
from hygge_dagster.pools import entity_slot
from hygge_dagster.progress import ThrottledProgress
from hygge_dagster.steps import shared_step_threads

POLL_SECONDS = 0.2  # how often the step's thread wakes while it waits, so a signal is handled at once
STOP_GRACE_SECONDS = 10.0  # how long a stop waits for workers to remove their staging


@dataclass(frozen=True)
class _Finished:
    key: AssetKey
    result: EntityResult


@dataclass(frozen=True)
class _Crashed:
    """A worker died of something ``run_with_retries`` does not turn into a result (a stop, or a bug in hygge)."""

    plan: EntityPlan
    error: BaseException


@dataclass(frozen=True)
class _LogLine:
    text: str


def load_entities(context: AssetExecutionContext, plans: Mapping[AssetKey, EntityPlan], *, concurrency: int) -> Iterator[object]:
    """Load the selected entities of this step concurrently and yield each one's events as it finishes."""
    yield from _checks_alone(context, plans)
    done_before = _loaded_by_earlier_attempts(context, plans)
    selected = [
        (key, for_run(context, plan))
        for key, plan in plans.items()
        if key in context.selected_asset_keys and key not in done_before
    ]
    if done_before:
        names = ", ".join(sorted(plans[key].key for key in done_before if key in context.selected_asset_keys))
        context.log.info(f"re-execution from failure: already loaded by the run(s) it retries, skipped: {names}")
    if not selected:
        return  # only checks were selected (evaluated above), or every entity was loaded by an earlier attempt
    run_type = run_type_override(context.run.tags)
    threads = shared_step_threads(concurrency, steps_in_run=_steps_in_run(context), sequential=_sequential(context))
    work: queue.SimpleQueue[tuple[AssetKey, EntityPlan]] = queue.SimpleQueue()
    for item in selected:
        work.put(item)
    done: queue.SimpleQueue[_Finished | _Crashed | _LogLine] = queue.SimpleQueue()
    cancel = threading.Event()
    step_key = context.op_execution_context.op.name

    def worker(number: int) -> None:
        """Load queued entities one after another, keeping a pool slot while the next entity uses the same connection.

        Keeping the slot keeps the pooled connection too (releasing it closes the idle
        connections no slot covers), so a run of a connection's entities logs in once.
        """
        with ExitStack() as slot:
            held_for: tuple[str | None] | None = None  # (connection,) while a slot for it is held
            while True:
                try:
                    key, plan = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    if held_for != (plan.connection_name,):
                        slot.close()  # the previous connection's slot, if any
                        held_for = None
                        slot.enter_context(
                            entity_slot(
                                context.instance,
                                plan.connection_name,
                                run_id=context.run.run_id,
                                slot_key=f"{step_key}[worker {number}]",
                                cancel=cancel,
                            )
                        )
                        held_for = (plan.connection_name,)
                    progress = ThrottledProgress(lambda line: done.put(_LogLine(line)))
                    result = run_with_retries(plan, run_type=run_type, progress=progress, cancel=cancel)
                    done.put(_Finished(key, result))
                except BaseException as error:  # noqa: BLE001  (handed to the step's thread, which decides)
                    done.put(_Crashed(plan, error))
                    if not isinstance(error, Exception):
                        return

    workers = [
        threading.Thread(target=worker, args=(i,), name=f"hygge-step-{i}", daemon=True)
        for i in range(min(threads, len(selected)))
    ]
    context.log.info(f"loading {len(selected)} entities on {len(workers)} thread(s)")
    for thread in workers:
        thread.start()
    failed: dict[str, str] = {}
    try:
        remaining = len(selected)
        while remaining:
            try:
                item = done.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            if isinstance(item, _LogLine):
                context.log.info(item.text)
                continue
            remaining -= 1
            if isinstance(item, _Crashed):
                if not isinstance(item.error, Exception):
                    raise item.error
                failed[item.plan.key] = f"unexpected {type(item.error).__name__}: {item.error}"
                continue
            result = item.result
            if result.attempts > 1:
                context.log.info(f"{result.key}: {result.status} after {result.attempts} attempts")
            if result.status == "failed":
                failed[result.key] = result.error or "failed"
            yield from entity_events(context, item.key, result, attempt=result.attempts)
    except BaseException:
        cancel.set()
        _wait_for_stop(workers, STOP_GRACE_SECONDS)
        raise
    _join(workers, None)
    if failed:
        raise _shared_failure(failed, total=len(selected))


def _join(workers: list[threading.Thread], timeout: float | None) -> None:
    for thread in workers:
        thread.join(timeout)


def _wait_for_stop(workers: list[threading.Thread], grace: float) -> None:
    """Give stopping workers time to remove their staging, deaf to further signals meanwhile.

    Ctrl-C reaches every process of the group and the executor interrupts its step
    again: an interrupt raised here would end the process with a worker half way
    through its clean-up (a daemon thread dies with the process), leaving its staging.
    """
    with _signals_ignored():
        deadline = time.monotonic() + grace
        for thread in workers:
            thread.join(max(0.0, deadline - time.monotonic()))


@contextmanager
def _signals_ignored() -> Iterator[None]:
    """SIGINT and SIGTERM do nothing inside (Dagster's own interrupts are raised through them), on the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    for signum in previous:
        signal.signal(signum, _ignore)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _ignore(signum: int, frame: object) -> None:
    """A Python-level handler that does nothing (``SIG_IGN`` would also silence Dagster's ``interrupt_main``)."""


def _shared_failure(failed: Mapping[str, str], *, total: int) -> Failure:
    """Names every failed entity; the others of the step are already recorded as materialised."""
    lines = "\n".join(error if error.startswith(f"{key}: ") else f"{key}: {error}" for key, error in failed.items())
    return Failure(
        description=f"{len(failed)} of {total} entities failed:\n{lines}",
        metadata={c.META_FAILED_ENTITIES: MetadataValue.json(dict(failed))},
        allow_retries=False,
    )


def _checks_alone(context: AssetExecutionContext, plans: Mapping[AssetKey, EntityPlan]) -> Iterator[object]:
    """Results for checks selected without their asset (the UI's "Execute" on a check), judged against the published version."""
    alone = sorted({key.asset_key for key in context.selected_asset_check_keys} - set(context.selected_asset_keys), key=str)
    for key in alone:
        if key in plans:
            yield from published_check_results(plans[key], key, context.selected_asset_check_keys)


def _loaded_by_earlier_attempts(context: AssetExecutionContext, plans: Mapping[AssetKey, EntityPlan]) -> set[AssetKey]:
    """Entities of this step that the runs this one re-executes from failure already materialised or observed.

    Dagster re-executes a failed step whole; skipping what its earlier runs finished makes
    "re-execute from failure" load only the failed entities, as it would with a step each.
    """
    done: set[AssetKey] = set()
    run = context.run
    while _resumes_from_failure(run) and run.parent_run_id is not None:
        parent = context.instance.get_run_by_id(run.parent_run_id)
        if parent is None:
            break
        for kind in (DagsterEventType.ASSET_MATERIALIZATION, DagsterEventType.ASSET_OBSERVATION):
            for record in context.instance.get_records_for_run(parent.run_id, of_type=kind).records:
                event = record.event_log_entry.dagster_event
                if event is not None and event.asset_key in plans:
                    done.add(event.asset_key)
        run = parent
    return done


def _resumes_from_failure(run: DagsterRun) -> bool:
    """A re-execution of chosen steps: the UI's "from failure" tags it; the Python API lists the steps to run."""
    return run.tags.get(c.RESUME_RETRY_TAG) == "true" or run.step_keys_to_execute is not None


def _steps_in_run(context: AssetExecutionContext) -> int:
    """How many steps this run executes (the executor runs them side by side, up to its limit)."""
    layer = context.job_def.asset_layer
    selection = context.run.asset_selection or layer.executable_asset_keys
    return len({layer.get_op_output_handle(key).node_handle.name for key in selection if key in layer.executable_asset_keys})


def _sequential(context: AssetExecutionContext) -> bool:
    """Whether steps run one at a time (the in-process executor), so this one may use the whole budget."""
    return context.job_def.executor_def.name == "in_process"

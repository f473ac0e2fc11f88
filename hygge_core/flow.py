"""Run one entity: home → bounded queue → store, with reading and writing overlapped.

The home runs on its own thread and feeds a bounded queue; the calling thread
writes. pyarrow releases the GIL while decoding and encoding, so the two overlap
on two cores, and memory stays bounded by queue size × batch size plus the
store's row-group buffer.
"""

from __future__ import annotations

import queue
import secrets
import threading
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from hygge_core.checks import CheckResult, evaluate_checks, failed_checks_message
from hygge_core.config import RunType
from hygge_core.errors import Cancelled, ConfigError, EntityBusy, HyggeError
from hygge_core.log import EntityLogger, entity_logger
from hygge_core.project import EntityPlan
from hygge_core.result import EntityResult
from hygge_core.schema_change import ReloadAsFullDrop
from hygge_core.state import EntityState, StateUpdate
from hygge_core.store import Store, StoreSession, StoreWriter
from hygge_core.watermark import WatermarkTracker, require_same_column

PROGRESS_LOG_SECONDS = 10.0
READER_GRACE_SECONDS = 0.5  # how long an interrupted run waits for the reader thread before it lets go
LOCK_POLL_SECONDS = 0.2  # how often a partition run asks again for its entity's lock


@dataclass(frozen=True)
class Progress:
    """A progress report while an entity runs (rows so far, and how fast)."""

    flow: str
    entity: str
    rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


ProgressCallback = Callable[[Progress], None]


def new_run_id() -> str:
    """Sortable and unique across processes: UTC time plus random bits."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


def run_entity(
    plan: EntityPlan,
    *,
    run_type: RunType | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> EntityResult:
    """Move one entity, publish it atomically and evaluate its checks. Raises ``HyggeError`` subclasses on failure.

    ``run_type`` overrides the configured one for this run (``--full-drop`` / ``--incremental``).
    A failed ERROR-severity check does not raise: the data is already published, so the
    result says ``failed`` with the check's message and ``published=True``. Setting
    ``cancel`` (from another thread) stops the load before its commit with ``Cancelled``:
    the staging is removed and the previous version stays, as for an interrupt.
    """
    try:
        return _run_entity(plan, run_type or plan.run_type, progress, cancel)
    except ReloadAsFullDrop as reason:  # schema_change: full_drop; the incremental attempt left no trace
        entity_logger(plan.flow, plan.entity).warning("%s; reloading the whole entity (schema_change: full_drop)", reason)
        return _run_entity(plan, "full_drop", progress, cancel)


def _run_entity(
    plan: EntityPlan, mode: RunType, progress: ProgressCallback | None, cancel: threading.Event | None
) -> EntityResult:
    log = entity_logger(plan.flow, plan.entity)
    started = time.perf_counter()
    partition = plan.time_window
    if partition is not None and mode != "incremental":
        raise ConfigError(
            f"{plan.key}: a {mode} run would drop every other partition; a partition run replaces only {partition.key}"
        )
    home = plan.create_home()
    store = plan.create_store()
    log.info("starting %s: %s -> %s", partition.describe() if partition else mode, plan.home.describe(), store.destination)
    with _open_session(store, plan, cancel, log) as session:
        previous = session.state
        run_id = new_run_id()
        writer = session.writer(run_id=run_id, run_type=mode)
        # A partition run neither reads past the watermark nor moves it: it reloads its own period.
        column = plan.watermark.column if plan.watermark is not None and partition is None else None
        tracker = WatermarkTracker(column, label=plan.key) if column else None
        try:
            rows, schema = _pump(home.read(previous, mode), writer, tracker, plan, started, progress, log, cancel)
            schema = schema or home.schema()
            source_rows = home.source_row_count()
            new_state = _next_state(previous, run_id, mode, rows, schema, tracker, home.state_update(), label=plan.key)
            _stop_if_cancelled(cancel, plan)
            if mode == "incremental" and partition is None and rows == 0 and new_state.home == previous.home:
                writer.abort()
                published = None
            else:
                published = writer.commit(new_state, schema=schema)
        except BaseException:
            writer.abort()
            raise
    seconds = time.perf_counter() - started
    loaded = EntityResult(
        flow=plan.flow,
        entity=plan.entity,
        run_type=mode,
        status="success" if published is not None else "skipped",
        rows=rows,
        bytes=published.bytes if published else 0,
        files=published.files if published else 0,
        seconds=seconds,
        destination=store.destination,
        source=plan.home.describe(),
        schema=schema,
        previous_columns=list(previous.columns),
        watermark_before=previous.watermark,
        watermark_after=new_state.watermark,
        source_rows=source_rows,
        rows_published=published.rows if published else None,
        published=published is not None,
        partition=partition,
        publish=published,
    )
    if published is None:
        log.info("nothing new; destination unchanged (%.2fs)", seconds)
    else:
        log.info(
            "published %s rows in %s file(s), %.2fs (%s rows/s)",
            f"{rows:,}",
            loaded.files,
            seconds,
            f"{loaded.rows_per_second:,.0f}",
        )
    return with_checks(loaded, evaluate_checks(plan, loaded, store))


def _open_session(store: Store, plan: EntityPlan, cancel: threading.Event | None, log: EntityLogger) -> StoreSession:
    """The store's session; a partition run waits for another run of its entity to finish instead of failing.

    A backfill starts many partitions of one entity at once. Each holds the entity's lock
    from reading the committed state to publishing, so the files it carries over are those
    of the version it replaces; the others take their turn (``cancel`` stops the wait).
    """
    waiting = False
    while True:
        try:
            return store.session()
        except EntityBusy:
            if plan.time_window is None:
                raise
            if not waiting:
                log.info("waiting for another run of this entity to publish before loading %s", plan.time_window.key)
                waiting = True
            _stop_if_cancelled(cancel, plan)
            time.sleep(LOCK_POLL_SECONDS)


def with_checks(result: EntityResult, checks: list[CheckResult]) -> EntityResult:
    """The result with its check verdicts; a failed ERROR check fails it (its data stays published)."""
    message = failed_checks_message(checks, published=result.published)
    if message is None:
        return replace(result, checks=tuple(checks))
    return replace(result, checks=tuple(checks), status="failed", error=message, error_type="CheckFailed")


_END = object()


class _ReadFailed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _pump(
    batches: Iterable[Any],
    writer: StoreWriter,
    tracker: WatermarkTracker | None,
    plan: EntityPlan,
    started: float,
    progress: ProgressCallback | None,
    log: EntityLogger,
    cancel: threading.Event | None = None,
) -> tuple[int, pa.Schema | None]:
    """Feed the writer from a reader thread through a bounded queue; return rows and schema.

    The bound is on batches the reader has *made* but the writer has not yet taken:
    the reader takes a slot before it asks the home for the next batch, and the
    writer gives the slot back when it takes a batch. A plain ``Queue(maxsize)``
    would let the reader decode one more batch while it waits to put it, so
    ``queue_size`` batches would really be ``queue_size + 1`` in memory.
    """
    slots = threading.Semaphore(plan.flow_config.queue_size)
    handoff: queue.SimpleQueue[Any] = queue.SimpleQueue()
    stop = threading.Event()

    def take_slot() -> bool:
        while not stop.is_set():
            if slots.acquire(timeout=0.1):
                return True
        return False

    def read() -> None:
        iterator = iter(batches)
        try:
            while take_slot():
                try:
                    batch = next(iterator)
                except StopIteration:
                    handoff.put(_END)
                    return
                handoff.put(_to_arrow(batch))
                del batch  # hold no reference while waiting for the next slot
        except BaseException as error:  # noqa: BLE001  (handed to the writing thread, which raises it)
            handoff.put(_ReadFailed(error))
        finally:
            if isinstance(batches, Generator):
                batches.close()

    reader = threading.Thread(target=read, name=f"hygge-read-{plan.key}", daemon=True)
    reader.start()
    rows = 0
    schema: pa.Schema | None = None
    last_log = started
    try:
        while True:
            item = _next_item(handoff, cancel, plan)
            slots.release()
            if item is _END:
                break
            if isinstance(item, _ReadFailed):
                raise item.error
            schema = schema or item.schema
            writer.write(item)
            rows += item.num_rows
            if tracker is not None:
                tracker.update(item)
            now = time.perf_counter()
            if progress is not None:
                progress(Progress(plan.flow, plan.entity, rows, now - started))
            if now - last_log >= PROGRESS_LOG_SECONDS:
                last_log = now
                log.info("%s rows so far (%s rows/s)", f"{rows:,}", f"{rows / (now - started):,.0f}")
            del item  # the writer keeps what it buffers; do not pin the batch while waiting for the next
    except BaseException as error:
        stop.set()
        # An interrupt (SIGINT, SIGTERM) does not wait for a stalled source (a slow query, a hung share): the
        # reader never touches the writer, which the caller aborts now, and it ends at its next batch.
        reader.join(timeout=None if isinstance(error, Exception) else READER_GRACE_SECONDS)
        raise
    stop.set()
    reader.join()
    return rows, schema


def _next_item(handoff: queue.SimpleQueue[Any], cancel: threading.Event | None, plan: EntityPlan) -> Any:
    """The reader's next item; with a ``cancel`` event, wake every 0.1 s so a stalled source cannot delay a stop."""
    if cancel is None:
        return handoff.get()
    while True:
        _stop_if_cancelled(cancel, plan)
        try:
            return handoff.get(timeout=0.1)
        except queue.Empty:
            continue


def _stop_if_cancelled(cancel: threading.Event | None, plan: EntityPlan) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled(f"{plan.key}: stopped before publishing; previous version kept")


def _to_arrow(batch: Any) -> pa.Table | pa.RecordBatch:
    if isinstance(batch, (pa.Table, pa.RecordBatch)):
        return batch
    import polars as pl

    if isinstance(batch, pl.DataFrame):
        return batch.to_arrow()
    raise HyggeError(f"a home yielded {type(batch).__name__}; homes must yield Arrow tables, record batches or Polars frames")


def _next_state(
    previous: EntityState,
    run_id: str,
    mode: RunType,
    rows: int,
    schema: pa.Schema | None,
    tracker: WatermarkTracker | None,
    update: StateUpdate,
    *,
    label: str,
) -> EntityState:
    watermark = previous.watermark if mode == "incremental" else None
    if update.watermark is not None:
        watermark = update.watermark  # the home fixed it itself (and checked it against the stored one)
    else:
        seen = tracker.result() if tracker is not None else None
        if seen is not None:
            require_same_column(watermark, seen.column, seen.kind, label=label)
            if watermark is None or seen.as_python() > watermark.as_python():
                watermark = seen
    return EntityState(
        run_id=run_id,
        run_type=mode,
        committed_at=datetime.now(UTC),
        rows_last_run=rows,
        columns=[(f.name, str(f.type)) for f in schema] if schema is not None else list(previous.columns),
        watermark=watermark,
        home={**previous.home, **update.progress},
    )

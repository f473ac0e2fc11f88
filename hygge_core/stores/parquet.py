"""The Parquet store: a folder per entity, published atomically (see ``hygge_core.publish``).

Batches are buffered to a row-group target (about 1M rows or 128 MB) before they
are written, because one row group per small batch makes files 25–35% larger.
Files are named ``part-<run id>-<n>.parquet`` so names never collide across runs.

pyarrow encodes a row group's columns one after another on one thread, and does not
expose the C++ writer's ``use_threads``. With ``parallel_files`` above 1 the store keeps
that many files open at once, each a "lane" with its own encoding thread, and deals
row groups to the lanes in turn (pyarrow releases the GIL while it encodes).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import queue
import shutil
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field, field_validator

from hygge_core import publish, schema_change
from hygge_core.config import RunType
from hygge_core.errors import StoreError
from hygge_core.log import get_logger
from hygge_core.schema import conform
from hygge_core.state import EntityState
from hygge_core.store import PublishResult, Store, StoreConfig, StoreSession, StoreWriter
from hygge_core.stores import ownership, record
from hygge_core.templates import FolderPerEntity

if TYPE_CHECKING:
    import polars as pl

log = get_logger("store.parquet")


class ParquetStoreConfig(FolderPerEntity, StoreConfig):
    type: Literal["parquet"] = "parquet"
    path: str = Field(description="folder of the entity; `<path>/<entity>` unless the path contains {entity}")
    compression: Literal["zstd", "snappy", "gzip", "lz4", "brotli", "none"] = "zstd"
    compression_level: int | None = Field(default=None, description="codec level; the codec's default when unset")
    # 122,880 rows (DuckDB's row group): on TPC-H sf1 it was 1.2x faster than 1M-row groups at 0.6x the memory
    # (docs/benchmarks.md, "Row group size"); readers prune on finer statistics, and the writer holds less.
    row_group_rows: int = Field(default=122_880, ge=1, description="rows buffered per row group")
    row_group_bytes: int = Field(default=128 * 1024 * 1024, ge=1024, description="bytes buffered per row group")
    file_rows: int = Field(default=10_000_000, ge=1, description="start a new file after this many rows")
    dictionary: Literal["strings", "all", "none"] = Field(
        default="strings",
        description="which columns are dictionary-encoded: text and binary ones (default), every column, or none",
    )
    parallel_files: int | Literal["auto"] = Field(
        default=1,
        description=(
            "files written at once, each encoded on its own thread (auto: one per usable core); row groups are dealt "
            "to them in turn, so an entity of N or more row groups gets at least N files and up to N row groups are in "
            "memory instead of one; an entity of one row group still gets one file"
        ),
    )

    @field_validator("parallel_files")
    @classmethod
    def _at_least_one_file(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("must be at least 1 (or auto)")
        return value

    def describe(self) -> str:
        return f"parquet folder {self.path}"

    def owned_location(self) -> str | None:
        return self.path

    def lanes(self) -> int:
        """How many files are written at once: ``parallel_files``, with ``auto`` the cores this process may run on."""
        if self.parallel_files != "auto":
            return self.parallel_files
        return len(os.sched_getaffinity(0))  # hygge runs on Linux (the publish needs renameat2)


class ParquetStore(Store, type_name="parquet", config=ParquetStoreConfig):
    config: ParquetStoreConfig
    scannable = True

    @property
    def entity_dir(self) -> Path:
        return Path(self.config.path)

    @property
    def destination(self) -> str:
        return str(self.entity_dir)

    @property
    def public_uri(self) -> str:
        return self.entity_dir.absolute().as_uri()

    def read_state(self) -> EntityState:
        return read_state(self.entity_dir)

    def definition_state(self) -> EntityState:
        return self.read_state()

    def session(self) -> ParquetSession:
        return ParquetSession(self)

    def check_ownership(self) -> None:
        """The store-side rules of ``hygge_core.stores.ownership``; the entity's lock is not needed for them."""
        ownership.check_destination(self.entity_dir, project_root=self.context.project_root)
        ownership.check_not_symlink(publish.staging_root(self.entity_dir), what="the staging folder")
        ownership.check_owned(self.entity_dir)

    def check(self) -> str:
        self.check_ownership()
        parent = self.entity_dir.parent
        probe_root = parent
        while not probe_root.exists():
            probe_root = probe_root.parent
        if not os.access(probe_root, os.W_OK | os.X_OK):
            raise StoreError(f"{self.context.key}: cannot write under {probe_root}: permission denied")
        return f"can write under {probe_root}"

    def scan(self, state: EntityState) -> pl.LazyFrame | None:
        import polars as pl

        files = [str(self.entity_dir / name) for name in state.files]
        return pl.scan_parquet(files) if files else None


def read_state(entity_dir: Path) -> EntityState:
    state_file = entity_dir / publish.STATE_DIR / publish.STATE_FILE
    try:
        text = state_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return EntityState()
    except OSError as exc:
        raise StoreError(
            f"cannot read entity state {state_file}: {exc}; if the file was edited or damaged, move the entity folder "
            f"{entity_dir} aside and run a full drop to rebuild it"
        ) from exc
    return EntityState.from_json(text, where=str(state_file))


class ParquetSession(StoreSession):
    def __init__(self, store: ParquetStore) -> None:
        self.store = store
        entity_dir = store.entity_dir
        self._lock = publish.EntityLock(entity_dir, label=store.context.key)
        store.check_ownership()
        with store_errors(entity_dir, "prepare"):
            self._lock.acquire()
        try:
            with store_errors(entity_dir, "recover"):
                for action in publish.recover(entity_dir):
                    log.info("[%s] recovered a killed run: %s", store.context.key, action)
            ownership.check_owned(entity_dir)  # again: recovery may have put a version back
            self._state = read_state(entity_dir)
        except BaseException:
            self._lock.release()
            raise

    @property
    def state(self) -> EntityState:
        return self._state

    def writer(self, *, run_id: str, run_type: RunType) -> ParquetWriter:
        return ParquetWriter(self.store, run_id=run_id, incremental=run_type == "incremental", previous=self._state)

    def close(self) -> None:
        self._lock.release()


class ParquetWriter(StoreWriter):
    def __init__(self, store: ParquetStore, *, run_id: str, incremental: bool, previous: EntityState) -> None:
        self.config = store.config
        self.entity_dir = store.entity_dir
        self.run_id = run_id
        self.incremental = incremental
        self.partition = store.context.time_window.key if store.context.time_window is not None else None
        self._previous = previous
        # Only what the commit record lists is carried over, and only once it is checked. A partition run
        # carries every file but its own partition's: computed here, under the entity's lock (the session's).
        self._carried = record.carried_files(previous, partition=self.partition, entity=store.context.key) if incremental else []
        if incremental:
            record.check_listed_files(self.entity_dir, previous, entity=store.context.key)
        untracked = record.untracked_entries(self.entity_dir, previous)
        if untracked:
            shown = ", ".join(untracked[:10]) + (f" and {len(untracked) - 10} more" if len(untracked) > 10 else "")
            log.warning(
                "[%s] %s is not part of the entity (not in its commit record %s); left where it is, not loaded: %s",
                store.context.key,
                "an entry" if len(untracked) == 1 else f"{len(untracked)} entries",
                publish.STATE_DIR,
                shown,
            )
        self.entity = store.context.key
        self.schema_policy = store.context.schema_change
        self._version_schema = self._read_version_schema()
        with store_errors(self.entity_dir, "stage"):
            self.version = publish.start_version(self.entity_dir, run_id, carry=self._carried, keep=untracked)
        self.schema: pa.Schema | None = None
        self._buffer: list[pa.RecordBatch] = []
        self._buffered_rows = 0
        self._buffered_bytes = 0
        count = self.config.lanes()
        self._lanes = [_Lane(threaded=count > 1, name=f"hygge-encode-{index}") for index in range(count)]
        self._turn = 0  # the lane that gets the next row group
        self._new_files: list[Path] = []

    def _read_version_schema(self) -> pa.Schema | None:
        """The published version's schema, which an incremental run's files must share (its first file's)."""
        if not self._carried:
            return None
        first = self.entity_dir / self._carried[0]
        try:
            return pq.read_schema(first)
        except (OSError, pa.ArrowException) as exc:
            raise StoreError(
                f"cannot read the schema of {first}, a file of the published version: {exc}; rebuild the entity with a "
                f"full drop (hygge start --full-drop --entity {self.entity}). The destination is unchanged"
            ) from exc

    def _settle(self, source: pa.Schema) -> pa.Schema:
        return schema_change.settle(self._version_schema, source, policy=self.schema_policy, entity=self.entity)

    def write(self, data: pa.Table | pa.RecordBatch) -> None:
        if self.schema is None:
            self.schema = self._settle(data.schema)
        data = conform(data, self.schema)
        batches = data.to_batches() if isinstance(data, pa.Table) else [data]
        for batch in batches:
            if batch.num_rows == 0:
                continue
            self._buffer.append(batch)
            self._buffered_rows += batch.num_rows
            self._buffered_bytes += batch.nbytes
        if self._buffered_rows >= self.config.row_group_rows or self._buffered_bytes >= self.config.row_group_bytes:
            self._flush(final=False)

    def commit(self, state: EntityState, *, schema: pa.Schema | None) -> PublishResult:
        if self.schema is None and schema is not None:
            self.schema = self._settle(schema)
        with store_errors(self.entity_dir, "write"):
            if self._version_schema is not None and self.schema is not None and not self.schema.equals(self._version_schema):
                self._rewrite_carried()  # schema_change: evolve; one schema per version
            self._flush(final=True)
            if not self._new_files and not self.incremental and self.schema is not None:
                self._open_file(self._lanes[0])  # an empty full drop still publishes the schema
            for lane in self._lanes:
                self._close_file(lane)
            for lane in self._lanes:
                lane.finish()  # the last closes and fsyncs; a lane's error is raised here
        files = [*self._carried, *(str(p.relative_to(self.version)) for p in self._new_files)]
        sizes = {name: (self.version / name).stat().st_size for name in files}
        new_bytes = sum(p.stat().st_size for p in self._new_files)
        # Read back, not counted on the way in: the row_count check reconciles what the files hold.
        with store_errors(self.entity_dir, "read back"):
            new_rows = sum(pq.read_metadata(p).num_rows for p in self._new_files)
            # The footers of the carried files too: what a reader of the published folder sees in all.
            table_rows = new_rows + sum(pq.read_metadata(self.version / name).num_rows for name in self._carried)
        columns = [(f.name, str(f.type)) for f in self.schema] if self.schema is not None else state.columns
        tags = {name: self._previous.file_partitions[name] for name in self._carried if name in self._previous.file_partitions}
        if self.partition is not None:
            tags.update({str(p.relative_to(self.version)): self.partition for p in self._new_files})
        final_state = state.model_copy(update={"files": files, "sizes": sizes, "columns": columns, "file_partitions": tags})
        with store_errors(self.entity_dir, "publish"):
            publish.write_commit_record(self.version, final_state.model_dump_json(indent=2))
            publish.publish_version(self.version, self.entity_dir)
        return PublishResult(
            files=len(self._new_files),
            bytes=new_bytes,
            rows=new_rows,
            destination=str(self.entity_dir),
            table_rows=table_rows,
            uri=self.entity_dir.absolute().as_uri(),
        )

    def _rewrite_carried(self) -> None:
        """Rewrite the version's existing files to the evolved schema, a row group at a time, inside the staged version."""
        assert self.schema is not None
        compression = None if self.config.compression == "none" else self.config.compression
        for relative in self._carried:
            target = self.version / relative
            target.unlink()  # the hard link to the published file, which stays as it is
            source = pq.ParquetFile(self.entity_dir / relative, pre_buffer=False)
            try:
                with pq.ParquetWriter(
                    target,
                    self.schema,
                    compression=compression,
                    compression_level=self.config.compression_level,
                    use_dictionary=dictionary_columns(self.schema, self.config.dictionary),
                ) as writer:
                    for index in range(source.num_row_groups):
                        writer.write_table(conform(source.read_row_group(index), self.schema))
            finally:
                source.close()
            with open(target, "rb") as handle:
                os.fsync(handle.fileno())

    def abort(self) -> None:
        """Stop every lane, then remove the staged version; an interrupt while one lane stops does not skip the others."""
        interrupted: BaseException | None = None
        for lane in self._lanes:
            try:
                lane.discard()  # waits for its encoding thread: nothing may write into the version while it is removed
            except BaseException as error:  # noqa: BLE001  (raised again once every lane was asked to stop)
                interrupted = interrupted or error
        shutil.rmtree(self.version, ignore_errors=True)
        if interrupted is not None:
            raise interrupted

    def _flush(self, *, final: bool) -> None:
        """Hand full row groups from the buffer to the lanes in turn; with ``final``, whatever is left too.

        A row group is ``row_group_rows`` rows (fewer when ``row_group_bytes`` is reached
        first, or the lane's file ends at ``file_rows``); rows beyond it stay buffered for
        the next one, so input batch sizes never leak into the output layout. Slicing and
        ``from_batches`` are zero-copy: the only copy is the encoder's. Before buffering the
        next row group the writer waits for the lane that will take it, so with N lanes at
        most N row groups are in memory (N - 1 encoding, one buffering), as one is today.
        """
        target = self.config.row_group_rows
        with store_errors(self.entity_dir, "write"):
            while self._buffer and (
                final or self._buffered_rows >= target or self._buffered_bytes >= self.config.row_group_bytes
            ):
                lane = self._lanes[self._turn]
                self._turn = (self._turn + 1) % len(self._lanes)
                if lane.writer is None:
                    self._open_file(lane)
                writer = lane.writer
                assert writer is not None
                take = min(target, self.config.file_rows - lane.rows, self._buffered_rows)
                table = pa.Table.from_batches(self._buffer, schema=self.schema)
                tasks = [functools.partial(writer.write_table, table.slice(0, take), row_group_size=take)]
                lane.rows += take
                if lane.rows >= self.config.file_rows:
                    tasks.append(self._detach(lane))  # the file is full: the same lane task closes it
                lane.run(*tasks)
                rest = [batch for batch in table.slice(take).to_batches() if batch.num_rows]
                left = self._buffered_rows - take
                self._buffered_bytes = self._buffered_bytes * left // self._buffered_rows if left else 0
                self._buffer, self._buffered_rows = rest, left
                del table, tasks
                # The next lane must be free before the next row group is buffered: N row groups in memory, not N + 1.
                self._lanes[self._turn].wait()

    def _open_file(self, lane: _Lane) -> None:
        path = self.version / f"part-{self.run_id}-{len(self._new_files):05d}.parquet"
        compression = None if self.config.compression == "none" else self.config.compression
        assert self.schema is not None
        lane.wait()  # its previous file's close: one task at a time per lane
        lane.writer = pq.ParquetWriter(
            path,
            self.schema,
            compression=compression,
            compression_level=self.config.compression_level,
            use_dictionary=dictionary_columns(self.schema, self.config.dictionary),
        )
        lane.path = path
        lane.rows = 0
        self._new_files.append(path)

    def _close_file(self, lane: _Lane) -> None:
        if lane.writer is not None:
            lane.run(self._detach(lane))

    def _detach(self, lane: _Lane) -> Callable[[], None]:
        """Take the lane's open file off it; the returned task closes it (footer, then fsync) on the lane's thread."""
        writer, path = lane.writer, lane.path
        assert writer is not None and path is not None
        lane.writer, lane.path, lane.closing = None, None, writer

        def close() -> None:
            writer.close()
            lane.closing = None
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())

        return close


class _Lane:
    """One output file at a time, encoded on its own thread when the writer has several lanes.

    A lane holds at most one task (a row group to encode, or its file's close): ``run``
    first waits for the previous one, and raises its error (ENOSPC, EFBIG ...) in the
    writer's thread, where ``store_errors`` turns it into a ``StoreError``. With one lane
    there is no thread: tasks run at once on the writer's thread, as they always did.

    The thread is a daemon of the lane's own, not a ``ThreadPoolExecutor`` worker: an
    interrupted step process once waited forever at exit for an executor thread that no
    shutdown had reached, so ``hygge start`` never returned after Ctrl-C. ``finish`` and
    ``discard`` still stop and join it, so no file is written once they return.
    """

    def __init__(self, *, threaded: bool, name: str) -> None:
        self._tasks: queue.SimpleQueue[tuple[Future[None], tuple[Callable[[], None], ...]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True) if threaded else None
        self._pending: Future[None] | None = None
        self.writer: pq.ParquetWriter | None = None
        self.path: Path | None = None
        self.rows = 0  # rows handed to the open file
        self.closing: pq.ParquetWriter | None = None  # a full file whose close is queued behind its last row group

    def _serve(self) -> None:
        while (item := self._tasks.get()) is not None:
            future, tasks = item
            try:
                _run_all(tasks)
            except BaseException as error:  # noqa: BLE001  (raised again in the writer's thread by ``wait``)
                future.set_exception(error)
            else:
                future.set_result(None)

    def run(self, *tasks: Callable[[], None]) -> None:
        """Run ``tasks`` one after the other, on the lane's thread once its previous task is done."""
        self.wait()
        if self._thread is None:
            _run_all(tasks)
            return
        if not self._thread.is_alive():
            self._thread.start()  # raises if the lane was already stopped: nothing runs after finish or discard
        future: Future[None] = Future()
        self._tasks.put((future, tasks))
        self._pending = future

    def wait(self) -> None:
        """Wait for the pending task; its error is raised here, once."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _stop(self) -> None:
        """Let the thread finish its task, then end it (it takes no task after this)."""
        if self._thread is not None and self._thread.is_alive():
            self._tasks.put(None)
            self._thread.join()

    def finish(self) -> None:
        """Wait for the last task and stop the thread (the commit's end)."""
        try:
            self.wait()
        finally:
            self._stop()

    def discard(self) -> None:
        """Stop the thread once its running task ends, then close the open files, ignoring errors: the run already failed.

        Stopping comes first, also when an interrupt left ``wait`` before its task ended: no file
        may be closed while the thread still writes it, nor the version removed under it.
        """
        self._stop()
        with contextlib.suppress(Exception):
            self.wait()
        for writer in (self.writer, self.closing):
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.close()
        self.writer = self.closing = None


def _run_all(tasks: tuple[Callable[[], None], ...]) -> None:
    for task in tasks:
        task()


def dictionary_columns(schema: pa.Schema, mode: str) -> bool | list[str]:
    """The columns to dictionary-encode, as ``ParquetWriter(use_dictionary=...)`` takes them.

    Dictionary encoding pays off for repeated text; on numbers and timestamps
    (mostly high-cardinality) it costs hashing every value and then falls back to
    plain pages anyway. On the benchmark's mixed table, text-only dictionaries cut
    encoding CPU by about a fifth and made the file 8% smaller than pyarrow's
    dictionary-everything default (docs/benchmarks.md).
    """
    if mode == "all":
        return True
    if mode == "none":
        return False
    return [
        field.name
        for field in schema
        if pa.types.is_string(field.type)
        or pa.types.is_large_string(field.type)
        or pa.types.is_string_view(field.type)
        or pa.types.is_binary(field.type)
        or pa.types.is_large_binary(field.type)
        or pa.types.is_binary_view(field.type)
        or pa.types.is_dictionary(field.type)
    ]


@contextlib.contextmanager
def store_errors(entity_dir: Path, action: str) -> Iterator[None]:
    """Turn OS errors while writing an entity into ``StoreError`` messages that say what to do."""
    try:
        yield
    except OSError as exc:
        raise _store_error(exc, entity_dir, action) from exc


def _store_error(exc: OSError, entity_dir: Path, action: str) -> StoreError:
    where = exc.filename or entity_dir
    unchanged = "the destination is unchanged"
    if exc.errno == errno.ENOSPC:
        return StoreError(f"disk full: cannot {action} {where}; free space on that filesystem and run again; {unchanged}")
    if exc.errno == errno.EFBIG:
        return StoreError(
            f"file too large: cannot {action} {where} (a filesystem or ulimit file-size limit); lower file_rows; {unchanged}"
        )
    if exc.errno == errno.EROFS:
        return StoreError(
            f"read-only filesystem: cannot {action} {where}; mount it read-write or point store.path elsewhere; {unchanged}"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return StoreError(f"permission denied: cannot {action} {where}; give this user write access to {entity_dir.parent}")
    return StoreError(f"cannot {action} {where}: {exc.strerror or exc}")

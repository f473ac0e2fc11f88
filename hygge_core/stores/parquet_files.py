"""Parquet data files written in row groups, dealt to several files encoded at once ("lanes").

Both lake stores write their data files here: the Parquet store into its staged
version, the Delta store into a run's staging folder before it commits them.

Batches are buffered to a row-group target (about 122,880 rows or 128 MB) before they
are written, because one row group per small batch makes files 25–35% larger.
pyarrow encodes a row group's columns one after another on one thread, and does not
expose the C++ writer's ``use_threads``. With more than one lane the writer keeps that
many files open at once, each with its own encoding thread, and deals row groups to
them in turn (pyarrow releases the GIL while it encodes). Every file is fsynced when
it is closed, before anything may publish it.

Errors are raised as they come (``OSError`` from the disk included): the store that
owns the files says what they mean for its destination.
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.parquet as pq

ParquetCompression = Literal["zstd", "snappy", "gzip", "lz4", "brotli", "none"]
DictionaryMode = Literal["strings", "all", "none"]


@dataclass(frozen=True)
class FileLayout:
    """How data files are encoded and cut: one description for every store that writes them."""

    compression: ParquetCompression = "zstd"
    compression_level: int | None = None
    dictionary: DictionaryMode = "strings"
    row_group_rows: int = 122_880
    row_group_bytes: int = 128 * 1024 * 1024
    file_rows: int = 10_000_000
    lanes: int = 1

    def open_writer(self, sink: Path | pa.NativeFile, schema: pa.Schema) -> pq.ParquetWriter:
        return pq.ParquetWriter(
            sink,
            schema,
            compression=None if self.compression == "none" else self.compression,
            compression_level=self.compression_level,
            use_dictionary=dictionary_columns(schema, self.dictionary),
        )


class ParquetFiles:
    """Buffers batches into row groups and deals them to ``layout.lanes`` files at a time.

    ``new_path(n)`` names the n-th file (n counts from 0 across lanes). With N lanes at
    most N row groups are in memory (N - 1 encoding, one buffering), as with one lane.
    """

    def __init__(self, schema: pa.Schema, layout: FileLayout, new_path: Callable[[int], Path]) -> None:
        self.schema = schema
        self.layout = layout
        self._new_path = new_path
        self._buffer: list[pa.RecordBatch] = []
        self._buffered_rows = 0
        self._buffered_bytes = 0
        count = layout.lanes
        self._lanes = [_Lane(threaded=count > 1, name=f"hygge-encode-{index}") for index in range(count)]
        self._turn = 0  # the lane that gets the next row group
        self.files: list[Path] = []

    def write(self, batches: list[pa.RecordBatch]) -> None:
        """Buffer ``batches`` (already of ``schema``) and hand over the row groups they complete."""
        for batch in batches:
            if batch.num_rows == 0:
                continue
            self._buffer.append(batch)
            self._buffered_rows += batch.num_rows
            self._buffered_bytes += batch.nbytes
        if self._buffered_rows >= self.layout.row_group_rows or self._buffered_bytes >= self.layout.row_group_bytes:
            self._flush(final=False)

    def close(self, *, at_least_one: bool) -> list[Path]:
        """Write what is buffered, close (and fsync) every file and stop the lanes; returns the files.

        ``at_least_one`` writes an empty file when no row came, so the schema is still published.
        """
        self._flush(final=True)
        if not self.files and at_least_one:
            self._open_file(self._lanes[0])
        for lane in self._lanes:
            if lane.writer is not None:
                lane.run(self._detach(lane))
        for lane in self._lanes:
            lane.finish()  # the last closes and fsyncs; a lane's error is raised here
        return self.files

    def discard(self) -> None:
        """Stop every lane and close its files, ignoring their errors (the run already failed).

        An interrupt while one lane stops does not skip the others; it is raised once every
        lane was asked to stop, so nothing writes into the files once this returns or raises.
        The files themselves are the caller's to remove.
        """
        interrupted: BaseException | None = None
        for lane in self._lanes:
            try:
                lane.discard()
            except BaseException as error:  # noqa: BLE001  (raised again once every lane was asked to stop)
                interrupted = interrupted or error
        if interrupted is not None:
            raise interrupted

    def _flush(self, *, final: bool) -> None:
        """Hand full row groups from the buffer to the lanes in turn; with ``final``, whatever is left too.

        A row group is ``row_group_rows`` rows (fewer when ``row_group_bytes`` is reached
        first, or the lane's file ends at ``file_rows``); rows beyond it stay buffered for
        the next one, so input batch sizes never leak into the output layout. Slicing and
        ``from_batches`` are zero-copy: the only copy is the encoder's. Before buffering the
        next row group the writer waits for the lane that will take it.
        """
        target = self.layout.row_group_rows
        while self._buffer and (final or self._buffered_rows >= target or self._buffered_bytes >= self.layout.row_group_bytes):
            lane = self._lanes[self._turn]
            self._turn = (self._turn + 1) % len(self._lanes)
            if lane.writer is None:
                self._open_file(lane)
            writer = lane.writer
            assert writer is not None
            take = min(target, self.layout.file_rows - lane.rows, self._buffered_rows)
            table = pa.Table.from_batches(self._buffer, schema=self.schema)
            tasks = [functools.partial(writer.write_table, table.slice(0, take), row_group_size=take)]
            lane.rows += take
            if lane.rows >= self.layout.file_rows:
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
        path = self._new_path(len(self.files))
        lane.wait()  # its previous file's close: one task at a time per lane
        # The lane opens the file itself: pyarrow's writer leaves the file it opened open when its close
        # fails (ENOSPC on the footer), and an unlinked file that stays open keeps its space on disk.
        sink = pa.OSFile(str(path), "wb")
        try:
            lane.writer = self.layout.open_writer(sink, self.schema)
        except BaseException:
            sink.close()
            raise
        lane.sink = sink
        lane.path = path
        lane.rows = 0
        self.files.append(path)

    def _detach(self, lane: _Lane) -> Callable[[], None]:
        """Take the lane's open file off it; the returned task closes it (footer, then fsync) on the lane's thread."""
        writer, sink, path = lane.writer, lane.sink, lane.path
        assert writer is not None and sink is not None and path is not None
        lane.writer, lane.sink, lane.path, lane.closing = None, None, None, (writer, sink)

        def close() -> None:
            try:
                writer.close()
            finally:
                sink.close()
            lane.closing = None
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())

        return close


class _Lane:
    """One output file at a time, encoded on its own thread when the writer has several lanes.

    A lane holds at most one task (a row group to encode, or its file's close): ``run``
    first waits for the previous one, and raises its error (ENOSPC, EFBIG ...) in the
    writer's thread, where the store turns it into a ``StoreError``. With one lane
    there is no thread: tasks run at once on the writer's thread.

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
        self.sink: pa.NativeFile | None = None  # the open file the writer writes to
        self.path: Path | None = None
        self.rows = 0  # rows handed to the open file
        # a full file whose close is queued behind its last row group
        self.closing: tuple[pq.ParquetWriter, pa.NativeFile] | None = None

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
        may be closed while the thread still writes it, nor removed under it.
        """
        self._stop()
        with contextlib.suppress(Exception):
            self.wait()
        open_files = [self.closing] if self.closing is not None else []
        if self.writer is not None and self.sink is not None:
            open_files.append((self.writer, self.sink))
        for writer, sink in open_files:
            with contextlib.suppress(Exception):
                writer.close()
            with contextlib.suppress(Exception):
                sink.close()  # also when the writer's close failed: the file must not stay open
        self.writer = self.sink = self.closing = None


def _run_all(tasks: tuple[Callable[[], None], ...]) -> None:
    for task in tasks:
        task()


def usable_cores() -> int:
    """The cores this process may run on (hygge runs on Linux: the publish needs renameat2)."""
    return len(os.sched_getaffinity(0))


def dictionary_columns(schema: pa.Schema, mode: DictionaryMode) -> bool | list[str]:
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

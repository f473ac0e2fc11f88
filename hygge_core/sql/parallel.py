"""Read one table's key ranges at once over several pooled connections, merged into one bounded stream.

One ODBC result stream is bound by the driver's fetch and conversion on about
one core; reading disjoint key ranges over separate connections lets the
server and the driver work on several cores. Each range reader runs on its own
thread with its own connection and puts batches on one bounded queue; the
caller's iterator takes them in arrival order. Memory stays bounded: at most
``readers`` batches wait in the queue and each reader holds one more while it
waits for room.

The first reader uses the connection the home already holds (catalog, MIN/MAX,
COUNT were read on it). The others borrow from the pool without waiting: when
the pool is busy (other entities, a small ``pool_size``) fewer readers run and
each takes the next unread range, so a partitioned read never waits on the
pool and cannot deadlock against other entities. At most
``min(ranges, pool.size)`` connections are used.

The first failure wins: it is raised to the caller unchanged (already classified
transient or not by the connection), the other readers stop at their next batch,
and a connection left in the middle of a result is marked broken so the pool
closes it instead of lending it out with a half-read cursor.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections import deque
from collections.abc import Callable, Generator, Sequence

import pyarrow as pa

from hygge_core.log import get_logger
from hygge_core.sql.connection import ReadOptions, SqlConnection
from hygge_core.sql.dialect import KeyRange
from hygge_core.sql.pool import ConnectionPool, PoolExhausted

log = get_logger("sql.parallel")

RangeReader = Callable[[SqlConnection, KeyRange], Generator[pa.RecordBatch, None, None]]
_DONE = object()
_PUT_POLL_SECONDS = 0.1


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ranges(
    pool: ConnectionPool,
    first: SqlConnection,
    ranges: Sequence[KeyRange],
    read_range: RangeReader,
    *,
    label: str,
    readers: int | None = None,
) -> Generator[pa.RecordBatch, None, None]:
    """Every batch of every range, each range read exactly once, over up to ``min(len(ranges), pool.size, readers)`` connections."""
    readers = min(len(ranges), pool.size, readers or pool.size)
    if readers <= 1:
        for key_range in ranges:
            yield from read_range(first, key_range)
        return

    pending = deque(ranges)
    pending_lock = threading.Lock()
    merged: queue.Queue[object] = queue.Queue(maxsize=readers)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                merged.put(item, timeout=_PUT_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def next_range() -> KeyRange | None:
        with pending_lock:
            return pending.popleft() if pending else None

    def drain(connection: SqlConnection) -> None:
        while (key_range := next_range()) is not None:
            batches = read_range(connection, key_range)
            try:
                for batch in batches:
                    if not put(batch):
                        connection.broken = True  # left mid-result: never lend this cursor state out again
                        return
            finally:
                batches.close()  # ends the driver's statement now, on this thread, not at garbage collection

    def work(own: SqlConnection | None) -> None:
        try:
            if own is not None:
                try:
                    drain(own)
                except BaseException:
                    own.broken = True
                    raise
                return
            try:
                borrowed = pool.acquire(timeout=0)
            except PoolExhausted:
                log.info("%s: the pool has no free connection; the other range readers take this one's ranges", label)
                return
            try:
                drain(borrowed)
            except BaseException:
                borrowed.broken = True
                raise
            finally:
                pool.release(borrowed)
        except BaseException as error:  # noqa: BLE001  (handed to the consuming thread, which raises it)
            put(_Failed(error))
        finally:
            put(_DONE)

    threads = [
        threading.Thread(target=work, args=(first if index == 0 else None,), name=f"hygge-range-{index}-{label}", daemon=True)
        for index in range(readers)
    ]
    for thread in threads:
        thread.start()
    finished = 0
    try:
        while finished < readers:
            item = merged.get()
            if item is _DONE:
                finished += 1
                continue
            if isinstance(item, _Failed):
                raise item.error
            assert isinstance(item, pa.RecordBatch)
            yield item
            del item
    finally:
        stop.set()
        for thread in threads:
            thread.join()


SHARED_BUDGET_FLOOR_BYTES = 1024 * 1024


def shared_budget(options: ReadOptions, readers: int) -> ReadOptions:
    """Range readers share ``max_bytes_per_batch``, so a parallel read holds about the driver memory of one stream.

    Measured on TPC-H lineitem with the native reader: two readers at 16 MiB each peaked 100 MiB above two at 4 MiB,
    at the same speed. Never below 1 MiB (or the configured bound when it is smaller): a batch must hold a row.
    """
    if readers <= 1:
        return options
    floor = min(options.max_bytes_per_batch, SHARED_BUDGET_FLOOR_BYTES)
    return dataclasses.replace(options, max_bytes_per_batch=max(floor, options.max_bytes_per_batch // readers))


__all__ = ["read_ranges", "shared_budget"]

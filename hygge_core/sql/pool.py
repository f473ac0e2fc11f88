"""A plain, thread-safe, bounded connection pool, and the process-wide pools keyed by connection name.

Connections open lazily (the first ``acquire`` opens the first one) and never
exceed ``size`` open at once. ``acquire`` waits up to ``acquire_timeout`` for a
free slot, then fails with a message saying which pool was exhausted. A
connection idle for more than ``PING_AFTER_IDLE_SECONDS`` is pinged before it is
handed out again; one that failed (or is older than ``max_lifetime``) is closed,
never reused. Used the same way from
the CLI runner's threads and from Dagster (``hygge_core.sql.resource``).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator

from hygge_core.config import ConnectionConfig
from hygge_core.errors import HyggeError, TransientError
from hygge_core.log import get_logger
from hygge_core.sql.connection import SqlConnection, open_connection
from hygge_core.sql.odbc import build_target

log = get_logger("sql.pool")

PING_AFTER_IDLE_SECONDS = 2.0
"""A connection back in the pool for less than this is lent without a health check.

The check is a round trip per entity (``SELECT 1``: 1.8 ms on the TDS test server, half
of a login), which a flow of many small tables pays for every table; a connection
used a moment ago is as good as proven. Older idle ones may have been dropped by the
server or a firewall, so they are pinged.
"""


class PoolExhausted(TransientError):
    """No connection became free within the acquire timeout."""


class ConnectionPool:
    def __init__(
        self,
        name: str,
        factory: Callable[[], SqlConnection],
        *,
        size: int,
        acquire_timeout: float,
        max_lifetime: float,
        label: str | None = None,
    ) -> None:
        if size < 1:
            raise ValueError("pool size must be at least 1")
        self.name = name
        self.label = label or f"connection {name!r}"
        self.size = size
        self.acquire_timeout = acquire_timeout
        self.max_lifetime = max_lifetime
        self._factory = factory
        self._idle: deque[SqlConnection] = deque()
        self._open = 0  # idle + lent + being opened
        self._lent: set[int] = set()
        self._condition = threading.Condition()
        self._closed = False
        self.peak_open = 0
        self.opened_total = 0

    @property
    def open_count(self) -> int:
        with self._condition:
            return self._open

    def acquire(self, timeout: float | None = None) -> SqlConnection:
        """A healthy connection; the caller must ``release`` it (or use ``connection()``)."""
        deadline = time.monotonic() + (self.acquire_timeout if timeout is None else timeout)
        while True:
            candidate: SqlConnection | None = None
            with self._condition:
                while True:
                    if self._closed:
                        raise HyggeError(f"{self.label}: the connection pool is closed")
                    if self._idle:
                        candidate = self._idle.pop()  # most recently used: warmest, least likely timed out
                        break
                    if self._open < self.size:
                        self._open += 1
                        self.peak_open = max(self.peak_open, self._open)
                        break
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise PoolExhausted(
                            f"{self.label}: all {self.size} pooled connections stayed busy for "
                            f"{self.acquire_timeout if timeout is None else timeout:.0f}s; raise pool_size or acquire_timeout, "
                            "or run fewer entities at once"
                        )
                    self._condition.wait(remaining)
            if candidate is None:
                return self._open_new()
            if self._usable(candidate):
                self._lend(candidate)
                return candidate
            self._discard(candidate)

    def release(self, connection: SqlConnection) -> None:
        """Give a connection back; a broken or expired one is closed instead of pooled."""
        with self._condition:
            if id(connection) not in self._lent:
                raise HyggeError(f"{self.label}: released a connection this pool did not lend")
            self._lent.discard(id(connection))
            keep = not connection.broken and not self._closed and not self._expired(connection)
            if keep:
                connection.last_used_at = time.monotonic()
                self._idle.append(connection)
                self._condition.notify()
                return
        self._discard(connection)

    @contextlib.contextmanager
    def connection(self) -> Iterator[SqlConnection]:
        """Borrow a connection for a ``with`` block; an exception inside marks it broken."""
        connection = self.acquire()
        try:
            yield connection
        except BaseException:
            connection.broken = True
            raise
        finally:
            self.release(connection)

    def shrink(self, keep: int) -> None:
        """Close idle connections until at most ``keep`` are open (lent ones are never taken back).

        For callers that share ``size`` with other processes (a Dagster pool slot per running
        entity): once this process holds fewer slots, its idle connections must go too.
        """
        with self._condition:
            surplus = [self._idle.popleft() for _ in range(min(len(self._idle), max(0, self._open - keep)))]
        for connection in surplus:
            self._discard(connection)

    def close(self) -> None:
        """Close idle connections now and lent ones when they come back; further acquires fail."""
        with self._condition:
            self._closed = True
            idle = list(self._idle)
            self._idle.clear()
            self._condition.notify_all()
        for connection in idle:
            self._discard(connection)

    def _open_new(self) -> SqlConnection:
        try:
            connection = self._factory()
        except BaseException:
            with self._condition:
                self._open -= 1
                self._condition.notify()
            raise
        with self._condition:
            self.opened_total += 1
        self._lend(connection)
        return connection

    def _lend(self, connection: SqlConnection) -> None:
        with self._condition:
            self._lent.add(id(connection))

    def _usable(self, connection: SqlConnection) -> bool:
        if connection.broken or self._expired(connection):
            return False
        if time.monotonic() - connection.last_used_at < PING_AFTER_IDLE_SECONDS:
            return True  # it answered moments ago; if it died since, the read fails as transient and is retried
        try:
            connection.ping()
        except HyggeError as exc:
            log.info("%s: dropping a pooled connection that failed its health check: %s", self.label, exc)
            return False
        return True

    def _expired(self, connection: SqlConnection) -> bool:
        return time.monotonic() - connection.opened_at > self.max_lifetime

    def _discard(self, connection: SqlConnection) -> None:
        try:
            connection.close()
        finally:
            with self._condition:
                self._open -= 1
                self._condition.notify()


_pools: dict[tuple[str, str], ConnectionPool] = {}
_pools_lock = threading.Lock()


def pool_for(name: str, connection: ConnectionConfig) -> ConnectionPool:
    """The process-wide pool for connection ``name``; a changed configuration gets a new pool."""
    key = (name, _fingerprint(connection))
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            target = build_target(name, connection)
            pool = ConnectionPool(
                name,
                lambda: open_connection(target),
                size=connection.pool_size,
                acquire_timeout=connection.acquire_timeout.total_seconds(),
                max_lifetime=connection.max_lifetime.total_seconds(),
                label=target.label,
            )
            _pools[key] = pool
        return pool


def close_pool(name: str) -> None:
    with _pools_lock:
        chosen = [key for key in _pools if key[0] == name]
        pools = [_pools.pop(key) for key in chosen]
    for pool in pools:
        pool.close()


def shrink_pools(name: str, keep: int) -> None:
    """``ConnectionPool.shrink(keep)`` on this process's pools for connection ``name``."""
    with _pools_lock:
        pools = [pool for key, pool in _pools.items() if key[0] == name]
    for pool in pools:
        pool.shrink(keep)


def close_all() -> None:
    """Close every pool this process opened (end of a CLI run, Dagster resource teardown, tests)."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


def _fingerprint(connection: ConnectionConfig) -> str:
    material = (
        connection.model_dump_json()
        + "|"
        + "|".join(secret.get_secret_value() for secret in (connection.password, connection.client_secret) if secret is not None)
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()

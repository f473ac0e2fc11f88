"""The connection pool against the real server: bounded, no leaks (counted by PostgreSQL), clear exhaustion."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from hygge_core.config import ConnectionConfig
from hygge_core.errors import HyggeError
from hygge_core.sql import pool as pool_module
from hygge_core.sql.connection import SqlConnection
from hygge_core.sql.pool import ConnectionPool, PoolExhausted, pool_for


def config_for(pgdb, **overrides) -> ConnectionConfig:
    values = dict(
        type="postgres",
        server=pgdb.server.host,
        port=pgdb.server.port,
        database=pgdb.name,
        user=pgdb.user,
        password=pgdb.password,
        pool_size=3,
        login_timeout="5s",
        acquire_timeout="10s",
    )
    values.update(overrides)
    return ConnectionConfig.model_validate(values)


def test_thousand_cycles_with_injected_failures_leak_nothing(pgdb):
    pool = pool_for("pg", config_for(pgdb, pool_size=4))
    rng = random.Random(7)
    failures = 0

    def cycle(index: int) -> None:
        nonlocal failures
        try:
            with pool.connection() as connection:
                fate = rng.random()
                if fate < 0.1:
                    raise RuntimeError("injected failure inside the block")
                if fate < 0.15:
                    connection.execute("select pg_terminate_backend(pg_backend_pid())", during="injecting a dead connection")
                elif fate < 0.2:
                    connection.execute("select no_such_function()", during="injecting a bad statement")
                else:
                    assert connection.fetch_all("select 1 as one", during="test").to_pylist() == [{"one": 1}]
        except (RuntimeError, HyggeError):
            failures += 1

    with ThreadPoolExecutor(max_workers=8) as workers:
        list(workers.map(cycle, range(1000)))
    assert failures > 100  # the injections happened
    assert pool.peak_open <= 4
    assert pool.open_count <= 4
    assert pgdb.backends() == pool.open_count  # every connection the pool thinks is open, and no other
    pool.close()
    deadline = time.monotonic() + 10
    while pgdb.backends() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pgdb.backends() == 0
    assert pool.open_count == 0


def test_never_exceeds_size_and_exhaustion_times_out_clearly(pgdb):
    pool = pool_for("pg", config_for(pgdb, pool_size=2, acquire_timeout="0.5s"))
    first, second = pool.acquire(), pool.acquire()
    started = time.monotonic()
    with pytest.raises(PoolExhausted, match=r"connection 'pg' .*all 2 pooled connections stayed busy.*raise pool_size"):
        pool.acquire()
    assert 0.4 < time.monotonic() - started < 5
    assert pgdb.backends() == 2
    pool.release(first)
    third = pool.acquire()  # the freed one, reused, not a new connection
    assert third is first and pool.opened_total == 2
    pool.release(second)
    pool.release(third)


def test_waiters_get_connections_as_they_are_released(pgdb):
    pool = pool_for("pg", config_for(pgdb, pool_size=2))
    seen_open = []

    def work(_: int) -> None:
        with pool.connection() as connection:
            connection.fetch_all("select pg_sleep(0.01)", during="test")
            seen_open.append(pgdb.backends())

    with ThreadPoolExecutor(max_workers=6) as workers:
        list(workers.map(work, range(12)))
    assert max(seen_open) <= 2 and pool.peak_open == 2


def test_expired_and_broken_connections_are_closed_not_reused(pgdb):
    pool = pool_for("pg", config_for(pgdb, pool_size=1, max_lifetime="0.2s"))
    with pool.connection() as first:
        pass
    time.sleep(0.3)
    with pool.connection() as second:
        assert second is not first
    pgdb.server.psql(f"select pg_terminate_backend(pid) from pg_stat_activity where usename = '{pgdb.user}'")
    second.last_used_at -= pool_module.PING_AFTER_IDLE_SECONDS  # idle long enough to be checked before it is lent
    with pool.connection() as third:  # health check finds the killed one dead and opens another
        assert third is not second
        assert third.fetch_all("select 2 as two", during="test").to_pylist() == [{"two": 2}]
    assert pool.opened_total == 3


def test_closed_pool_refuses_and_closes_returning_connections(pgdb):
    pool = pool_for("pg", config_for(pgdb))
    lent = pool.acquire()
    pool.close()
    with pytest.raises(HyggeError, match="pool is closed"):
        pool.acquire()
    pool.release(lent)
    assert pool.open_count == 0


class FakeConnection(SqlConnection):
    """Only for the thread-safety test below, which needs no server: counts opens and closes."""

    def __init__(self, ledger: dict[str, int], lock: threading.Lock) -> None:
        self.opened_at = self.last_used_at = time.monotonic()
        self.broken = False
        self._ledger, self._lock = ledger, lock
        with lock:
            ledger["open"] += 1
            ledger["peak"] = max(ledger["peak"], ledger["open"])

    def read_batches(self, *args, **kwargs):  # pragma: no cover - not used
        return iter(())

    _driver = _connect = None  # pragma: no cover - __init__ above opens nothing

    def execute(self, statement: str, *, during: str) -> None:
        if random.random() < 0.05:
            raise HyggeError("ping failed")

    def close(self) -> None:
        with self._lock:
            self._ledger["open"] -= 1


def test_pool_bookkeeping_under_contention_and_factory_failures():
    ledger = {"open": 0, "peak": 0}
    lock = threading.Lock()
    calls = {"n": 0}

    def factory():
        with lock:
            calls["n"] += 1
            fail = calls["n"] % 7 == 0
        if fail:
            raise HyggeError("cannot connect (injected)")
        return FakeConnection(ledger, lock)

    pool = ConnectionPool("fake", factory, size=3, acquire_timeout=30, max_lifetime=3600)

    def cycle(_: int) -> None:
        try:
            with pool.connection() as connection:
                if random.random() < 0.1:
                    connection.broken = True
        except HyggeError:
            pass

    with ThreadPoolExecutor(max_workers=10) as workers:
        list(workers.map(cycle, range(3000)))
    assert ledger["peak"] <= 3
    pool.close()
    assert ledger["open"] == 0 and pool.open_count == 0


def test_a_connection_used_a_moment_ago_is_lent_without_a_round_trip(pgdb, monkeypatch):
    """The health check costs a round trip per entity; a connection back for under PING_AFTER_IDLE_SECONDS skips it."""
    pool = pool_for("pg", config_for(pgdb))
    pings: list[SqlConnection] = []
    monkeypatch.setattr(SqlConnection, "ping", lambda self: pings.append(self))
    with pool.connection() as first:
        pass
    with pool.connection() as again:
        assert again is first
    assert pings == []  # released a moment ago: lent as it is
    first.last_used_at -= pool_module.PING_AFTER_IDLE_SECONDS
    with pool.connection() as later:
        assert later is first
    assert pings == [first]  # idle longer: checked first

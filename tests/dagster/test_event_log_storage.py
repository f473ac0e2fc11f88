"""hygge's SQLite event log storage: Dagster's files and behaviour, with connections kept open.

What a broken version would get wrong, each checked here against Dagster's own storage on the same folder:
events in other files or missing; a running run's events invisible to Dagster's file watcher (the webserver's
live log) until the run ends; a forked child closing or reusing its parent's connection; a wipe leaving a
connection on a deleted database.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster import DagsterInstance, EventLogEntry
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from hygge_cli.instance import open_instance, project_dagster_home
from hygge_dagster.event_log_storage import PooledSqliteEventLogStorage, bound_to_home

CHECKS = ("row_count", "not_empty")


@dg.multi_asset(
    specs=[dg.AssetSpec(["lake", name]) for name in ("a", "b", "c")],
    check_specs=[dg.AssetCheckSpec(check, asset=["lake", name]) for name in ("a", "b", "c") for check in CHECKS],
)
def three_tables(context):
    for key in sorted(context.selected_asset_keys):
        yield dg.MaterializeResult(asset_key=key, metadata={"dagster/row_count": len(key.path[-1]) * 10})
        for check in CHECKS:
            yield dg.AssetCheckResult(asset_key=key, check_name=check, passed=check == "row_count")


def message(run_id: str, text: str) -> EventLogEntry:
    return EventLogEntry(
        error_info=None, level="INFO", user_message=text, run_id=run_id, timestamp=time.time(), step_key=None, job_name=None
    )


def messages(storage: SqliteEventLogStorage, run_id: str) -> list[str]:
    return [record.event_log_entry.user_message for record in storage.get_records_for_run(run_id).records]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "project").mkdir()
    return project_dagster_home(tmp_path / "project")


def test_a_project_home_records_runs_that_dagsters_own_storage_reads(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert bound_to_home(home)["event_log_storage"]["config"] == {"dagster_home": str(home.resolve()), "synchronous": "normal"}
    with open_instance(home) as instance:
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        result = dg.materialize([three_tables], instance=instance)
        assert result.success

    plain = SqliteEventLogStorage(str(home / "history" / "runs"))
    materialized = plain.get_event_records(dg.EventRecordsFilter(event_type=dg.DagsterEventType.ASSET_MATERIALIZATION))
    assert sorted(r.asset_key.path[-1] for r in materialized) == ["a", "b", "c"]
    assert {r.event_log_entry.asset_materialization.metadata["dagster/row_count"].value for r in materialized} == {10}
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # how the Dagster CLI and webserver find the instance
    with DagsterInstance.get() as again:
        assert isinstance(again.event_log_storage, PooledSqliteEventLogStorage)
        records = again.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey(["lake", "b"]), "not_empty"), limit=5
        )
        assert [r.status.value for r in records] == ["FAILED"]
        assert again.get_run_by_id(result.run_id).is_success
    plain.dispose()

    monkeypatch.delenv("DAGSTER_HOME")
    with pytest.raises(dg.DagsterInvariantViolationError, match=r"dagster.yaml: event_log_storage .*set DAGSTER_HOME"):
        DagsterInstance.from_config(str(home)).event_log_storage  # noqa: B018


def test_each_write_wakes_dagsters_watcher_on_the_run_database_file(home: Path, tmp_path: Path) -> None:
    """The webserver follows a running run by watching ``<run>.db``; writes that reach only the WAL must still wake it."""
    with open_instance(home) as instance:
        storage = instance.event_log_storage
        storage.store_event(message("r1", "first"))
        storage.store_event(message("r1", "second"))
        reader = SqliteEventLogStorage(str(home / "history" / "runs"))  # Dagster's own storage, another connection
        assert messages(reader, "r1") == ["first", "second"]  # read through the WAL while the writer stays open
        reader.dispose()

        seen: list[str] = []
        arrived = threading.Event()

        def on_event(entry: EventLogEntry, cursor: str) -> None:
            seen.append(entry.user_message)
            if entry.user_message == "third":
                arrived.set()

        watcher = SqliteEventLogStorage(str(home / "history" / "runs"))  # the webserver's default watcher
        watcher.watch("r1", None, on_event)
        try:
            storage.store_event(message("r1", "third"))
            assert arrived.wait(60), f"Dagster's watcher saw {seen} while the writer's connection stayed open"
        finally:
            watcher.end_watch("r1", on_event)
            watcher.dispose()
        assert seen[-1] == "third"

    # Closed: the WAL is checkpointed into <run>.db, which alone holds every event (a copy of the file reads them all).
    assert not (home / "history" / "runs" / "r1.db-wal").exists()
    alone = tmp_path / "alone.db"
    shutil.copyfile(home / "history" / "runs" / "r1.db", alone)
    with sqlite3.connect(alone) as copy:
        stored = [row[0] for row in copy.execute("SELECT event FROM event_logs ORDER BY id")]
    assert len(stored) == 3 and '"third"' in stored[2]


def test_a_forked_child_opens_its_own_connection_and_leaves_the_parents_alone(home: Path) -> None:
    with open_instance(home) as instance:
        storage = instance.event_log_storage
        storage.store_event(message("forked", "parent before"))
        child = os.fork()
        if child == 0:  # pragma: no cover - the child's outcome is its exit code
            try:
                storage.store_event(message("forked", "child"))
                os._exit(0 if messages(storage, "forked") == ["parent before", "child"] else 3)
            except BaseException:
                os._exit(4)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        storage.store_event(message("forked", "parent after"))
        assert messages(storage, "forked") == ["parent before", "child", "parent after"]


def test_wipe_closes_connections_before_deleting_run_databases(home: Path) -> None:
    with open_instance(home) as instance:
        storage = instance.event_log_storage
        storage.store_event(message("old", "before the wipe"))
        storage.wipe()
        assert not (home / "history" / "runs" / "old.db").exists()
        storage.store_event(message("old", "after the wipe"))
        assert messages(storage, "old") == ["after the wipe"]
        assert messages(SqliteEventLogStorage(str(home / "history" / "runs")), "old") == ["after the wipe"]


def test_old_run_databases_are_closed_as_newer_ones_open(home: Path) -> None:
    with open_instance(home) as instance:
        storage = instance.event_log_storage
        for number in range(12):
            storage.store_event(message(f"run-{number}", f"event {number}"))
        assert len(storage._engines) <= 8 and "index" in storage._engines
        assert messages(storage, "run-0") == ["event 0"]


def test_a_batch_is_stored_whole_or_not_at_all(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_instance(home) as instance:
        storage = instance.event_log_storage
        storage.store_event_batch([message("batched", text) for text in ("one", "two", "three")])
        assert messages(storage, "batched") == ["one", "two", "three"]

        store_event = PooledSqliteEventLogStorage.store_event

        def failing_on_y(self: PooledSqliteEventLogStorage, event: EventLogEntry) -> None:
            if event.user_message == "y":
                raise RuntimeError("disk trouble")
            store_event(self, event)

        monkeypatch.setattr(PooledSqliteEventLogStorage, "store_event", failing_on_y)
        with pytest.raises(RuntimeError, match="disk trouble"):
            storage.store_event_batch([message("batched", text) for text in ("x", "y", "z")])
        monkeypatch.undo()
        assert messages(storage, "batched") == ["one", "two", "three"]  # "x" was rolled back with the batch
        storage.store_event(message("batched", "after"))
        assert messages(SqliteEventLogStorage(str(home / "history" / "runs")), "batched") == ["one", "two", "three", "after"]


def synchronous_of(storage: PooledSqliteEventLogStorage, shard: str) -> int:
    with storage._connect(shard) as connection:  # noqa: SLF001  (the connection the storage writes through)
        return connection.exec_driver_sql("PRAGMA synchronous").scalar_one()


def test_synchronous_is_what_the_settings_say_for_every_database(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """hygge's settings choose ``normal`` (1); Dagster's CLI (through $DAGSTER_HOME) opens the same; ``full`` (2) is kept."""
    with open_instance(home) as instance:
        storage = instance.event_log_storage
        storage.store_event(message("r1", "first"))
        assert storage.synchronous == "normal" and synchronous_of(storage, "r1") == 1 and synchronous_of(storage, "index") == 1
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as instance:
        assert synchronous_of(instance.event_log_storage, "r1") == 1

    settings = home / "dagster.yaml"
    settings.write_text(
        settings.read_text(encoding="utf-8").replace("synchronous: normal", "synchronous: full"), encoding="utf-8"
    )
    with open_instance(home) as instance:
        assert synchronous_of(instance.event_log_storage, "r1") == 2
        assert messages(instance.event_log_storage, "r1") == ["first"]

    settings.write_text(settings.read_text(encoding="utf-8").replace("synchronous: full", "synchronous: extra"), encoding="utf-8")
    with pytest.raises(dg.DagsterInvariantViolationError, match="synchronous is 'extra'; use one of full, normal"):
        open_instance(home)

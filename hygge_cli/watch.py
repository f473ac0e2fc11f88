"""Follow a Dagster run's event log while it executes, and tell the reporter.

``hygge start`` runs entities as one Dagster run (so the UI shows it afterwards); the
run's steps may be other processes, so the only shared truth is the instance's event
log. This watcher polls it and hands every entry to the same ``RunEventReader`` the
final report uses, with the reporter listening.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from dagster import DagsterInstance, RunsFilter

from hygge_cli.reporters import Reporter
from hygge_dagster.outcomes import EntityStep, RunEventReader

POLL_SECONDS = 0.5


class RunWatcher:
    def __init__(
        self, instance: DagsterInstance, *, tag: tuple[str, str], steps: Sequence[EntityStep], reporter: Reporter
    ) -> None:
        self.instance = instance
        self.tag = tag
        self.reader = RunEventReader(steps, listener=reporter)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hygge-run-watcher", daemon=True)
        self._run_id: str | None = None
        self._cursor: str | None = None

    def __enter__(self) -> RunWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.poll()  # whatever arrived after the last tick

    def _loop(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            self.poll()

    def poll(self) -> None:
        if self._run_id is None:
            runs = self.instance.get_runs(filters=RunsFilter(tags={self.tag[0]: self.tag[1]}), limit=1)
            if not runs:
                return
            self._run_id = runs[0].run_id
        connection = self.instance.get_records_for_run(self._run_id, cursor=self._cursor)
        self._cursor = connection.cursor
        for record in connection.records:
            self.reader.read(record.event_log_entry)

"""Follow a Dagster run's event log while it executes, and tell the reporter.

``hygge start`` runs entities as one Dagster run (so the UI shows it afterwards); the
run's steps may be other processes, so the only shared truth is the instance's event
log. This watcher polls it: step starts, progress lines, materialisations, check
evaluations, failures.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from dagster import AssetKey, DagsterEventType, DagsterInstance
from dagster._core.storage.dagster_run import RunsFilter

from hygge_core.cli.reporters import Reporter
from hygge_dagster import constants as c
from hygge_dagster.progress import parse_progress_line
from hygge_dagster.run import CheckOutcome, EntityOutcome

POLL_SECONDS = 0.5


class RunWatcher:
    def __init__(self, instance: DagsterInstance, *, tag: tuple[str, str], steps: Mapping[str, tuple[AssetKey, str]], reporter: Reporter) -> None:
        self.instance = instance
        self.tag = tag
        self.reporter = reporter
        self.entity_of_step = {step: entity for entity, (_, step) in steps.items()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hygge-run-watcher", daemon=True)
        self._run_id: str | None = None
        self._cursor: str | None = None
        self._metadata: dict[str, Mapping[str, Any]] = {}
        self._checks: dict[str, list[CheckOutcome]] = {}
        self._materialized: set[str] = set()
        self._attempts: dict[str, int] = {}

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
            self._handle(record.event_log_entry)

    def _handle(self, entry: Any) -> None:
        event = entry.dagster_event
        if event is None:
            parsed = parse_progress_line(entry.user_message or "")
            if parsed is not None:
                self.reporter.progress(*parsed)
            return
        entity = self.entity_of_step.get(event.step_key or "")
        if entity is None:
            return
        data = event.event_specific_data
        if event.event_type == DagsterEventType.STEP_START:
            self._attempts[entity] = self._attempts.get(entity, 0) + 1
            self.reporter.started(entity)
        elif event.event_type in (DagsterEventType.ASSET_MATERIALIZATION, DagsterEventType.ASSET_OBSERVATION):
            if event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
                self._materialized.add(entity)
                self._metadata[entity] = data.materialization.metadata
            else:
                self._metadata[entity] = data.asset_observation.metadata
        elif event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            self._checks.setdefault(entity, []).append(CheckOutcome(data.check_name, data.passed, data.severity.value, data.description))
        elif event.event_type == DagsterEventType.STEP_SUCCESS:
            self.reporter.finished(self._outcome(entity, "success" if entity in self._materialized else "skipped", None))
        elif event.event_type == DagsterEventType.STEP_FAILURE:
            error = data.user_failure_data.description if data.user_failure_data is not None and data.user_failure_data.description else None
            self.reporter.finished(self._outcome(entity, "failed", error or (data.error.message.strip() if data.error else "step failed")))

    def _outcome(self, entity: str, status: str, error: str | None) -> EntityOutcome:
        metadata = self._metadata.get(entity, {})

        def value(key: str, default: Any) -> Any:
            item = metadata.get(key)
            return default if item is None else item.value

        flow, _, name = entity.partition("/")
        return EntityOutcome(
            flow=flow,
            entity=name,
            asset_key="",
            status=status,
            rows=int(value(c.META_ROW_COUNT, 0)),
            rows_per_second=float(value(c.META_ROWS_PER_SECOND, 0.0)),
            seconds=float(value(c.META_DURATION, 0.0)),
            attempts=self._attempts.get(entity, 0),
            checks=tuple(self._checks.get(entity, [])),
            error=error,
        )

"""Each entity's outcome in a Dagster run, read from the run's event log in one place.

``hygge start`` shows a run live and then reports it; both views fold the same events
(step starts and retries, progress lines, materialisations, observations, check
evaluations, step failures) through ``RunEventReader``, so they can never disagree on
a status, a row count or an error message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from dagster import AssetKey, DagsterEventType, EventLogEntry

from hygge_core.checks import CheckResult, failed_checks_message
from hygge_dagster import constants as c
from hygge_dagster.progress import parse_progress_line

OutcomeStatus = Literal["success", "skipped", "failed", "interrupted", "not_run"]
"""``success``: published; ``skipped``: nothing new, destination unchanged; ``failed``: the step failed;
``interrupted``: a signal (or a termination from the UI) stopped the step, nothing was published;
``not_run``: the run ended before the entity's step ran."""

_ENDS_AN_ENTITY = frozenset(
    {
        DagsterEventType.ASSET_MATERIALIZATION,
        DagsterEventType.ASSET_OBSERVATION,
        DagsterEventType.STEP_SUCCESS,
        DagsterEventType.STEP_FAILURE,
    }
)
INTERRUPTED_TEXT = "interrupted: previous version kept"
NOT_RUN_TEXT = "not run: the run ended before this entity started"
INTERRUPT_ERRORS = frozenset({"DagsterExecutionInterruptedError", "KeyboardInterrupt"})


@dataclass(frozen=True)
class EntityOutcome:
    """One entity's result in a run, as recorded in the instance's event log."""

    flow: str
    entity: str
    asset_key: str
    status: OutcomeStatus
    rows: int = 0
    rows_per_second: float = 0.0
    seconds: float = 0.0
    bytes: int = 0
    files: int = 0
    run_type: str | None = None
    destination: str | None = None
    attempts: int = 0
    checks: tuple[CheckResult, ...] = ()
    error: str | None = None
    published: bool = False
    finished_at: float | None = None  # when the event that ended the load was recorded (seconds since the epoch)

    @property
    def key(self) -> str:
        return f"{self.flow}/{self.entity}"

    @property
    def failing_checks(self) -> list[CheckResult]:
        """Failed ERROR-severity checks: like the engine, hygge counts the entity as failed on these."""
        return [check for check in self.checks if check.fails_entity]

    @property
    def ok(self) -> bool:
        return self.status in ("success", "skipped") and not self.failing_checks

    def failure_text(self) -> str:
        if self.status == "interrupted":
            return INTERRUPTED_TEXT
        if self.status == "not_run":
            return NOT_RUN_TEXT
        error = self.error.removeprefix(f"{self.key}: ") if self.error else None  # the engine's messages name the entity
        return error or failed_checks_message(self.checks, published=self.published) or f"status {self.status}"

    @property
    def loading_window(self) -> tuple[float, float] | None:
        """When the engine was loading this entity (its last attempt), if it got as far as a result."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.seconds, self.finished_at)


@dataclass(frozen=True)
class EntitiesRunReport:
    run_id: str
    success: bool
    seconds: float
    entities: list[EntityOutcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(outcome.ok for outcome in self.entities)

    @property
    def failed(self) -> list[EntityOutcome]:
        return [outcome for outcome in self.entities if not outcome.ok]

    @property
    def rows(self) -> int:
        return sum(outcome.rows for outcome in self.entities)

    @property
    def interrupted(self) -> list[EntityOutcome]:
        return [outcome for outcome in self.entities if outcome.status == "interrupted"]

    @property
    def loading_seconds(self) -> float:
        """Time during which at least one entity was loading: the run's own work, without Dagster's start-up and events.

        Entities overlap (concurrency), so this is the length of the union of their loading
        windows, not the sum: rows over it is the rate the data moved at.
        """
        total, reach = 0.0, float("-inf")
        for start, end in sorted(window for o in self.entities if (window := o.loading_window) is not None):
            if end > reach:
                total += end - max(start, reach)
                reach = end
        return total

    @property
    def overhead_seconds(self) -> float:
        """The rest of the run: starting Dagster, step processes, recording events and checks."""
        return max(self.seconds - self.loading_seconds, 0.0)


class OutcomeListener(Protocol):
    """Who wants to hear about entities while a run's events are read (the CLI's live view)."""

    def started(self, key: str) -> None: ...

    def progress(self, key: str, rows: int, rows_per_second: float) -> None: ...

    def finished(self, outcome: EntityOutcome) -> None: ...


@dataclass(frozen=True)
class EntityStep:
    """Where an entity's events come from: its asset key and the step that materialises it."""

    entity: str  # flow/entity
    asset_key: AssetKey
    step_key: str


class RunEventReader:
    """Folds event log entries, in order, into per-entity outcomes; tells an optional listener as they happen."""

    def __init__(self, steps: Sequence[EntityStep], listener: OutcomeListener | None = None) -> None:
        self.steps = list(steps)
        self.listener = listener
        self._by_asset = {step.asset_key: step.entity for step in self.steps}
        self._by_step: dict[str, list[str]] = {}
        for step in self.steps:
            self._by_step.setdefault(step.step_key, []).append(step.entity)
        self._metadata: dict[str, Mapping[str, Any]] = {}
        self._status: dict[str, OutcomeStatus] = {}
        self._checks: dict[str, list[CheckResult]] = {}
        self._attempts: dict[str, int] = {}
        self._errors: dict[str, str] = {}
        self._published: set[str] = set()
        self._finished_at: dict[str, float] = {}
        self._reported: set[str] = set()
        self._pending: dict[str, str] = {}  # shared step -> entity whose check results may still follow

    def read(self, entry: EventLogEntry) -> None:
        event = entry.dagster_event
        if event is None:
            parsed = parse_progress_line(entry.user_message or "")
            if parsed is not None and self.listener is not None:
                self.listener.progress(*parsed)
            return
        data = event.event_specific_data
        kind = event.event_type
        step_key = event.step_key or ""
        if step_key in self._pending and kind in _ENDS_AN_ENTITY:
            self._finish(step_key)  # the previous entity of a shared step has all its check results now
        if kind in (DagsterEventType.ASSET_MATERIALIZATION, DagsterEventType.ASSET_OBSERVATION):
            entity = self._by_asset.get(event.asset_key)
            if entity is not None:
                materialized = kind == DagsterEventType.ASSET_MATERIALIZATION
                self._metadata[entity] = data.materialization.metadata if materialized else data.asset_observation.metadata
                self._status[entity] = "success" if materialized else "skipped"
                self._finished_at[entity] = entry.timestamp
                if materialized:
                    self._published.add(entity)
                if self._shared(step_key):
                    self._pending[step_key] = entity  # finished once its check results are read
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION:
            entity = self._by_asset.get(data.asset_key)
            if entity is not None:
                self._checks.setdefault(entity, []).append(_check_result(data))
        elif kind in (DagsterEventType.STEP_START, DagsterEventType.STEP_RESTARTED):
            for entity in self._by_step.get(step_key, []):
                self._attempts[entity] = self._attempts.get(entity, 0) + 1
                if self.listener is not None:
                    self.listener.started(entity)
        elif kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            failed = kind == DagsterEventType.STEP_FAILURE
            errors = _entity_errors(data) if failed else {}
            for entity in self._by_step.get(step_key, []):
                recorded = self._shared(step_key) and entity in self._status and entity not in errors
                changed = failed and not recorded  # in a shared step, entities that finished keep their outcome
                if changed and _interrupted(data):
                    self._status[entity] = "interrupted"
                elif changed:
                    self._status[entity] = "failed"
                    if entity in errors:
                        self._errors[entity] = errors[entity]
                    elif not _blocked_by_checks(data):  # then the checks' own messages say why
                        self._errors[entity] = failure_message(data)
                if changed or entity not in self._reported:
                    self._report(entity)

    def _shared(self, step_key: str) -> bool:
        return len(self._by_step.get(step_key, ())) > 1

    def _finish(self, step_key: str) -> None:
        self._report(self._pending.pop(step_key))

    def _report(self, entity: str) -> None:
        self._reported.add(entity)
        if self.listener is not None:
            self.listener.finished(self.outcome(entity))

    def outcome(self, entity: str) -> EntityOutcome:
        step = next(step for step in self.steps if step.entity == entity)
        metadata = self._metadata.get(entity, {})
        flow, _, name = entity.partition("/")
        return EntityOutcome(
            flow=flow,
            entity=name,
            asset_key=step.asset_key.to_user_string(),
            status=self._status.get(entity, "not_run"),
            rows=int(_value(metadata, c.META_ROWS_LOADED, 0)),
            rows_per_second=float(_value(metadata, c.META_ROWS_PER_SECOND, 0.0)),
            seconds=float(_value(metadata, c.META_DURATION, 0.0)),
            bytes=int(_value(metadata, c.META_BYTES, 0)),
            files=int(_value(metadata, c.META_FILES, 0)),
            run_type=_value(metadata, c.META_RUN_TYPE, None),
            destination=_value(metadata, c.META_DESTINATION, None),
            attempts=max(self._attempts.get(entity, 0), int(_value(metadata, c.META_ATTEMPT, 0))),
            checks=tuple(self._checks.get(entity, [])),
            error=self._errors.get(entity),
            published=entity in self._published,
            finished_at=self._finished_at.get(entity),
        )

    def outcomes(self) -> list[EntityOutcome]:
        return [self.outcome(step.entity) for step in self.steps]


def failure_message(data: Any) -> str:
    """The engine's message: a ``Failure``'s description, else the innermost error's message."""
    if data.user_failure_data is not None and data.user_failure_data.description:
        return data.user_failure_data.description
    error = data.error
    if error is None:
        return "step failed"
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


def _entity_errors(data: Any) -> dict[str, str]:
    """``{flow/entity: error}`` from a shared step's failure metadata (empty for an entity step)."""
    if data.user_failure_data is None:
        return {}
    item = data.user_failure_data.metadata.get(c.META_FAILED_ENTITIES)
    return dict(item.value) if item is not None and isinstance(item.value, dict) else {}


def _interrupted(data: Any) -> bool:
    """Whether a step failed because it was interrupted (Dagster's ``ErrorSource.INTERRUPT``), not by an error."""
    source = data.error_source.value if data.error_source is not None else None  # the enum is not public API
    return source == "INTERRUPT" or (data.error is not None and data.error.cls_name in INTERRUPT_ERRORS)


def _blocked_by_checks(data: Any) -> bool:
    """Whether the step failed only because a blocking check failed after the load (Dagster's own error)."""
    return data.error is not None and data.error.cls_name == "DagsterAssetCheckFailedError"


def _check_result(data: Any) -> CheckResult:
    metadata = {key: value.value for key, value in (data.metadata or {}).items()}
    return CheckResult(
        data.check_name, passed=data.passed, severity=data.severity.value, description=data.description, metadata=metadata
    )


def _value(metadata: Mapping[str, Any], key: str, default: Any) -> Any:
    item = metadata.get(key)
    return default if item is None else item.value

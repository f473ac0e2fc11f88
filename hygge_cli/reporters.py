"""How ``hygge start`` shows a run: live bars on a terminal, plain lines in CI logs, JSON for log shippers.

All three receive the same events (entity started, progress, finished) and end with
the same summary, so what a user sees never depends on where they look.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress as RichProgress
from rich.progress import SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from hygge_dagster.outcomes import EntitiesRunReport, EntityOutcome


def checks_text(outcome: EntityOutcome) -> str:
    if not outcome.checks:
        return "-"
    return f"{sum(check.passed for check in outcome.checks)}/{len(outcome.checks)}"


def summary_word(report: EntitiesRunReport) -> str:
    """The closing verdict: INTERRUPTED when a signal stopped an entity, else FAILED or OK."""
    if report.interrupted:
        return "INTERRUPTED"
    return "FAILED" if report.failed else "OK"


def closing_line(report: EntitiesRunReport, *, run_id: bool = True) -> str:
    """The run in one line: the verdict, then the rate over the entities' own loading time, the rest apart.

    Dividing by the whole run would count Dagster's start-up and event recording as
    slowness of the data path; the user sees both figures, each for what it is.
    """
    total = len(report.entities)
    succeeded = total - len(report.failed)
    loading = report.loading_seconds
    unfinished = any(outcome.loading_window is None for outcome in report.entities)  # their time is not in loading
    rate = f"{report.rows / loading:,.0f} rows/s over {loading:.2f}s of loading" if loading > 0 else "nothing loaded"
    return (
        f"{summary_word(report)}: {succeeded} of {total} entities succeeded, {report.rows:,} rows in {report.seconds:.2f}s "
        f"({rate}; {'Dagster, start-up and unfinished entities' if unfinished else 'Dagster and start-up'} {report.overhead_seconds:.2f}s"
        + (f"; Dagster run {report.run_id})" if run_id else ")")
    )


STATUS_WORDS = {
    "success": "success",
    "skipped": "skipped",
    "failed": "failed",
    "interrupted": "interrupted",
    "not_run": "not run",
}


def status_text(outcome: EntityOutcome) -> str:
    """The table's status: what happened to the entity, "check failed" when it loaded but an ERROR check failed."""
    if outcome.status in ("success", "skipped") and outcome.failing_checks:
        return "check failed"
    return STATUS_WORDS[outcome.status]


def reason_text(outcome: EntityOutcome) -> str:
    """Why an entity is not OK, without the status word the table already shows."""
    if outcome.ok:
        return ""
    return outcome.failure_text().removeprefix("interrupted: ").removeprefix("not run: ")


class Reporter(ABC):
    @abstractmethod
    def started(self, key: str) -> None: ...

    @abstractmethod
    def progress(self, key: str, rows: int, rows_per_second: float) -> None: ...

    @abstractmethod
    def finished(self, outcome: EntityOutcome) -> None: ...

    @abstractmethod
    def summary(self, report: EntitiesRunReport) -> None: ...

    def message(self, text: str) -> None:
        """A line that is neither an entity event nor the summary (e.g. where the run can be seen)."""

    def waiting(self, text: str) -> None:
        """What the run is doing while no entity has started yet (loading Dagster, starting step processes)."""
        self.message(text)

    def close(self) -> None: ...


class PlainReporter(Reporter):
    """One line per event: readable in CI logs and when output is piped."""

    PROGRESS_EVERY_SECONDS = 5.0

    def __init__(self, stream: IO[str] | None = None, *, quiet: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.quiet = quiet
        self._last_progress: dict[str, float] = {}
        self._lock = threading.Lock()

    def _line(self, text: str) -> None:
        with self._lock:
            print(f"{datetime.now().strftime('%H:%M:%S')} {text}", file=self.stream, flush=True)

    def started(self, key: str) -> None:
        if not self.quiet:
            self._line(f"start    {key}")

    def progress(self, key: str, rows: int, rows_per_second: float) -> None:
        now = time.monotonic()
        if self.quiet or now - self._last_progress.get(key, 0.0) < self.PROGRESS_EVERY_SECONDS:
            return
        self._last_progress[key] = now
        self._line(f"progress {key}: {rows:,} rows ({rows_per_second:,.0f} rows/s)")

    def finished(self, outcome: EntityOutcome) -> None:
        if outcome.status == "interrupted":
            self._line(f"STOPPED  {outcome.key}: {outcome.failure_text()}")
        elif not outcome.ok:
            self._line(f"FAILED   {outcome.key}: {outcome.failure_text()}")
        elif not self.quiet:
            self._line(
                f"{outcome.status:<8} {outcome.key}: {outcome.rows:,} rows in {outcome.seconds:.2f}s "
                f"({outcome.rows_per_second:,.0f} rows/s), checks {checks_text(outcome)}"
            )

    def summary(self, report: EntitiesRunReport) -> None:
        self._line(closing_line(report))
        for outcome in report.failed:
            self._line(f"  {status_text(outcome)}: {outcome.key}: {reason_text(outcome)}")

    def message(self, text: str) -> None:
        if not self.quiet:
            self._line(text)


class JsonReporter(Reporter):
    """One JSON object per line, for log shippers."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def _emit(self, event: str, **fields: Any) -> None:
        record = {"ts": datetime.now(UTC).isoformat(), "event": event, **fields}
        with self._lock:
            print(json.dumps(record, default=str), file=self.stream, flush=True)

    def started(self, key: str) -> None:
        self._emit("entity_started", entity=key)

    def progress(self, key: str, rows: int, rows_per_second: float) -> None:
        self._emit("entity_progress", entity=key, rows=rows, rows_per_second=round(rows_per_second, 1))

    def finished(self, outcome: EntityOutcome) -> None:
        self._emit("entity_finished", **_outcome_fields(outcome))

    def summary(self, report: EntitiesRunReport) -> None:
        self._emit(
            "run_finished",
            ok=all(outcome.ok for outcome in report.entities),
            run_id=report.run_id,
            entities=len(report.entities),
            failed=[outcome.key for outcome in report.entities if not outcome.ok],
            interrupted=[outcome.key for outcome in report.interrupted],
            rows=report.rows,
            seconds=round(report.seconds, 3),
            loading_seconds=round(report.loading_seconds, 3),
        )

    def message(self, text: str) -> None:
        self._emit("message", text=text)


def bar_detail(rows: int, rows_per_second: float) -> str:
    return f"{rows:>12,} rows {rows_per_second:>10,.0f} rows/s"


class RichReporter(Reporter):
    """A live bar per running entity (rows, rows/sec, elapsed), then a summary table."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self._bars = RichProgress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
            redirect_stderr=False,  # Dagster's console logger writes to stderr, which hygge start sends to its log file
        )
        self._tasks: dict[str, TaskID] = {}
        self._waiting: TaskID | None = None
        self._lock = threading.Lock()
        self._bars.start()

    def waiting(self, text: str) -> None:
        with self._lock:
            if self._waiting is None:
                self._waiting = self._bars.add_task(text, total=None, detail="")
            else:
                self._bars.update(self._waiting, description=text)

    def started(self, key: str) -> None:
        with self._lock:
            if self._waiting is not None:  # the first entity is moving: the waiting line has said its piece
                self._bars.remove_task(self._waiting)
                self._waiting = None
            if key not in self._tasks:
                self._tasks[key] = self._bars.add_task(key, total=None, detail=bar_detail(0, 0.0))

    def progress(self, key: str, rows: int, rows_per_second: float) -> None:
        self.started(key)
        self._bars.update(self._tasks[key], detail=bar_detail(rows, rows_per_second))

    def finished(self, outcome: EntityOutcome) -> None:
        self.started(outcome.key)
        ok = outcome.ok
        mark = "[green]✓[/green]" if ok else "[yellow]■[/yellow]" if outcome.status == "interrupted" else "[red]✗[/red]"
        self._bars.update(
            self._tasks[outcome.key],
            description=f"{mark} {escape(outcome.key)}",
            detail=bar_detail(outcome.rows, outcome.rows_per_second),
            total=1,
            completed=1,
        )
        if outcome.status == "interrupted":
            self.console.print(f"[yellow]stopped[/yellow] {escape(outcome.key)}: {escape(outcome.failure_text())}")
        elif not ok:
            self.console.print(f"[red]failed[/red] {escape(outcome.key)}: {escape(outcome.failure_text())}")

    def summary(self, report: EntitiesRunReport) -> None:
        with self._lock:
            if self._waiting is not None:
                self._bars.remove_task(self._waiting)
                self._waiting = None
        self._bars.stop()
        failures = bool(report.failed)
        table = Table(title=f"hygge run (Dagster run {report.run_id})")
        columns = ("entity", "status", "rows", "rows/s", "duration", "checks") + (("reason",) if failures else ())
        for column in columns:
            table.add_column(
                column,
                justify="right" if column in ("rows", "rows/s", "duration") else "left",
                overflow="fold",
                no_wrap=column not in ("entity", "reason"),
            )
        for outcome in report.entities:
            colour = "green" if outcome.ok else "yellow" if outcome.status in ("interrupted", "not_run") else "red"
            row = [
                escape(outcome.key),
                f"[{colour}]{status_text(outcome)}[/{colour}]",
                f"{outcome.rows:,}",
                f"{outcome.rows_per_second:,.0f}",
                f"{outcome.seconds:.2f}s",
                checks_text(outcome),
            ]
            table.add_row(*row, *((escape(reason_text(outcome)),) if failures else ()))
        loading = report.loading_seconds
        table.add_row(
            "[bold]total",
            "",
            f"[bold]{report.rows:,}",
            f"{report.rows / loading if loading else 0:,.0f}",
            f"{loading:.2f}s",
            "",
            *(("",) if failures else ()),
        )
        self.console.print(table)
        word = summary_word(report)
        colour = {"OK": "green", "FAILED": "red", "INTERRUPTED": "yellow"}[word]
        rest = closing_line(report, run_id=False).removeprefix(word)  # the table's title names the run
        self.console.print(f"[bold {colour}]{word}[/bold {colour}]{escape(rest)}", highlight=False)

    def message(self, text: str) -> None:
        self.console.print(escape(text))

    def close(self) -> None:
        self._bars.stop()


def _outcome_fields(outcome: EntityOutcome) -> dict[str, Any]:
    return {
        "entity": outcome.key,
        "status": outcome.status,
        "ok": outcome.ok,
        "rows": outcome.rows,
        "seconds": round(outcome.seconds, 3),
        "rows_per_second": round(outcome.rows_per_second, 1),
        "attempts": outcome.attempts,
        "checks": {check.name: check.passed for check in outcome.checks},
        "error": outcome.failure_text() if not outcome.ok else None,
    }

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
        failed = [outcome for outcome in report.entities if not outcome.ok]
        total = len(report.entities)
        self._line(
            f"{summary_word(report)}: {total - len(failed)} of {total} entities succeeded, {report.rows:,} rows in {report.seconds:.2f}s "
            f"(Dagster run {report.run_id})"
        )
        for outcome in failed:
            label = "" if outcome.status == "interrupted" else "failed: "  # the interrupted text says what happened itself
            self._line(f"  {label}{outcome.key}: {outcome.failure_text()}")

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
        )

    def message(self, text: str) -> None:
        self._emit("message", text=text)


class RichReporter(Reporter):
    """A live bar per running entity (rows, rows/sec, elapsed), then a summary table."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self._bars = RichProgress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            TextColumn("{task.fields[rows]:>12,} rows"),
            TextColumn("{task.fields[rate]:>10,.0f} rows/s"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
            redirect_stderr=False,  # Dagster's console logger writes to stderr, which hygge start sends to its log file
        )
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()
        self._bars.start()

    def started(self, key: str) -> None:
        with self._lock:
            if key not in self._tasks:
                self._tasks[key] = self._bars.add_task(key, total=None, rows=0, rate=0.0)

    def progress(self, key: str, rows: int, rows_per_second: float) -> None:
        self.started(key)
        self._bars.update(self._tasks[key], rows=rows, rate=rows_per_second)

    def finished(self, outcome: EntityOutcome) -> None:
        self.started(outcome.key)
        ok = outcome.ok
        mark = "[green]✓[/green]" if ok else "[yellow]■[/yellow]" if outcome.status == "interrupted" else "[red]✗[/red]"
        self._bars.update(
            self._tasks[outcome.key],
            description=f"{mark} {outcome.key}",
            rows=outcome.rows,
            rate=outcome.rows_per_second,
            total=1,
            completed=1,
        )
        if outcome.status == "interrupted":
            self.console.print(f"[yellow]stopped[/yellow] {escape(outcome.key)}: {outcome.failure_text()}")
        elif not ok:
            self.console.print(f"[red]failed[/red] {outcome.key}: {escape(outcome.failure_text())}")

    def summary(self, report: EntitiesRunReport) -> None:
        self._bars.stop()
        table = Table(title=f"hygge run (Dagster run {report.run_id})")
        for column in ("entity", "status", "rows", "rows/s", "duration", "checks"):
            table.add_column(column, justify="right" if column in ("rows", "rows/s", "duration") else "left")
        for outcome in report.entities:
            status = (
                outcome.status if outcome.ok else f"[red]{'check failed' if outcome.status != 'failed' else outcome.status}[/red]"
            )
            if outcome.status == "interrupted":
                status = f"[yellow]{outcome.failure_text()}[/yellow]"
            table.add_row(
                escape(outcome.key),
                status,
                f"{outcome.rows:,}",
                f"{outcome.rows_per_second:,.0f}",
                f"{outcome.seconds:.2f}s",
                checks_text(outcome),
            )
        seconds = report.seconds
        table.add_row(
            "[bold]total", "", f"[bold]{report.rows:,}", f"{report.rows / seconds if seconds else 0:,.0f}", f"{seconds:.2f}s", ""
        )
        self.console.print(table)
        if report.interrupted:
            self.console.print(
                f"[yellow]{summary_word(report)}[/yellow]: "
                + ", ".join(f"{escape(o.key)}: {o.failure_text()}" for o in report.interrupted)
            )

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

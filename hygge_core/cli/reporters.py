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
from datetime import datetime, timezone
from typing import IO, Any

from rich.console import Console
from rich.progress import Progress as RichProgress
from rich.progress import SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from hygge_core.flow import Progress
from hygge_core.project import EntityPlan
from hygge_core.result import EntityResult


class Reporter(ABC):
    verbose: bool = False

    @abstractmethod
    def started(self, plan: EntityPlan, run_type: str) -> None: ...

    @abstractmethod
    def progress(self, update: Progress) -> None: ...

    @abstractmethod
    def finished(self, result: EntityResult, checks: dict[str, bool]) -> None: ...

    @abstractmethod
    def summary(self, results: list[tuple[EntityResult, dict[str, bool]]], seconds: float) -> None: ...

    def message(self, text: str) -> None:
        """A line that is neither an entity event nor the summary (e.g. where the run can be seen)."""

    def close(self) -> None: ...


class PlainReporter(Reporter):
    """One line per event: readable in CI logs and when output is piped."""

    PROGRESS_EVERY_SECONDS = 5.0

    def __init__(self, stream: IO[str] | None = None, *, quiet: bool = False, verbose: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.quiet = quiet
        self.verbose = verbose
        self._last_progress: dict[str, float] = {}
        self._lock = threading.Lock()

    def _line(self, text: str) -> None:
        with self._lock:
            print(f"{datetime.now().strftime('%H:%M:%S')} {text}", file=self.stream, flush=True)

    def started(self, plan: EntityPlan, run_type: str) -> None:
        if not self.quiet:
            self._line(f"start    {plan.key} ({run_type})")

    def progress(self, update: Progress) -> None:
        key = f"{update.flow}/{update.entity}"
        now = time.monotonic()
        if self.quiet or now - self._last_progress.get(key, 0.0) < self.PROGRESS_EVERY_SECONDS:
            return
        self._last_progress[key] = now
        self._line(f"progress {key}: {update.rows:,} rows ({update.rows_per_second:,.0f} rows/s)")

    def finished(self, result: EntityResult, checks: dict[str, bool]) -> None:
        if result.status == "failed":
            self._line(f"FAILED   {result.key}: {result.error}")
        elif not self.quiet:
            self._line(f"{result.status:<8} {result.key}: {result.rows:,} rows in {result.seconds:.2f}s ({result.rows_per_second:,.0f} rows/s)")

    def summary(self, results: list[tuple[EntityResult, dict[str, bool]]], seconds: float) -> None:
        failed = [r for r, checks in results if not r.ok or not all(checks.values())]
        rows = sum(r.rows for r, _ in results)
        word = "FAILED" if failed else "OK"
        self._line(f"{word}: {len(results) - len(failed)} of {len(results)} entities succeeded, {rows:,} rows in {seconds:.2f}s")
        for result in failed:
            self._line(f"  failed: {result.key}: {result.error or 'a blocking check failed'}")

    def message(self, text: str) -> None:
        if not self.quiet:
            self._line(text)


class JsonReporter(Reporter):
    """One JSON object per line, for log shippers."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def _emit(self, event: str, **fields: Any) -> None:
        record = {"ts": datetime.now(timezone.utc).isoformat(), "event": event, **fields}
        with self._lock:
            print(json.dumps(record, default=str), file=self.stream, flush=True)

    def started(self, plan: EntityPlan, run_type: str) -> None:
        self._emit("entity_started", entity=plan.key, run_type=run_type)

    def progress(self, update: Progress) -> None:
        self._emit("entity_progress", entity=f"{update.flow}/{update.entity}", rows=update.rows, rows_per_second=round(update.rows_per_second, 1))

    def finished(self, result: EntityResult, checks: dict[str, bool]) -> None:
        self._emit(
            "entity_finished",
            entity=result.key,
            status=result.status,
            rows=result.rows,
            seconds=round(result.seconds, 3),
            rows_per_second=round(result.rows_per_second, 1),
            checks=checks,
            error=result.error,
        )

    def summary(self, results: list[tuple[EntityResult, dict[str, bool]]], seconds: float) -> None:
        ok = all(r.ok and all(c.values()) for r, c in results)
        self._emit("run_finished", ok=ok, entities=len(results), rows=sum(r.rows for r, _ in results), seconds=round(seconds, 3))

    def message(self, text: str) -> None:
        self._emit("message", text=text)


class RichReporter(Reporter):
    """A live bar per running entity (rows, rows/sec, elapsed), then a summary table."""

    def __init__(self, console: Console | None = None, *, verbose: bool = False) -> None:
        self.console = console or Console()
        self.verbose = verbose
        self._bars = RichProgress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            TextColumn("{task.fields[rows]:>12,} rows"),
            TextColumn("{task.fields[rate]:>10,.0f} rows/s"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()
        self._bars.start()

    def started(self, plan: EntityPlan, run_type: str) -> None:
        with self._lock:
            self._tasks[plan.key] = self._bars.add_task(plan.key, total=None, rows=0, rate=0.0)

    def progress(self, update: Progress) -> None:
        task = self._tasks.get(f"{update.flow}/{update.entity}")
        if task is not None:
            self._bars.update(task, rows=update.rows, rate=update.rows_per_second)

    def finished(self, result: EntityResult, checks: dict[str, bool]) -> None:
        task = self._tasks.get(result.key)
        if task is not None:
            mark = "[red]✗[/red]" if result.status == "failed" else "[green]✓[/green]"
            self._bars.update(task, description=f"{mark} {result.key}", rows=result.rows, rate=result.rows_per_second, total=1, completed=1)
        if result.status == "failed":
            self.console.print(f"[red]failed[/red] {result.key}: {result.error}")

    def summary(self, results: list[tuple[EntityResult, dict[str, bool]]], seconds: float) -> None:
        self._bars.stop()
        table = Table(title="hygge run")
        for column in ("entity", "status", "rows", "rows/s", "duration", "checks"):
            table.add_column(column, justify="right" if column in ("rows", "rows/s", "duration") else "left")
        for result, checks in results:
            passed = sum(checks.values())
            check_text = f"{passed}/{len(checks)}" if checks else "-"
            status = f"[red]{result.status}[/red]" if result.status == "failed" else result.status
            table.add_row(result.key, status, f"{result.rows:,}", f"{result.rows_per_second:,.0f}", f"{result.seconds:.2f}s", check_text)
        total_rows = sum(r.rows for r, _ in results)
        table.add_row("[bold]total", "", f"[bold]{total_rows:,}", f"{total_rows / seconds if seconds else 0:,.0f}", f"{seconds:.2f}s", "")
        self.console.print(table)

    def message(self, text: str) -> None:
        self.console.print(text)

    def close(self) -> None:
        self._bars.stop()

"""``hygge start``: run the selected entities through the project's Dagster assets.

The same assets as ``dagster dev`` and ``dagster asset materialize``, so checks,
retries and metadata are identical, and the run is recorded in a Dagster instance
(``$DAGSTER_HOME``, else ``<project>/.dagster``) where the UI shows it afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from rich.console import Console

from hygge_cli.instance import dagster_home, open_home_file, open_instance
from hygge_cli.main import configure_logging
from hygge_cli.plan_text import plan_lines
from hygge_cli.reporters import JsonReporter, PlainReporter, Reporter, RichReporter
from hygge_cli.signals import StopSignals
from hygge_core.errors import ConfigError
from hygge_core.loading import load_project
from hygge_core.project import EntityPlan, Project

if TYPE_CHECKING:
    from hygge_dagster.outcomes import EntitiesRunReport

SESSION_TAG = "hygge/cli_session"


def run_start(args: argparse.Namespace) -> int:
    """Exit code: 0 when every entity succeeded, 1 when one failed, 130/143 after SIGINT/SIGTERM."""
    with StopSignals() as signals:
        return _run_start(args, signals)


def _run_start(args: argparse.Namespace, signals: StopSignals) -> int:
    configure_logging(verbose=args.verbose)
    project = load_project(args.project)
    plans = project.select(flows=split_names(args.flow), entities=split_names(args.entity))
    if not plans:
        raise ConfigError(f"no entities selected in project {project.name!r}")
    if args.concurrency is not None and args.concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    if args.dry_run:
        print_plan(project, plans, run_type=args.run_type)
        return 0

    reporter = make_reporter(args)
    try:
        report, dagster_log = _run_with_reporter(args, signals, project, plans, reporter)
    finally:
        reporter.close()  # also when the set-up fails or is interrupted: the terminal gets its cursor back
    reporter.summary(report)
    if signals.exit_code is not None:
        return signals.exit_code
    ok = report.ok
    if not ok and not args.verbose:
        reporter.message(f"Dagster's own log of this run: {dagster_log} (or run again with -v)")
    return 0 if ok else 1


def _run_with_reporter(
    args: argparse.Namespace, signals: StopSignals, project: Project, plans: list[EntityPlan], reporter: Reporter
) -> tuple[EntitiesRunReport, Path]:
    """Start Dagster, run ``plans`` as one run while the reporter shows it; the report and Dagster's log file."""
    reporter.waiting("starting Dagster…")  # importing Dagster and building the job takes seconds: say so

    from hygge_cli.watch import RunWatcher
    from hygge_dagster.partitions import run_partition
    from hygge_dagster.run import (
        end_canceled_runs,
        entity_steps,
        materialize_entities,
        request_cancel,
        run_job,
    )

    partition = run_partition(project, plans, args.partition)
    # Dagster writes a run's planned events (one per asset and check) as one batch when this is set; hygge's
    # event log storage then stores them in one transaction per database (about 0.5 s less for 100 tables).
    os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", "1000")

    home = dagster_home(project.root)
    instance = open_instance(home)
    session = (SESSION_TAG, uuid.uuid4().hex)
    steps = entity_steps(run_job(project, plans, args.concurrency)[1], plans)
    which = f" (time partition {partition})" if partition is not None else ""
    reporter.message(
        f"running {len(plans)} entit{'y' if len(plans) == 1 else 'ies'} of {project.name!r}{which}; Dagster home {home}"
    )
    dagster_log = home / "hygge-start.log"

    running = threading.Event()

    def stop(signum: int) -> None:
        name = signal.Signals(signum).name
        reporter.message(f"{name}: stopping; entities being written keep their previous version")
        if running.is_set():
            request_cancel(instance, session, f"hygge start received {name}")

    signals.listen(stop)
    with instance:
        running.set()
        try:
            with (
                stderr_to(None if args.verbose else dagster_log),
                RunWatcher(instance, tag=session, steps=steps, reporter=reporter),
            ):
                report = materialize_entities(
                    project,
                    plans,
                    instance=instance,
                    run_type=args.run_type,
                    partition=partition,
                    max_concurrent=args.concurrency,
                    tags=dict([session]),
                    run_config={"loggers": {"console": {"config": {"log_level": "INFO" if args.verbose else "ERROR"}}}},
                )
        finally:
            running.clear()
            if signals.received is not None:
                end_canceled_runs(instance, session, f"hygge start received {signal.Signals(signals.received).name}")
    return report, dagster_log


@contextlib.contextmanager
def stderr_to(path: Path | None) -> Iterator[None]:
    """Send file descriptor 2 to ``path`` while the run executes (``None``: leave it alone).

    Dagster's step processes print their own DEBUG lines to stderr before any run
    config applies; hygge's reporter writes to stdout, so only Dagster's chatter moves.
    """
    if path is None:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with open_home_file(path, os.O_CREAT | os.O_TRUNC) as log:  # this run only
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def make_reporter(args: argparse.Namespace) -> Reporter:
    stream = screen()
    if args.log_format == "json":
        return JsonReporter(stream)
    if stream.isatty() and not args.quiet:
        return RichReporter(Console(file=stream))
    return PlainReporter(stream, quiet=args.quiet)


def screen() -> TextIO:
    """Standard output as it is before the run, on a descriptor of its own.

    Dagster's in-process executor points descriptor 1 at a log file while a step runs and
    mirrors it back through a ``tail`` process; a Ctrl-C kills that ``tail`` too, so what the
    reporter printed during the step (such as "stopping") would never reach the screen.
    """
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError):  # a captured stdout (tests) has no descriptor: use it as it is
        return sys.stdout
    sys.stdout.flush()
    return os.fdopen(os.dup(descriptor), "w", buffering=1, encoding=sys.stdout.encoding or "utf-8", errors="replace")


def print_plan(project: Project, plans: list[EntityPlan], *, run_type: str | None) -> None:
    print(f"Project {project.name!r} ({project.config_file}): {len(plans)} entit{'y' if len(plans) == 1 else 'ies'} would run")
    for plan in plans:
        print("\n".join(plan_lines(plan, run_type=run_type)))
    print("Dry run: nothing was read or written.")


def split_names(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]

"""``hygge start``: run the selected entities and show what happened."""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from hygge_core.cli.main import configure_logging
from hygge_core.cli.reporters import JsonReporter, PlainReporter, Reporter, RichReporter
from hygge_core.project import EntityPlan, Project, load_project
from hygge_core.result import EntityResult
from hygge_core.runner import run_with_retries


def run_start(args: argparse.Namespace) -> int:
    configure_logging(verbose=args.verbose)
    project = load_project(args.project)
    plans = project.select(flows=_split(args.flow), entities=_split(args.entity))
    if args.dry_run:
        print_plan(project, plans, run_type=args.run_type)
        return 0
    reporter = make_reporter(args)
    started = time.perf_counter()
    try:
        outcomes = execute(project, plans, reporter, run_type=args.run_type, concurrency=args.concurrency)
    finally:
        reporter.close()
    reporter.summary(outcomes, time.perf_counter() - started)
    return 0 if all(result.ok and all(checks.values()) for result, checks in outcomes) else 1


def execute(
    project: Project, plans: list[EntityPlan], reporter: Reporter, *, run_type: str | None, concurrency: int | None
) -> list[tuple[EntityResult, dict[str, bool]]]:
    """Run each plan with retries; a failed entity never stops the others."""

    def one(plan: EntityPlan) -> tuple[EntityResult, dict[str, bool]]:
        reporter.started(plan, run_type or plan.run_type)
        result = run_with_retries(plan, run_type=run_type, progress=reporter.progress)
        checks: dict[str, bool] = {}
        reporter.finished(result, checks)
        return result, checks

    workers = max(1, min(concurrency or project.config.concurrency, len(plans) or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hygge-entity") as pool:
        return list(pool.map(one, plans))


def make_reporter(args: argparse.Namespace) -> Reporter:
    if args.log_format == "json":
        return JsonReporter()
    if sys.stdout.isatty() and not args.quiet:
        return RichReporter(verbose=args.verbose)
    return PlainReporter(quiet=args.quiet, verbose=args.verbose)


def print_plan(project: Project, plans: list[EntityPlan], *, run_type: str | None) -> None:
    print(f"Project {project.name!r} ({project.config_file}): {len(plans)} entit{'y' if len(plans) == 1 else 'ies'} would run")
    for plan in plans:
        print(f"  {plan.key}  [{run_type or plan.run_type}]")
        print(f"      from {plan.home.describe()}")
        print(f"      to   {plan.store.describe()}")
    print("Dry run: nothing was read or written.")


def _split(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]
